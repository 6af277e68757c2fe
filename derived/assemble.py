"""Assembly: the last stage of a recompute, outcomes in, ``DerivedState`` out.

Whatever order jobs finish in (``derived.schedule``), assembly follows plan
order: instance by instance, frame by frame (``frameIndex`` then
``variantIndex``). That order alone decides which outputs the caps drop, what
the warnings say and how the indexes read, so equal plans and equal outcomes
give equal states on every executor. Nothing here runs a lens or reads the
disk.
"""

from __future__ import annotations

from array import array
from itertools import accumulate
from typing import Any

import attrs

from drafts.draft import Draft, engine_meta, frames_output_drafts, output_drafts
from drafts.engine_meta import EngineMeta
from drafts.errors import DraftError
from lenses.lens import Lens
from lenses.result import FAILED, ExecutionResult

from .caps import Caps
from .diagnostics import DerivedWarning
from .evaluate import CallOutcome
from .plan import BatchPlanSession, FramePlan, InstancePlan, job_id_for
from .state import BatchFrameIndex, BatchSummary, DerivedState

__all__ = ["Assembly", "Chunk", "assemble_chunk", "media_keep", "worker_failure"]


@attrs.frozen
class Chunk:
    """One chunk of a batch, assembled: what the memo keeps and reuses whole."""

    warnings: tuple[DerivedWarning, ...]
    results: tuple[tuple[int, ExecutionResult], ...]
    flat: tuple[Draft, ...]
    counts: tuple[int, ...]


def provenance_of(plan: InstancePlan) -> EngineMeta:
    """The engine's meta every output of an instance shares: provenance frozen once, the rest spliced as bytes."""
    return engine_meta(plan.lens.id, plan.lens.version, plan.instance_id, plan.batch_id)


def warner(instance_id: str, batch_id: str | None = None):
    def warn(code: str, message: str, frame_index: int | None = None, **details: Any) -> DerivedWarning:
        return DerivedWarning(code, message, instance_id, batch_id, frame_index, details)

    return warn


def assemble_chunk(plan: InstancePlan, source_ids, outcomes: list, start: int, end: int, caps: Caps,
                   provenance: EngineMeta) -> Chunk:
    """Frames ``start:end`` of a batch as output drafts, tagged with ``meta.batch``, in frame order."""
    frames = outcomes[start:end]
    if not any([o.error_code is not None or o.overflow or o.result is not None for o in frames]):
        try:  # the common case (every call gave outputs, none too many, no job): one loop for the chunk
            flat, counts = frames_output_drafts([o.outputs for o in frames], provenance, start, source_ids[start:end])
            return Chunk((), (), tuple(flat), tuple(counts))
        except DraftError:
            pass  # frame by frame below, where the bad output becomes its frame's warning
    batch_id = plan.batch_id
    warn = warner(plan.instance_id, batch_id)
    cap = caps.max_drafts_emitted_per_frame
    flat = []
    counts = []
    warnings, results = [], []
    for index in range(start, end):
        outcome = outcomes[index]
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
    return Chunk(tuple(warnings), tuple(results), tuple(flat), tuple(counts))


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


def media_keep(caps: Caps, budget: int) -> tuple[int, str]:
    """``(outputs a media batch can keep, the cap that says so)``: the tightest cap, given the budget left."""
    options = [(caps.max_total_drafts_per_batch, "max_total_drafts_per_batch"),
               (budget, "max_total_drafts_per_recompute")]
    if caps.max_drafts_emitted_per_frame == 0:
        options.append((0, "max_drafts_emitted_per_frame"))
    return min(options, key=lambda o: o[0])


def worker_failure(lens: Lens, reason: str) -> CallOutcome:
    """The outcome of a call lost with its worker (never retried, never cached)."""
    message = f"worker failed (not retried): {reason}"
    if lens.describe is not None:
        result = ExecutionResult(job_id=None, status=FAILED, failure_class="execution", message=message)
        return CallOutcome(error_code="executionFailed", error=f"execution failure: {message}", result=result,
                           worker_failed=True)
    return CallOutcome(error_code="lensError", error=message, worker_failed=True)


