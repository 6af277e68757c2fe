"""recompute_derived: the single writer of derived state.

It plans (``derived.plan``), runs what the plan says must run through an
executor, reuses what the plan says is reused, and assembles: lens instances
dependencies first, then in insertion order; a ``packDrafts`` carrier input is
mapped frame by frame (``frameIndex`` then ``variantIndex`` order), every other
input is one call. Caps drop from the end of that order and say so in
warnings. Bad input of any kind becomes a warning with the instance, batch and
frame it concerns; nothing touches the store.
"""

from __future__ import annotations

import gc
import threading
from array import array
from contextlib import contextmanager
from itertools import accumulate
from typing import Any

import attrs

from drafts.carrier import pack_drafts
from drafts.draft import Draft, engine_meta, output_drafts
from drafts.engine_meta import EngineMeta
from drafts.errors import DraftError
from drafts.store import Store
from lenses import default_registry
from lenses.lens import Lens
from lenses.registry import Registry
from lenses.result import FAILED, ExecutionResult

from .caps import Caps
from .diagnostics import DerivedWarning
from .evaluate import INTERRUPTED, CallOutcome, call_lens
from .executors import ChunkFailed, SerialExecutor, task_size
from .order import evaluation_order, is_batched
from .plan import CHUNK_FRAMES, FramePlan, InstancePlan, build_plan, describe_failure, job_id_for
from .state import BatchFrameIndex, BatchSummary, DerivedState

__all__ = ["recompute_derived", "evaluation_order", "is_batched", "run_chunk"]


def run_chunk(task: tuple) -> list[CallOutcome]:
    """The one function executors run: a chunk of calls of one lens, in order.

    A lens that did not arrive in a worker (``lenses.lens.UnavailableLens``:
    its code differs there, or it cannot be found) fails each call with the
    reason; a call the lens ended with KeyboardInterrupt ends the chunk.
    """
    lens, params, items, limit = task
    if type(lens) is not Lens:
        reason = getattr(lens, "reason", f"not a lens: {type(lens).__name__}")
        return [CallOutcome(error_code="lensError", error=reason, worker_failed=True) for _ in items]
    out = []
    for draft, context in items:
        outcome = call_lens(lens, params, draft, context, limit)
        out.append(outcome)
        if outcome.error_code == INTERRUPTED:
            break
    return out


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_saved: tuple[int, int, int] | None = None
FULL_COLLECTION_THRESHOLD = 10**9
"""``gc`` threshold 2 while a recompute runs: no full collection starts until it ends."""


@contextmanager
def full_collections_deferred():
    """Keep the cyclic GC on; only defer full (generation-2) collections until the recompute ends.

    A recompute builds many long-lived objects (its outputs), and each full
    collection walks all of them: with the default thresholds that was most
    of the GC's cost (see benchmarks/README.md). Young collections still run
    as usual, so a cycle a lens leaves behind is freed within a few calls.
    The thresholds are process-wide, so they are set by the outermost
    recompute (of any thread) and restored exactly when it ends; worker
    processes reset them when they start (``derived.executors``). Nothing
    switches the GC off.
    """
    global _gc_depth, _gc_saved
    with _gc_lock:
        _gc_depth += 1
        if _gc_depth == 1:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(_gc_saved[0], _gc_saved[1], FULL_COLLECTION_THRESHOLD)
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_saved is not None:
                gc.set_threshold(*_gc_saved)
                _gc_saved = None


