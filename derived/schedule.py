"""Scheduling: the middle stage of a recompute, ready jobs of the whole graph to the executor.

Every lens instance's frames go to the executor as soon as they are ready,
not instance after instance: independent instances (probe, proxy, poster and
audio over the same clips) overlap, and an instance that reads another's
outputs (``OutputOf``) starts on its first frames while the upstream is still
running the rest. Which frames exist never depends on timing:

- a downstream frame is planned only once the upstream output it reads is
  certain to be kept by the caps (the upstream's earlier frames are done, and
  the recompute budget left for the upstream is known or bounded from below
  by what the instances before it can at most produce);
- a media batch, whose jobs write files, starts only once the outputs its
  caps will keep are certain the same way, so no job runs whose output would
  be dropped (``_media_rounds``); pure calls need no such wait.

Whatever the completion order, ``derived.assemble`` puts outcomes back in
plan order, so results are equal on every executor. A media job's outcome
reaches the memo as soon as it finishes, so a run killed half-way reuses the
files it made; pure calls reach it when their whole batch is done, so a
recompute that a lens stops (KeyboardInterrupt) keeps nothing of that batch.
Tasks wait in a backlog and go to the executor about two per worker at a
time; a worker that dies fails only the tasks in flight with it (never
retried, seed 002).
"""

from __future__ import annotations

from collections import Counter, deque
from itertools import repeat
from operator import floordiv
from typing import Any

from drafts.carrier import pack_drafts
from drafts.draft import Draft
from lenses.lens import Lens

from .assemble import Assembly, Chunk, assemble_chunk, media_keep, provenance_of, worker_failure
from .caps import Caps
from .evaluate import INTERRUPTED, CallOutcome, call_lens
from .executors import ChunkFailed, stream_of, task_size
from .plan import CHUNK_FRAMES, FramePlan, InstancePlan, Planner, describe_failure

__all__ = ["Scheduler", "run_chunk"]


def run_chunk(task: tuple) -> list[CallOutcome]:
    """The one function executors run: a chunk of calls of one lens, in order.

    ``task`` is ``(lens, params, input drafts, (instance id, batch id, frame
    indices), limit)``: call ``k`` reads ``drafts[k]`` as frame
    ``indices[k]`` (None for a non-batched call, whose batch id is None).

    A lens that did not arrive in a worker (``lenses.lens.UnavailableLens``:
    its code differs there, or it cannot be found) fails each call with the
    reason; a call the lens ended with KeyboardInterrupt ends the chunk.
    """
    lens, params, drafts, (instance_id, batch_id, indices), limit = task
    if type(lens) is not Lens:
        reason = getattr(lens, "reason", f"not a lens: {type(lens).__name__}")
        return [CallOutcome(error_code="lensError", error=reason, worker_failed=True) for _ in drafts]
    # A call's FrameContext is made only for a lens that asks for it (most do not).
    contexts = [(instance_id, batch_id, i) for i in indices] if lens.takes_context else repeat(None)
    out = []
    for draft, context in zip(drafts, contexts, strict=False):  # contexts may be an endless repeat
        outcome = call_lens(lens, params, draft, context, limit)
        out.append(outcome)
        if outcome.error_code == INTERRUPTED:
            break
    return out


class _Work:
    """One instance's progress through the schedule (mutable; only the scheduler touches it)."""

    def __init__(self, position: int, plan: InstancePlan, single: Any):
        self.position = position
        self.plan = plan
        self.single = single  # (call key, cached outcome, described) of a planned non-batched call
        self.started = False
        self.complete = False  # every outcome in, every chunk assembled
        self.assembled = False
        self.upstream: _Work | None = None
        self.mark = 0  # grows whenever outputs downstream instances read may have changed
        self.seen: tuple | None = None  # (upstream mark, next to assemble) when last looked at
        # batches
        self.fp: FramePlan | None = None if plan.frames is None else plan.frames
        self.frames_final = False  # every frame of the batch is planned
        self.frame_total = 0  # the carrier's frame count (before max_frames_evaluated)
        self.source_ids: list = []
        self.drafts: list[Draft] = []
        self.call_keys: list = []
        self.outcomes: list = []
        self.left: list[int] = []  # per chunk: frames not yet finished
        self.chunks: list[Chunk | None] = []
        self.keep_chunk: list[bool] = []
        self.chunk_keys: list = []
        self.flat: list[Draft] = []  # outputs of the chunks assembled so far, in order (batch cap applied)
        self.flat_chunks = 0  # how many leading chunks ``flat`` holds
        self.rounds: Any = None  # a media batch: its rounds (``_media_rounds``)
        self.round_left = 0
        self.keep: tuple[int, str] | None = None
        self.to_run: list[int] = []
        self.not_run = None
        self.held_calls: list = []  # a pure batch's (call key, outcome) pairs, for the memo once it completes
        self.held_chunks: list = []
        # non-batched
        self.input: Draft | None = plan.input_draft
        self.outcome: CallOutcome | None = None

    @property
    def batched(self) -> bool:
        return self.plan.batched

    @property
    def media(self) -> bool:
        return self.plan.lens is not None and self.plan.lens.describe is not None