class Assembly:
    """The derived state being put together, instance by instance in plan order; ``state()`` publishes it.

    ``budget`` is what is left of ``max_total_drafts_per_recompute`` after
    the instances assembled so far: exact, since they are assembled in plan
    order.
    """

    def __init__(self, session: BatchPlanSession, caps: Caps, memo: Any):
        self.session = session
        self.caps = caps
        self.memo = memo
        self.budget = caps.max_total_drafts_per_recompute
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
        self.live_chunks: dict[Any, Chunk] = {}
        self.live_carriers: dict[tuple[str, ...], Draft] = {}
        self.lens_codes: dict[tuple[str, str], str] = {}

    # -- per instance, in plan order ------------------------------------------------------
    def problem(self, plan: InstancePlan) -> None:
        """An instance the plan found it cannot run: no outputs, its warning."""
        self.outputs[plan.instance_id] = ()
        self.failed.add(plan.instance_id)
        self.warnings.append(plan.problem)

    def begin(self, plan: InstancePlan) -> None:
        """Before an instance's outputs: its batch id, and the lens-code check against the memo."""
        self.outputs[plan.instance_id] = ()
        self.batch_ids[plan.instance_id] = plan.batch_id
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

    def single(self, plan: InstancePlan, draft: Draft | None, outcome: CallOutcome) -> None:
        """A non-batched call's outputs (limited only by the recompute cap)."""
        instance_id = plan.instance_id
        warn = warner(instance_id)
        limit = self.caps.max_total_drafts_per_recompute
        if outcome.result is not None:
            jid = job_id_for(self.session.session_id, instance_id, None)
            self.results[jid] = outcome.result.with_job_id(str(jid))
            self.origins[jid] = (instance_id, None, draft.id if draft is not None else None)
        made, frame_warnings = _drafts_of(outcome, provenance_of(plan), None, None, warn)
        self.warnings.extend(frame_warnings)
        if outcome.overflow:
            self.warnings.append(warn(
                "truncatedRecomputeOutputs",
                f"the call emitted more than {limit} outputs (the recompute cap)",
                limit=limit,
            ))
        self._keep(plan, self._spend(made, warn))

    def batch(self, plan: InstancePlan, fp: FramePlan, chunks: list[Chunk], kept_chunks: list[bool],
              not_run: DerivedWarning | None) -> None:
        """A batch's outputs from its assembled chunks: batch cap, recompute budget, indexes, summary."""
        caps = self.caps
        instance_id, batch_id = plan.instance_id, plan.batch_id
        warn = warner(instance_id, batch_id)
        start_warnings = len(self.warnings)
        evaluated = len(fp.drafts)
        if fp.malformed:
            self.warnings.append(warn("malformedCarrier", "carrier has no payload['values'] list; evaluated zero frames"))
        if fp.total > evaluated:
            self.warnings.append(warn(
                "truncatedFrames",
                f"carrier has {fp.total} frames; evaluated the first {evaluated} (max_frames_evaluated)",
                requested=fp.total, evaluated=evaluated, limit=caps.max_frames_evaluated,
            ))
        if not_run is not None:
            self.warnings.append(not_run)
        flat: list[Draft] = []
        counts: list[int] = []
        session_id = self.session.session_id
        for chunk_no, (chunk, keep) in enumerate(zip(chunks, kept_chunks, strict=True)):
            if keep:
                self.live_chunks[fp.chunk_keys[chunk_no]] = chunk
            self.warnings.extend(chunk.warnings)
            for index, result in chunk.results:
                jid = job_id_for(session_id, instance_id, index)
                self.results[jid] = result.with_job_id(str(jid))
                self.origins[jid] = (instance_id, index, fp.drafts[index].id)
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
        self.drafts.update(zip(ids, kept, strict=True))
        self.by_batch[batch_id] = ids
        self.frame_offsets[batch_id] = (ids, array("q", accumulate(counts, initial=0)))
        batch_warnings = tuple(self.warnings[start_warnings:])
        self.summaries[batch_id] = BatchSummary(
            frames=evaluated,
            outputs=len(kept),
            outputs_per_frame=tuple(counts),
            lens_instance_id=instance_id,
            lens_id=plan.lens.id,
            truncated=any(w.code.startswith("truncated") for w in batch_warnings),
            warnings=batch_warnings,
        )
        self.outputs[instance_id] = tuple(kept)

    def _keep(self, plan: InstancePlan, kept: list[Draft]) -> None:
        kept = tuple(kept)
        self.outputs[plan.instance_id] = kept
        self.drafts.update([(d.id, d) for d in kept])

    def not_run_warning(self, plan: InstancePlan, keep: tuple[int, str], evaluated: int, not_run: list[int],
                        outcomes: list) -> DerivedWarning:
        """Why frames of a media batch were never run: their outputs would be dropped by ``keep``'s cap."""
        limit, cap = keep
        code = {"max_total_drafts_per_batch": "truncatedBatchOutputs",
                "max_total_drafts_per_recompute": "truncatedRecomputeOutputs"}.get(cap, "truncatedFrameOutputs")
        kept = sum(len(o.outputs) for o in outcomes if o is not None and o.error_code is None)
        return warner(plan.instance_id, plan.batch_id)(
            code,
            f"batch of {_count(evaluated, 'frame')} keeps at most {_count(limit, 'output')} ({cap}); "
            f"{_count(len(not_run), 'frame')} (from frame {not_run[0]} on) "
            + ("was not run, since its output would be dropped" if len(not_run) == 1
               else "were not run, since their outputs would be dropped"),
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

    def state(self) -> DerivedState:
        """Publish: the memo keeps what this recompute used, and the state is made."""
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


def _count(n: int, noun: str) -> str:
    """``"1 frame"``, ``"3 frames"``: warnings are read by people."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _keep_counts(counts: list[int], n: int) -> list[int]:
    """Per-frame counts after keeping only the first ``n`` outputs of the batch."""
    out = []
    for count in counts:
        take = min(count, max(0, n))
        n -= take
        out.append(take)
    return out
