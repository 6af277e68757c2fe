"""recompute_derived: the single writer of derived state.

Lens instances are evaluated dependencies first, then in insertion order. A
``packDrafts`` carrier input is mapped frame by frame (``frameIndex`` then
``variantIndex`` order); every other input is one call. Caps drop from the end
of that order and say so in warnings. Bad input of any kind becomes a warning
with the instance, batch and frame it concerns; nothing touches the store.
"""

from __future__ import annotations

import gc
from array import array
from contextlib import contextmanager
from typing import Any

from pyrsistent import pmap

from drafts.canonical import frozen_scalar_map
from drafts.carrier import carrier_frames, is_packed_carrier, pack_drafts
from drafts.draft import Draft, make_draft, make_draft_extending
from drafts.errors import DraftError
from drafts.store import OutputOf, Store
from lenses import default_registry
from lenses.errors import ParamsError, UnknownLensError
from lenses.lens import FrameContext, Lens
from lenses.params import resolve_params
from lenses.registry import Registry

from .caps import Caps
from .diagnostics import DerivedWarning
from .evaluate import CallOutcome, call_lens
from .ids import digest
from .state import BatchFrameIndex, BatchSummary, DerivedState

__all__ = ["recompute_derived", "evaluation_order", "batch_id_for", "is_batched"]


def evaluation_order(store: Store) -> list[str]:
    """Instance ids, each after the instance it reads, otherwise in insertion order."""
    instances = store.lens_instances
    order: list[str] = []
    seen: set[str] = set()

    def visit(instance_id: str) -> None:
        if instance_id in seen:
            return
        seen.add(instance_id)
        source = instances[instance_id].input
        if isinstance(source, OutputOf) and source.instance_id in instances:
            visit(source.instance_id)
        order.append(instance_id)

    for instance_id in instances:
        visit(instance_id)
    return order


def batch_id_for(instance_id: str, lens: Lens, resolved_params: Any) -> str:
    """A function of instance, lens id, version and params, not of the input's content.

    So an unchanged frame keeps its output ids when another frame changes.
    """
    from drafts.canonical import freeze_with_canon

    _, canon = freeze_with_canon(resolved_params, "params", Draft)
    return digest("batch", instance_id, lens.id, lens.version, canon)


def is_batched(lens: Lens, draft: Draft | None) -> bool:
    """Apply the lens's batch behavior to an input draft."""
    if draft is None or lens.batch_behavior == "disable":
        return False
    if lens.batch_behavior == "inherit":
        return is_packed_carrier(draft)
    return "carrier" in draft.meta  # "enable": any carrier kind


@contextmanager
def _gc_paused():
    # A recompute allocates many short-lived containers and builds no cycles;
    # generation-0 collections walking the growing heap cost more than the work.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def recompute_derived(
    store: Store,
    *,
    registry: Registry | None = None,
    caps: Caps | None = None,
    executor: Any = None,
    memo: Any = None,
    monitor: Any = None,
    progress: Any = None,
) -> DerivedState:
    """Turn a store into derived state. Pure: equal stores and caps give equal results.

    >>> from drafts import Store, make_draft, pack_drafts
    >>> words = pack_drafts([make_draft({"text": w}) for w in ["a", "b"]])
    >>> store = Store.empty().add_draft(words).add_lens_instance("up", "text.upper", words.id)
    >>> [d.payload["text"] for d in recompute_derived(store).outputs("up")]
    ['A', 'B']
    """
    if not isinstance(store, Store):
        raise TypeError(f"recompute_derived takes a Store, got {type(store).__name__}")
    with _gc_paused():
        build = _Build(store, registry or default_registry, caps or Caps())
        for instance_id in evaluation_order(store):
            build.instance(instance_id)
        return build.finish()