def recompute_derived(
    store: Store,
    *,
    registry: Registry | None = None,
    caps: Caps | None = None,
    executor: Any = None,
    memo: Any = None,
    monitor: Any = None,
    progress: Any = None,
    force: bool = False,
) -> DerivedState:
    """Turn a store into derived state. Pure: equal stores and caps give equal results.

    ``executor`` (default ``SerialExecutor()``) decides where calls run,
    ``memo`` lets successive recomputes reuse unchanged calls, ``monitor``
    sees the plan and the state, ``progress(done, total)`` is called as jobs
    finish. None of them changes the result. ``force`` runs every job even
    where the memo could stand in (and refreshes the memo).

    >>> from drafts import Store, make_draft, pack_drafts
    >>> words = pack_drafts([make_draft({"text": w}) for w in ["a", "b"]])
    >>> store = Store.empty().add_draft(words).add_lens_instance("up", "text.upper", words.id)
    >>> [d.payload["text"] for d in recompute_derived(store).outputs("up")]
    ['A', 'B']
    """
    if not isinstance(store, Store):
        raise TypeError(f"recompute_derived takes a Store, got {type(store).__name__}")
    session, planner, (instances, singles) = build_plan(
        store, default_registry if registry is None else registry, caps or Caps(), memo, force
    )
    if monitor is not None:
        monitor.observe_session(session)
    run = _Run(session, planner, executor or SerialExecutor(), memo, progress)
    for plan in instances:
        run.instance(plan, singles.get(plan.instance_id))
    state = run.finish()
    if monitor is not None:
        monitor.observe_state(state)
    return state


@attrs.frozen
class _Chunk:
    """One chunk of a batch, assembled: what the memo keeps and reuses whole."""

    warnings: tuple[DerivedWarning, ...]
    results: tuple[tuple[int, ExecutionResult], ...]
    flat: tuple[Draft, ...]
    counts: tuple[int, ...]