class Scheduler:
    """Carries out a plan on an executor and hands every instance, in plan order, to an ``Assembly``."""

    def __init__(self, planner: Planner, instances: list[InstancePlan], singles: dict, assembly: Assembly,
                 executor: Any, memo: Any, progress: Any):
        self.planner = planner
        self.caps: Caps = planner.caps
        self.assembly = assembly
        self.executor = executor
        self.memo = memo
        self.progress = progress
        self.done = 0
        self.stream: Any = None
        self._floors: dict[int, int] | None = None  # per pass of _advance: position -> budget floor
        self.backlog: deque = deque()  # (work, frame indices, input drafts or None, limit): tasks not yet handed over
        self.works = [_Work(i, ip, singles.get(ip.instance_id)) for i, ip in enumerate(instances)]
        # jobs known so far; an instance not yet expanded counts one, as in the plan session
        self.total = sum(1 for ip in instances if ip.problem is None and ip.expanding)
        by_id = {w.plan.instance_id: w for w in self.works}
        for work in self.works:
            if work.plan.problem is None and work.plan.expanding:
                work.upstream = by_id[work.plan.source.instance_id]
        self.next_to_assemble = 0
        self.provenance: dict[str, tuple] = {}
        self.counting = memo is not None and hasattr(memo, "ran")
        if self.counting:  # what this recompute runs, and what the memo spares, per instance (the CLI reports it)
            memo.ran = {}
            memo.reused = {}

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        with stream_of(self.executor, run_chunk) as stream:
            self.stream = stream
            while True:
                self._advance()
                if self.next_to_assemble == len(self.works):
                    return
                self._pump()
                if not stream.pending:  # nothing in flight and nothing could start: a bug, never a hang
                    stuck = self.works[self.next_to_assemble].plan.instance_id
                    raise RuntimeError(f"recompute schedule stalled at instance {stuck!r}")
                for tag, result in stream.wait():
                    self._finished_task(tag, result)

    def _advance(self) -> None:
        """Start, feed and assemble whatever can be, until nothing changes."""
        changed = True
        while changed:
            changed = False
            self._floors = None
            for work in self.works:
                if work.assembled:
                    continue
                waits_on_upstream = work.upstream is not None and (not work.started or not work.frames_final)
                if waits_on_upstream:  # only worth a look if the upstream moved, or the budget it is under
                    upstream = work.upstream
                    # a media batch's start waits on its own budget floor too (_media_may_start)
                    budget_matters = (bool(upstream.flat) and not upstream.assembled) or (
                        work.media and not work.started)
                    seen = (upstream.mark, self.next_to_assemble if budget_matters else None)
                    if seen == work.seen:
                        continue
                    work.seen = seen
                if not work.started:
                    changed |= self._try_start(work)
                elif work.plan.expanding and work.batched and not work.frames_final:
                    changed |= self._feed(work)
                if work.started and work.media and work.rounds is not None and work.round_left == 0:
                    changed |= self._next_round(work)
            while self.next_to_assemble < len(self.works) and self._assemble(self.works[self.next_to_assemble]):
                self.next_to_assemble += 1
                changed = True

    # -- progress ------------------------------------------------------------------------------
    def _expect(self, jobs: int) -> None:
        """More jobs are known. ``total`` never reaches ``done`` before the last job: an instance that
        reads another's outputs counts as one job until its last frames are planned."""
        self.total += jobs

    def _finished(self, jobs: int) -> None:
        self.done += jobs
        if self.progress is not None and jobs:
            self.progress(self.done, self.total)

    # -- budget bounds ----------------------------------------------------------------------------
    def _most_outputs(self, work: _Work) -> int:
        """At most how many outputs ``work`` can take from the recompute budget (exact once assembled)."""
        caps = self.caps
        if work.assembled:
            return len(self.assembly.outputs[work.plan.instance_id])
        if work.plan.problem is not None:
            return 0
        if not work.batched:
            if work.outcome is not None and not work.outcome.overflow:
                return len(work.outcome.outputs)
            return caps.max_total_drafts_per_recompute
        frames = len(work.drafts) if work.frames_final else caps.max_frames_evaluated
        return min(frames * caps.max_drafts_emitted_per_frame, caps.max_total_drafts_per_batch)

    def _budget_floor(self, work: _Work) -> tuple[int, bool]:
        """``(least budget left when work is assembled, whether that is exact)``.

        Exact for the next instance to assemble; otherwise the budget left
        minus what every unassembled instance before it can at most take,
        summed once per pass of ``_advance`` (a floor only rises as instances
        finish, so one from earlier in the pass is still a floor).
        """
        if work.position == self.next_to_assemble:
            return self.assembly.budget, True
        if self._floors is None:
            floors, budget = {}, self.assembly.budget
            for earlier in self.works[self.next_to_assemble:]:
                floors[earlier.position] = max(0, budget)
                budget -= self._most_outputs(earlier)
            self._floors = floors
        return self._floors.get(work.position, 0), False

    def _certain_outputs(self, work: _Work) -> tuple[int, bool]:
        """``(how many of work's outputs are certain to be kept, whether that is all of them)``."""
        if work.assembled:
            return len(self.assembly.outputs[work.plan.instance_id]), True
        if not work.batched or work.plan.problem is not None:
            return 0, False
        floor, _ = self._budget_floor(work)
        known = min(len(work.flat), floor)
        return known, work.complete and floor >= len(work.flat)

    def _upstream_outputs(self, work: _Work) -> list[Draft]:
        upstream = work.upstream
        if upstream.assembled:
            return list(self.assembly.outputs[upstream.plan.instance_id])
        return upstream.flat

    # -- starting an instance ------------------------------------------------------------------------
    def _try_start(self, work: _Work) -> bool:
        plan = work.plan
        if plan.problem is not None:
            work.started = work.complete = True
            return True
        if plan.expanding:
            certain, whole = self._certain_outputs(work.upstream)
            if not work.batched or work.media:
                if not whole:
                    return False
                outputs = self._upstream_outputs(work)[:certain]
                if not work.batched:
                    self._start_expanding_single(work, outputs)
                    return True
                frames = outputs[:self.caps.max_frames_evaluated]
                if not self._media_may_start(work, len(frames)):
                    return False
                work.frame_total = len(outputs)
                work.started = True
                self._add_block(work, self.planner.frames_from(plan, frames, 0, claim=True), final=True)
                return True
            work.started = True
            self._feed(work)
            return True
        if work.batched:
            if work.media and not self._media_may_start(work, len(work.fp.drafts)):
                return False
            work.frame_total = work.fp.total
            work.started = True
            self._add_block(work, work.fp, final=True)
            return True
        work.started = True
        key, cached, described = work.single
        self._run_single(work, work.input, key, cached, described)
        return True

    def _media_may_start(self, work: _Work, evaluated: int) -> bool:
        """A media batch starts once the outputs its caps keep are certain; then its first round is decided."""
        floor, exact = self._budget_floor(work)
        if not exact and floor < min(evaluated, self.caps.max_total_drafts_per_batch):
            return False
        work.keep = media_keep(self.caps, floor)
        return True

    def _start_expanding_single(self, work: _Work, upstream: list[Draft]) -> None:
        ids = tuple([d.id for d in upstream])
        if self.memo is None:
            carrier = pack_drafts(upstream)
        else:
            carrier = self.memo.carrier_for(ids, lambda: pack_drafts(upstream))
            self.assembly.live_carriers[ids] = carrier
        work.started = True
        work.input = carrier
        key, cached, described = self.planner.single_call(work.plan, carrier)
        self._run_single(work, carrier, key, cached, described)

    def _run_single(self, work: _Work, draft: Draft | None, key: Any, cached: Any, described: Any) -> None:
        work.single = (key, cached, described)
        self._expect(0 if work.plan.expanding else 1)  # an expanding call takes its placeholder's place
        outcome = describe_failure(described) or cached
        if outcome is cached and cached is not None:
            self._count_reused(work, 1)
        if outcome is not None:
            self._finished(1)
            work.outcome = outcome
            work.complete = True
            return
        self._submit(work, [None], [draft], self.caps.max_total_drafts_per_recompute)

    # -- frames of a batch ------------------------------------------------------------------------------
    def _feed(self, work: _Work) -> bool:
        """An expanding pure batch: plan the next blocks of frames its upstream has made certain."""
        certain, whole = self._certain_outputs(work.upstream)
        limit = self.caps.max_frames_evaluated
        have = len(work.drafts)
        changed = False
        upstream = self._upstream_outputs(work)
        while True:
            reach = min(certain, limit)
            end = have + CHUNK_FRAMES
            if end <= reach:
                block = upstream[have:end]
                final = end == reach and whole
            elif whole:
                block = upstream[have:reach]
                final = True
            else:
                return changed
            if final:
                work.frame_total = certain
            self._add_block(work, self.planner.frames_from(work.plan, block, have, claim=False), final)
            have = len(work.drafts)
            changed = True
            if final:
                return changed

    def _add_block(self, work: _Work, fp: FramePlan, final: bool) -> None:
        """Take a planned block of frames: reused chunks and calls now, the rest to the executor."""
        offset = len(work.drafts)
        work.drafts.extend(fp.drafts)
        work.source_ids.extend(fp.source_ids)
        work.call_keys.extend(fp.call_keys)
        work.chunk_keys.extend(fp.chunk_keys)
        work.outcomes.extend([None] * len(fp.drafts))
        count = len(fp.drafts)
        self._expect(count - (1 if final and work.plan.expanding else 0))  # the last block replaces the placeholder
        reused = from_memo = 0  # settled now (memo or plan-time failure); of them, from the memo
        to_run: list[int] = []
        for chunk_no, start in enumerate(range(0, count, CHUNK_FRAMES)):
            end = min(start + CHUNK_FRAMES, count)
            cached = fp.cached_chunks[chunk_no]
            work.chunks.append(cached)
            work.keep_chunk.append(cached is not None)
            work.left.append(0 if cached is not None else end - start)
            if cached is not None:
                reused += end - start
                from_memo += end - start
                continue
            for index in range(start, end):
                failure = describe_failure(fp.described[index])
                outcome = failure or fp.cached_calls[index]
                if outcome is None:
                    to_run.append(offset + index)
                else:
                    work.outcomes[offset + index] = outcome
                    work.left[-1] -= 1
                    reused += 1
                    from_memo += failure is None
        self._finished(reused)
        self._count_reused(work, from_memo)
        if final:
            work.frames_final = True
            if work.plan.expanding:  # the batch's frames as one plan, for assembly
                work.fp = FramePlan(
                    total=work.frame_total, drafts=tuple(work.drafts), source_ids=tuple(work.source_ids),
                    malformed=False, call_keys=tuple(work.call_keys), chunk_keys=tuple(work.chunk_keys),
                    cached_chunks=(), cached_calls=(), described=(),  # settled above; assembly reads none
                )
        if work.media:  # its frames are all planned at once (``_try_start``), its caps known
            work.to_run = to_run
            work.rounds = _media_rounds(work.outcomes, to_run, work.keep, self.caps)
            self._next_round(work)
            return
        self._submit_frames(work, to_run)
        first = offset // CHUNK_FRAMES
        self._chunks_done(work, [n for n in range(first, len(work.chunks)) if work.chunks[n] is None
                                 and not work.left[n]])

    def _submit_frames(self, work: _Work, indices: list[int]) -> None:
        if indices:
            self._submit(work, indices, None, self.caps.max_drafts_emitted_per_frame)

    def _next_round(self, work: _Work) -> bool:
        """A media batch whose round is done: the next round, or its end (frames never run)."""
        this_round = next(work.rounds, None)
        if this_round:
            work.round_left = len(this_round)
            self._submit_frames(work, this_round)
            return True
        work.rounds = None
        not_run = [i for i in work.to_run if work.outcomes[i] is None]
        if not_run:
            self._finished(len(not_run))
            work.not_run = self.assembly.not_run_warning(work.plan, work.keep, len(work.drafts), not_run,
                                                         work.outcomes)
            for index in not_run:
                work.outcomes[index] = CallOutcome()  # never ran: no output, no result
                work.left[index // CHUNK_FRAMES] -= 1
        self._chunks_done(work, range(len(work.chunks)))
        return True

    def _count_reused(self, work: _Work, jobs: int) -> None:
        if self.counting and jobs:
            self.memo.reused[work.plan.instance_id] = self.memo.reused.get(work.plan.instance_id, 0) + jobs

    # -- running -------------------------------------------------------------------------------------
    def _commit_step(self, work: _Work, jobs: int) -> int:
        """How many media jobs go in one task, so outcomes reach a durable memo as they finish.

        On one worker, one: a run killed mid-way loses only the job in flight,
        and the next run reuses every job that finished before the kill. With
        several workers the usual task size (a killed parallel run re-runs its
        unfinished tasks, which may replace their own outputs: the ledger
        knows them). Pure calls (cheap, many) always go in big tasks.
        """
        parallelism = getattr(self.executor, "parallelism", 1)
        if work.media and getattr(self.memo, "durable", None) is not None and parallelism == 1:
            return 1
        return task_size(jobs, parallelism, CHUNK_FRAMES)

    def _submit(self, work: _Work, indices: list, drafts: list | None, limit: int) -> None:
        """Queue calls for the executor in tasks (``drafts`` None: frames ``indices`` of a batch).

        A lens that cannot be shipped fails each call now. Tasks wait in
        ``backlog`` (ready order) until ``_pump`` hands them over.
        """
        lens = work.plan.lens
        if not getattr(self.executor, "in_process", False):
            problem = lens.shipping_problem()
            if problem is not None:
                message = f"{problem} (executor: {self.executor!r})"
                failed = CallOutcome(error_code="lensError", error=message, worker_failed=True)
                self._record(work, indices, [failed] * len(indices))
                return
        if self.counting:
            self.memo.ran[work.plan.instance_id] = self.memo.ran.get(work.plan.instance_id, 0) + len(indices)
        size = self._commit_step(work, len(indices))
        for at in range(0, len(indices), size):
            part = None if drafts is None else drafts[at:at + size]
            self.backlog.append((work, indices[at:at + size], part, limit))

    def _pump(self) -> None:
        """Hand queued tasks to the executor, keeping about two per worker in flight.

        The executor always has work, and no more than that: a task's list of
        input drafts is made as it is handed over, so a million-frame batch
        never holds a million task entries (nor does a Dask scheduler hold a
        million futures).
        """
        stream, backlog = self.stream, self.backlog
        window = max(2, 2 * getattr(self.executor, "parallelism", 1))
        prepare = None
        if not getattr(self.executor, "in_process", False):
            prepare = getattr(stream, "prepare", None) or getattr(self.executor, "will_run", None)
        while backlog and stream.pending < window:
            work, indices, drafts, limit = backlog.popleft()
            plan = work.plan
            if drafts is None:
                drafts = list(map(work.drafts.__getitem__, indices))
            if prepare is not None:
                prepare(plan.lens)
            batch_id = plan.batch_id if work.batched else None  # a non-batched call is in no batch
            stream.submit((plan.lens, plan.params, drafts, (plan.instance_id, batch_id, indices), limit),
                          (work, indices))

    def _finished_task(self, tag: tuple, result: Any) -> None:
        work, indices = tag
        lens = work.plan.lens
        if isinstance(result, ChunkFailed):
            outcomes = [worker_failure(lens, result.reason) for _ in indices]
        elif result and result[-1].error_code == INTERRUPTED:  # run_chunk stops at the call that says so
            raise KeyboardInterrupt(f"lens {lens.id!r} raised KeyboardInterrupt; the recompute stopped")
        else:
            outcomes = result
        self._record(work, indices, outcomes)

    def _record(self, work: _Work, indices: list, outcomes: list) -> None:
        """Outcomes of finished calls: into the memo at once, then into their frames."""
        memo = self.memo
        lens = work.plan.lens
        self._finished(len(indices))
        if not work.batched:
            (outcome,) = outcomes
            if memo is not None and not outcome.worker_failed:
                memo.put_call(work.single[0], outcome, lens.id)
            work.outcome = outcome
            work.complete = True
            return
        frames = work.outcomes
        for index, outcome in zip(indices, outcomes, strict=True):
            frames[index] = outcome
        finished = Counter(map(floordiv, indices, repeat(CHUNK_FRAMES)))  # chunk number -> calls finished
        left = work.left
        for chunk_no, count in finished.items():
            left[chunk_no] -= count
        if memo is not None:
            call_keys = work.call_keys
            for index, outcome in zip(indices, outcomes, strict=True):
                if outcome.worker_failed:
                    continue
                if work.media:  # a job's files exist now: a run killed later must still reuse them
                    memo.put_call(call_keys[index], outcome, lens.id)
                else:
                    work.held_calls.append((call_keys[index], outcome))
        if work.media:
            work.round_left -= len(indices)
            return  # a media batch is assembled once its last round is done
        self._chunks_done(work, sorted(finished))

    # -- assembling ----------------------------------------------------------------------------------
    def _chunks_done(self, work: _Work, chunk_nos) -> None:
        """Assemble those of ``chunk_nos`` whose frames are all done; grow the outputs downstream instances read."""
        if work.media and work.rounds is not None:
            return
        plan = work.plan
        provenance = self.provenance.get(plan.instance_id)
        if provenance is None:
            provenance = self.provenance[plan.instance_id] = provenance_of(plan)
        cacheable = self.memo is not None and not work.media
        count = len(work.drafts)
        for chunk_no in chunk_nos:
            if work.chunks[chunk_no] is not None or work.left[chunk_no]:
                continue
            start = chunk_no * CHUNK_FRAMES
            end = min(start + CHUNK_FRAMES, count)
            chunk = assemble_chunk(plan, work.source_ids, work.outcomes, start, end, self.caps, provenance)
            # A call lost with its worker (or a lens that could not reach one) is never kept.
            keep = cacheable and not any(work.outcomes[i].worker_failed for i in range(start, end))
            if keep:
                work.held_chunks.append((work.chunk_keys[chunk_no], chunk, tuple(work.call_keys[start:end])))
            work.chunks[chunk_no] = chunk
            work.keep_chunk[chunk_no] = keep
            if not work.media:  # the chunk holds the outputs now (and held_calls what the memo gets)
                work.outcomes[start:end] = [None] * (end - start)
        cap = self.caps.max_total_drafts_per_batch
        work.mark += 1
        while work.flat_chunks < len(work.chunks) and work.chunks[work.flat_chunks] is not None:
            if len(work.flat) < cap:
                work.flat.extend(work.chunks[work.flat_chunks].flat[: cap - len(work.flat)])
            work.flat_chunks += 1
        if work.frames_final and work.flat_chunks == len(work.chunks):
            work.complete = True
            self._commit(work)

    def _commit(self, work: _Work) -> None:
        """A pure batch is complete: its calls and chunks go to the memo (a recompute stopped by a
        lens's KeyboardInterrupt keeps none of the batch it stopped in)."""
        memo, lens_id = self.memo, work.plan.lens.id
        for key, outcome in work.held_calls:
            memo.put_call(key, outcome, lens_id)
        for key, chunk, call_keys in work.held_chunks:
            memo.put_chunk(key, chunk, call_keys)
        work.held_calls = []
        work.held_chunks = []

    def _assemble(self, work: _Work) -> bool:
        """Hand a complete instance to the assembly (called in plan order only)."""
        if not work.complete:
            return False
        plan = work.plan
        if plan.problem is not None:
            self.assembly.problem(plan)
        else:
            self.assembly.begin(plan)
            if work.batched:
                self.assembly.batch(plan, work.fp, work.chunks, work.keep_chunk, work.not_run)
            else:
                self.assembly.single(plan, work.input, work.outcome)
        work.assembled = True
        work.mark += 1
        # Downstream instances read the exact outputs from here on; drop the scratch copies.
        work.flat = []
        work.outcomes = []
        work.chunks = []
        return True


def _media_rounds(outcomes: list, to_run: list[int], keep: tuple[int, str], caps: Caps):
    """The frames of a media batch to run, round by round, never one whose output caps would drop.

    A media lens yields exactly one output per completed frame and none per
    failed one, so walking the frames in order, the first ``keep`` that may
    still yield an output are run; each round replaces the frames that failed
    with the next ones. The kept outputs are exactly those a run of every
    frame would keep; frames never scheduled would only have been dropped.
    ``outcomes`` is read after each round (the caller fills it in).
    """
    limit = keep[0]
    pending = set(to_run)
    per_frame = caps.max_drafts_emitted_per_frame
    while pending:
        count, this_round = 0, []
        for index, outcome in enumerate(outcomes):
            if count >= limit:
                break
            if outcome is not None:
                count += 0 if outcome.error_code is not None else min(len(outcome.outputs), per_frame)
            elif index in pending:
                this_round.append(index)
                count += 1
        if not this_round:
            return
        yield this_round
        pending.difference_update(this_round)