class _Build:
    """The mutable scratchpad of one recompute; only ``finish`` publishes it."""

    def __init__(self, store: Store, registry: Registry, caps: Caps):
        self.store = store
        self.registry = registry
        self.caps = caps
        self.budget = caps.max_total_drafts_per_recompute
        self.outputs: dict[str, tuple[Draft, ...]] = {}
        self.failed: set[str] = set()
        self.carriers: dict[str, Draft] = {}
        self.drafts: dict[str, Draft] = {}
        self.by_batch: dict[str, tuple[str, ...]] = {}
        self.frame_offsets: dict[str, tuple[tuple[str, ...], array]] = {}
        self.summaries: dict[str, BatchSummary] = {}
        self.batch_ids: dict[str, str] = {}
        self.warnings: list[DerivedWarning] = []
        self.results: dict[str, Any] = {}

    # -- one instance ------------------------------------------------------------
    def instance(self, instance_id: str) -> None:
        inst = self.store.lens_instances[instance_id]
        warn = self._warner(instance_id)
        self.outputs[instance_id] = ()
        try:
            lens = self.registry.get(inst.lens_id)
        except UnknownLensError as exc:
            return self._fail(instance_id, warn("unknownLens", str(exc), lens_id=inst.lens_id))
        try:
            params, resolved = resolve_params(lens, inst.params)
        except ParamsError as exc:
            return self._fail(instance_id, warn("invalidParams", str(exc)))
        draft = self._input(instance_id, inst.input, warn)
        if draft is False:
            return None
        batch_id = batch_id_for(instance_id, lens, resolved)
        self.batch_ids[instance_id] = batch_id
        plain = {"lensId": lens.id, "lensVersion": lens.version, "lensInstanceId": instance_id}
        provenance = (pmap(plain), plain)  # one frozen map shared by every output
        if is_batched(lens, draft):
            kept = self._batch(instance_id, lens, params, draft, batch_id, provenance)
        else:
            kept = self._single(instance_id, lens, params, draft, provenance)
        self.outputs[instance_id] = kept
        for d in kept:
            self.drafts[d.id] = d
        return None

    def _input(self, instance_id: str, source: Any, warn) -> Draft | None | bool:
        if source is None:
            return None
        if isinstance(source, OutputOf):
            upstream = source.instance_id
            if upstream not in self.outputs or upstream in self.failed:
                self._fail(instance_id, warn(
                    "missingInput",
                    f"input OutputOf({upstream!r}) has no derived outputs (that instance failed or is unknown)",
                    upstream=upstream,
                ))
                return False
            carrier = self.carriers.get(upstream)
            if carrier is None:
                carrier = self.carriers[upstream] = pack_drafts(self.outputs[upstream])
            return carrier
        draft = self.store.drafts.get(source) if isinstance(source, str) else None
        if draft is None:
            self._fail(instance_id, warn("missingInput", f"input draft {source!r} is not in the store", input=str(source)))
            return False
        return draft

    def _fail(self, instance_id: str, warning: DerivedWarning) -> None:
        self.failed.add(instance_id)
        self.warnings.append(warning)

    def _warner(self, instance_id: str, batch_id: str | None = None):
        def warn(code: str, message: str, frame_index: int | None = None, **details: Any) -> DerivedWarning:
            return DerivedWarning(code, message, instance_id, batch_id, frame_index, details)

        return warn

    # -- non-batched: one call ----------------------------------------------------
    def _single(self, instance_id: str, lens: Lens, params: Any, draft: Draft | None, provenance) -> tuple[Draft, ...]:
        warn = self._warner(instance_id)
        context = FrameContext(instance_id, None, None)
        outcome = call_lens(lens, params, draft, context, self.caps.max_total_drafts_per_recompute)
        made = self._drafts_of(outcome, provenance, None, warn, None)
        if outcome.overflow:
            self.warnings.append(warn(
                "truncatedRecomputeOutputs",
                f"the call emitted more than {self.caps.max_total_drafts_per_recompute} outputs (the recompute cap)",
                limit=self.caps.max_total_drafts_per_recompute,
            ))
        return tuple(self._spend(made, warn))

    # -- batched: map over frames -----------------------------------------------------
    def _batch(self, instance_id, lens, params, carrier, batch_id, provenance) -> tuple[Draft, ...]:
        caps = self.caps
        warn = self._warner(instance_id, batch_id)
        batch_warnings_start = len(self.warnings)
        frames = carrier_frames(carrier)
        if frames is None:
            self.warnings.append(warn(
                "malformedCarrier",
                f"carrier {carrier.id[:12]}… has no payload['values'] list; evaluated zero frames",
                carrier=carrier.id,
            ))
            frames = ()
        total_frames = len(frames)
        evaluated = min(total_frames, caps.max_frames_evaluated)
        if total_frames > evaluated:
            self.warnings.append(warn(
                "truncatedFrames",
                f"carrier has {total_frames} frames; evaluated the first {evaluated} (max_frames_evaluated)",
                requested=total_frames, evaluated=evaluated, limit=caps.max_frames_evaluated,
            ))
        per_frame: list[list[Draft]] = []
        for index in range(evaluated):
            frame = frames[index]
            if type(frame) is Draft:
                frame_draft, source_id = frame, frame.id
            else:
                frame_draft, source_id = make_draft(frame), None
            context = (instance_id, batch_id, index)
            outcome = call_lens(lens, params, frame_draft, context, caps.max_drafts_emitted_per_frame)
            batch_meta = {"kind": "mapFrames", "batchId": batch_id, "frameIndex": index,
                          "frameSourceDraftId": source_id}
            made = self._drafts_of(outcome, provenance, batch_meta, warn, index)
            if outcome.overflow:
                self.warnings.append(warn(
                    "truncatedFrameOutputs",
                    f"frame {index} emitted more than {caps.max_drafts_emitted_per_frame} outputs; kept the first "
                    f"{caps.max_drafts_emitted_per_frame} (max_drafts_emitted_per_frame)",
                    frame_index=index, emitted=len(made), limit=caps.max_drafts_emitted_per_frame,
                ))
            per_frame.append(made)

        requested = sum(map(len, per_frame))
        if requested > caps.max_total_drafts_per_batch:
            self.warnings.append(warn(
                "truncatedBatchOutputs",
                f"batch produced {requested} outputs; kept the first {caps.max_total_drafts_per_batch} "
                "(max_total_drafts_per_batch)",
                requested=requested, emitted=caps.max_total_drafts_per_batch, limit=caps.max_total_drafts_per_batch,
            ))
            per_frame = _keep_prefix(per_frame, caps.max_total_drafts_per_batch)
        flat = [d for made in per_frame for d in made]
        kept = self._spend(flat, warn)
        if len(kept) < len(flat):
            per_frame = _keep_prefix(per_frame, len(kept))

        ids = tuple([d.id for d in kept])
        offsets = array("q", [0])
        total = 0
        for made in per_frame:
            total += len(made)
            offsets.append(total)
        self.by_batch[batch_id] = ids
        self.frame_offsets[batch_id] = (ids, offsets)
        batch_warnings = tuple(self.warnings[batch_warnings_start:])
        self.summaries[batch_id] = BatchSummary(
            frames=evaluated,
            outputs=len(kept),
            outputs_per_frame=tuple(map(len, per_frame)),
            lens_instance_id=instance_id,
            lens_id=lens.id,
            truncated=any(w.code.startswith("truncated") for w in batch_warnings),
            warnings=batch_warnings,
        )
        return tuple(kept)

    # -- drafts and caps ----------------------------------------------------------------
    def _drafts_of(self, outcome: CallOutcome, provenance, batch_meta: dict | None, warn, index) -> list[Draft]:
        if outcome.result is not None:
            self.results[_job_key(warn, index)] = outcome.result
        if outcome.error_code is not None:
            self.warnings.append(warn(outcome.error_code, outcome.error, frame_index=index))
            return []
        made = []
        extra = {"provenance": provenance}
        try:
            for variant, (payload, meta) in enumerate(outcome.outputs):
                if batch_meta is not None:
                    batch = {**batch_meta, "variantIndex": variant}
                    extra["batch"] = (frozen_scalar_map(batch), batch)
                made.append(make_draft_extending(payload, meta, extra))
        except DraftError as exc:
            self.warnings.append(warn("invalidOutput", f"output {len(made)}: {exc}", frame_index=index))
            return []
        return made

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
        return DerivedState(
            outputs=self.outputs,
            drafts=self.drafts,
            draft_ids_by_batch_id=self.by_batch,
            draft_ids_by_batch_frame=BatchFrameIndex(self.frame_offsets),
            batch_summary_by_batch_id=self.summaries,
            warnings=tuple(self.warnings),
            results=self.results,
            batch_id_by_instance=self.batch_ids,
        )


def _job_key(warn, index) -> str:
    probe = warn("lensError", "")
    return f"{probe.lens_instance_id}#{'' if index is None else index}"


def _keep_prefix(per_frame: list[list[Draft]], n: int) -> list[list[Draft]]:
    out = []
    for made in per_frame:
        take = made[: max(0, n)]
        n -= len(take)
        out.append(take)
    return out