class _Run:
    """The mutable scratchpad of one recompute; only ``finish`` publishes it."""

    def __init__(self, session, planner, executor, memo, progress):
        self.session = session
        self.planner = planner
        self.caps: Caps = planner.caps
        self.executor = executor
        self.memo = memo
        self.progress = progress
        self.budget = self.caps.max_total_drafts_per_recompute
        self.outputs: dict[str, tuple[Draft, ...]] = {}
        self.failed: set[str] = set()
        self.drafts: dict[str, Draft] = {}
        self.by_batch: dict[str, tuple[str, ...]] = {}
        self.frame_offsets: dict[str, tuple[tuple[str, ...], array]] = {}
        self.summaries: dict[str, BatchSummary] = {}
        self.batch_ids: dict[str, str] = {}
        self.warnings: list[DerivedWarning] = []
        self.results: dict[Any, ExecutionResult] = {}
        self.origins: dict[Any, tuple] = {}
        self.live_chunks: dict[Any, _Chunk] = {}
        self.live_carriers: dict[tuple[str, ...], Draft] = {}
        self.lens_codes: dict[tuple[str, str], str] = {}
        if memo is not None and hasattr(memo, "ran"):
            memo.ran = {}  # what this recompute runs, per instance (the CLI reports it)
        self.done = 0
        self.total = 0

    # -- progress ------------------------------------------------------------------
    def _expect(self, jobs: int) -> None:
        self.total += jobs

    def _finished(self, jobs: int) -> None:
        self.done += jobs
        if self.progress is not None and jobs:
            self.progress(self.done, self.total)

    # -- one instance ----------------------------------------------------------------
    def instance(self, plan: InstancePlan, single: Any) -> None:
        instance_id = plan.instance_id
        self.outputs[instance_id] = ()
        if plan.problem is not None:
            self.failed.add(instance_id)
            self.warnings.append(plan.problem)
            return
        self.batch_ids[instance_id] = plan.batch_id
        self._check_code(plan)
        # The engine's meta of every output: provenance frozen once, the rest spliced as bytes.
        provenance = engine_meta(plan.lens.id, plan.lens.version, instance_id, plan.batch_id)
        if plan.expanding:
            upstream = self.outputs[plan.source.instance_id]
            carrier = self._carrier(upstream)
            if plan.batched:
                kept = self._batch(plan, self.planner.frames(plan, carrier), provenance)
            else:
                key, cached, described = self.planner.single_call(plan, carrier)
                kept = self._single(plan, carrier, key, cached, described, provenance)
        elif plan.batched:
            kept = self._batch(plan, plan.frames, provenance)
        else:
            key, cached, described = single
            kept = self._single(plan, plan.input_draft, key, cached, described, provenance)
        self.outputs[instance_id] = kept
        drafts = self.drafts
        for d in kept:
            drafts[d.id] = d

    def _check_code(self, plan: InstancePlan) -> None:
        """Warn when the memo saw other code under this lens id and version (nothing of it is reused)."""
        if self.memo is None:
            return
        lens = plan.lens
        fingerprint = lens.code_fingerprint
        before = self.memo.lens_code(lens.key)
        if before is not None and before != fingerprint:
            self.warnings.append(DerivedWarning(
                "lensCodeChanged",
                f"lens {lens.id!r} v{lens.version}: its code changed since the memo's last results, but not its "
                "version; no result of the old code was reused (bump the version when a lens computes "
                "something else, so outputs' provenance tells them apart)",
                plan.instance_id, plan.batch_id, None,
                {"lensId": lens.id, "lensVersion": lens.version, "was": before, "now": fingerprint},
            ))
        self.lens_codes[lens.key] = fingerprint

    def _carrier(self, upstream: tuple[Draft, ...]) -> Draft:
        ids = tuple([d.id for d in upstream])
        if self.memo is None:
            return pack_drafts(upstream)
        carrier = self.memo.carrier_for(ids, lambda: pack_drafts(upstream))
        self.live_carriers[ids] = carrier
        return carrier

    def _warner(self, instance_id: str, batch_id: str | None = None):
        def warn(code: str, message: str, frame_index: int | None = None, **details: Any) -> DerivedWarning:
            return DerivedWarning(code, message, instance_id, batch_id, frame_index, details)

        return warn

    def _execute(self, lens: Lens, params: Any, items: list, limit: int) -> list[CallOutcome]:
        """Run calls through the executor in chunks; a failed chunk fails each of its calls.

        An executor that is not ``in_process`` ships the lens by reference: a
        lens that cannot be shipped fails each call with a warning that says
        why; ``will_run(lens)``, where an executor has it, lets it make sure
        its workers run this code (``ProcessExecutor`` restarts them if not).
        """
        executor = self.executor
        if not getattr(executor, "in_process", False):
            problem = lens.shipping_problem()
            if problem is not None:
                self._finished(len(items))
                message = f"{problem} (executor: {executor!r})"
                return [CallOutcome(error_code="lensError", error=message, worker_failed=True) for _ in items]
            will_run = getattr(executor, "will_run", None)
            if will_run is not None:
                will_run(lens)
        if items and self.memo is not None and hasattr(self.memo, "ran"):
            instance_id = items[0][1][0]
            self.memo.ran[instance_id] = self.memo.ran.get(instance_id, 0) + len(items)
        size = task_size(len(items), getattr(executor, "parallelism", 1), CHUNK_FRAMES)
        tasks = [(lens, params, items[i:i + size], limit) for i in range(0, len(items), size)]
        sizes = [len(t[2]) for t in tasks]
        chunks = executor.map(run_chunk, tasks, lambda index: self._finished(sizes[index]))
        out: list[CallOutcome] = []
        for task, chunk in zip(tasks, chunks, strict=True):
            if isinstance(chunk, ChunkFailed):
                out.extend(_worker_failure(lens, chunk.reason) for _ in task[2])
            elif any(outcome.error_code == INTERRUPTED for outcome in chunk):
                raise KeyboardInterrupt(f"lens {lens.id!r} raised KeyboardInterrupt; the recompute stopped")
            else:
                out.extend(chunk)
        return out

    def _commit_step(self, lens: Lens, jobs: int) -> int:
        """How many media jobs run before their outcomes are committed to a durable memo.

        On one worker, one: a run killed mid-way loses only the job in flight,
        and the next run reuses every job that finished before the kill. With
        several workers the round goes to the executor whole (slices would
        leave workers idle between them, where a stop signal finds them
        outside any job); a killed parallel run re-runs the unfinished
        round's jobs, which may replace their own outputs (the ledger knows
        them). Pure calls (cheap, many) always go all at once.
        """
        if (lens.describe is None or getattr(self.memo, "durable", None) is None
                or getattr(self.executor, "parallelism", 1) != 1):
            return max(1, jobs)
        return 1

    # -- non-batched: one call ------------------------------------------------------------
    def _single(self, plan, draft, key, cached, described, provenance) -> tuple[Draft, ...]:
        warn = self._warner(plan.instance_id)
        limit = self.caps.max_total_drafts_per_recompute
        self._expect(1)
        outcome = describe_failure(described) or cached
        if outcome is not None:
            self._finished(1)
        else:
            (outcome,) = self._execute(plan.lens, plan.params, [(draft, (plan.instance_id, None, None))], limit)
            if self.memo is not None and not outcome.worker_failed:
                self.memo.put_call(key, outcome, plan.lens.id)
        if outcome.result is not None:
            jid = job_id_for(self.session.session_id, plan.instance_id, None)
            self.results[jid] = outcome.result.with_job_id(str(jid))
            self.origins[jid] = (plan.instance_id, None, draft.id if draft is not None else None)
        made, frame_warnings = _drafts_of(outcome, provenance, None, None, warn)
        self.warnings.extend(frame_warnings)
        if outcome.overflow:
            self.warnings.append(warn(
                "truncatedRecomputeOutputs",
                f"the call emitted more than {limit} outputs (the recompute cap)",
                limit=limit,
            ))
        return tuple(self._spend(made, warn))

    # -- batched: map over frames ---------------------------------------------------------------
    def _batch(self, plan: InstancePlan, fp: FramePlan, provenance) -> tuple[Draft, ...]:
        caps = self.caps
        instance_id, batch_id, lens = plan.instance_id, plan.batch_id, plan.lens
        warn = self._warner(instance_id, batch_id)
        start_warnings = len(self.warnings)
        evaluated = len(fp.drafts)
        if fp.malformed:
            self.warnings.append(warn(
                "malformedCarrier",
                "carrier has no payload['values'] list; evaluated zero frames",
            ))
        if fp.total > evaluated:
            self.warnings.append(warn(
                "truncatedFrames",
                f"carrier has {fp.total} frames; evaluated the first {evaluated} (max_frames_evaluated)",
                requested=fp.total, evaluated=evaluated, limit=caps.max_frames_evaluated,
            ))
        self._expect(evaluated)

        # Decide each frame's outcome: cached chunk, cached call, plan-time failure, or run now.
        outcomes: list[Any] = [None] * evaluated
        to_run: list[int] = []
        reused = 0
        for chunk_no, start in enumerate(range(0, evaluated, CHUNK_FRAMES)):
            end = min(start + CHUNK_FRAMES, evaluated)
            if fp.cached_chunks[chunk_no] is not None:
                reused += end - start
                continue
            for index in range(start, end):
                outcome = describe_failure(fp.described[index]) or fp.cached_calls[index]
                if outcome is None:
                    to_run.append(index)
                else:
                    outcomes[index] = outcome
                    reused += 1
        self._finished(reused)
        rounds = [to_run] if lens.describe is None else _media_rounds(outcomes, to_run, self._media_keep(), caps)
        for this_round in rounds:
            if not this_round:
                break
            step = self._commit_step(lens, len(this_round))
            for at in range(0, len(this_round), step):
                part = this_round[at:at + step]
                items = [(fp.drafts[i], (instance_id, batch_id, i)) for i in part]
                ran = self._execute(lens, plan.params, items, caps.max_drafts_emitted_per_frame)
                for index, outcome in zip(part, ran, strict=True):
                    outcomes[index] = outcome
                    if self.memo is not None and not outcome.worker_failed:
                        self.memo.put_call(fp.call_keys[index], outcome, lens.id)
        not_run = [i for i in to_run if outcomes[i] is None]
        if not_run:
            self._finished(len(not_run))
            self.warnings.append(self._not_run_warning(warn, evaluated, not_run, outcomes))
            for index in not_run:
                outcomes[index] = CallOutcome()  # never ran: no output, no result

        # Assemble chunk by chunk (a cached chunk is taken whole).
        chunks: list[_Chunk] = []
        cacheable = self.memo is not None and lens.describe is None
        for chunk_no, start in enumerate(range(0, evaluated, CHUNK_FRAMES)):
            chunk = fp.cached_chunks[chunk_no]
            keep = cacheable
            if chunk is None:
                end = min(start + CHUNK_FRAMES, evaluated)
                chunk = self._assemble(fp, outcomes, start, end, batch_id, provenance, warn)
                # A call lost with its worker (or a lens that could not reach one) is never kept.
                keep = cacheable and not any(outcomes[i].worker_failed for i in range(start, end))
                if keep:
                    self.memo.put_chunk(fp.chunk_keys[chunk_no], chunk, fp.call_keys[start:end])
            if keep:
                self.live_chunks[fp.chunk_keys[chunk_no]] = chunk
            chunks.append(chunk)
            self.warnings.extend(chunk.warnings)
            for index, result in chunk.results:
                jid = job_id_for(self.session.session_id, instance_id, index)
                self.results[jid] = result.with_job_id(str(jid))
                self.origins[jid] = (instance_id, index, fp.drafts[index].id)

        flat: list[Draft] = []
        counts: list[int] = []
        for chunk in chunks:
            flat.extend(chunk.flat)
            counts.extend(chunk.counts)
        requested = len(flat)
        if requested > caps.max_total_drafts_per_batch:
            self.warnings.append(warn(
                "truncatedBatchOutputs",
                f"batch produced {requested} outputs; kept the first {caps.max_total_drafts_per_batch} "
                "(max_total_drafts_per_batch)",
                requested=requested, emitted=caps.max_total_drafts_per_batch, limit=caps.max_total_drafts_per_batch,
            ))
            flat = flat[: caps.max_total_drafts_per_batch]
        kept = self._spend(flat, warn)
        if len(kept) < requested:
            counts = _keep_counts(counts, len(kept))

        ids = tuple([d.id for d in kept])
        self.by_batch[batch_id] = ids
        self.frame_offsets[batch_id] = (ids, array("q", accumulate(counts, initial=0)))
        batch_warnings = tuple(self.warnings[start_warnings:])
        self.summaries[batch_id] = BatchSummary(
            frames=evaluated,
            outputs=len(kept),
            outputs_per_frame=tuple(counts),
            lens_instance_id=instance_id,
            lens_id=lens.id,
            truncated=any(w.code.startswith("truncated") for w in batch_warnings),
            warnings=batch_warnings,
        )
        return tuple(kept)

    def _assemble(self, fp, outcomes, start, end, batch_id, provenance, warn) -> _Chunk:
        cap = self.caps.max_drafts_emitted_per_frame
        flat: list[Draft] = []
        counts: list[int] = []
        warnings, results = [], []
        source_ids = fp.source_ids
        for index in range(start, end):
            outcome = outcomes[index]
            try:  # the common case inline; _drafts_of says what went wrong otherwise
                made = output_drafts(outcome.outputs, provenance, index, source_ids[index])
            except DraftError:
                made = None
            if made is None or outcome.error_code is not None:
                made, frame_warnings = _drafts_of(outcome, provenance, index, source_ids[index], warn)
                warnings.extend(frame_warnings)
            if outcome.result is not None:
                results.append((index, outcome.result))
            if outcome.overflow:
                warnings.append(warn(
                    "truncatedFrameOutputs",
                    f"frame {index} emitted more than {cap} outputs; kept the first {cap} "
                    "(max_drafts_emitted_per_frame)",
                    frame_index=index, emitted=len(made), limit=cap,
                ))
            flat.extend(made)
            counts.append(len(made))
        return _Chunk(tuple(warnings), tuple(results), tuple(flat), tuple(counts))

    # -- caps that drop media work before it runs -------------------------------------------------
    def _media_keep(self) -> tuple[int, str]:
        """``(outputs a media batch can keep, the cap that says so)``: the tightest cap."""
        caps = self.caps
        options = [(caps.max_total_drafts_per_batch, "max_total_drafts_per_batch"),
                   (self.budget, "max_total_drafts_per_recompute")]
        if caps.max_drafts_emitted_per_frame == 0:
            options.append((0, "max_drafts_emitted_per_frame"))
        return min(options, key=lambda o: o[0])

    def _not_run_warning(self, warn, evaluated: int, not_run: list[int], outcomes: list) -> DerivedWarning:
        limit, cap = self._media_keep()
        code = {"max_total_drafts_per_batch": "truncatedBatchOutputs",
                "max_total_drafts_per_recompute": "truncatedRecomputeOutputs"}.get(cap, "truncatedFrameOutputs")
        kept = sum(len(o.outputs) for o in outcomes if o is not None and o.error_code is None)
        return warn(
            code,
            f"batch of {evaluated} frames keeps at most {limit} outputs ({cap}); {len(not_run)} frames "
            f"(from frame {not_run[0]} on) were not run, since their outputs would be dropped",
            requested=kept + len(not_run), emitted=min(kept, limit), limit=limit, not_run=len(not_run),
            first_not_run=not_run[0],
        )

    def _spend(self, drafts: list[Draft], warn) -> list[Draft]:
        """Take outputs from the recompute budget, in order; say what did not fit."""
        if len(drafts) <= self.budget:
            self.budget -= len(drafts)
            return drafts
        kept = drafts[: self.budget]
        self.warnings.append(warn(
            "truncatedRecomputeOutputs",
            f"{len(drafts)} outputs requested but only {self.budget} left of the recompute cap "
            f"{self.caps.max_total_drafts_per_recompute}",
            requested=len(drafts), emitted=self.budget, limit=self.caps.max_total_drafts_per_recompute,
        ))
        self.budget = 0
        return kept

    def finish(self) -> DerivedState:
        if self.memo is not None:
            self.memo.replace_chunks(self.live_chunks)
            self.memo.replace_carriers(self.live_carriers)
            self.memo.record_lens_code(self.lens_codes)
        return DerivedState(
            outputs=self.outputs,
            drafts=self.drafts,
            draft_ids_by_batch_id=self.by_batch,
            draft_ids_by_batch_frame=BatchFrameIndex(self.frame_offsets),
            batch_summary_by_batch_id=self.summaries,
            warnings=tuple(self.warnings),
            results=self.results,
            plan=self.session,
            batch_id_by_instance=self.batch_ids,
            job_origins=self.origins,
        )


_NO_WARNINGS: list = []


def _drafts_of(outcome: CallOutcome, engine: EngineMeta, index: int | None, source_id: str | None,
               warn) -> tuple[list, list]:
    """Output drafts of one call (of frame ``index``, or None), or none and a warning if it failed or gave a bad output."""
    if outcome.error_code is not None:
        return [], [warn(outcome.error_code, outcome.error, frame_index=index, **dict(outcome.details))]
    try:
        return output_drafts(outcome.outputs, engine, index, source_id), _NO_WARNINGS
    except DraftError as exc:  # checked where the lens ran, but for lone surrogates in meta (found when hashing)
        return [], [warn("invalidOutput", str(exc), frame_index=index)]


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


def _worker_failure(lens: Lens, reason: str) -> CallOutcome:
    message = f"worker failed (not retried): {reason}"
    if lens.describe is not None:
        result = ExecutionResult(job_id=None, status=FAILED, failure_class="execution", message=message)
        return CallOutcome(error_code="executionFailed", error=f"execution failure: {message}", result=result,
                           worker_failed=True)
    return CallOutcome(error_code="lensError", error=message, worker_failed=True)


def _keep_counts(counts: list[int], n: int) -> list[int]:
    """Per-frame counts after keeping only the first ``n`` outputs of the batch."""
    out = []
    for count in counts:
        take = min(count, max(0, n))
        n -= take
        out.append(take)
    return out
