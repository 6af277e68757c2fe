"""run.json: what a run did, for machines (and for the HTML report).

Every JSON document ``draftlens`` writes carries ``schema_version``
(``SCHEMA_VERSION``); it goes up when a field changes meaning or disappears,
not when one is added.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pyrsistent import PMap, thaw

from drafts.carrier import carrier_frames, is_packed_carrier
from drafts.draft import Draft, make_draft
from drafts.store import OutputOf

from ..plan import BatchPlanSession
from ..state import DerivedState

__all__ = ["SCHEMA_VERSION", "Sources", "run_record", "write_atomically", "plan_record", "truncations"]

SCHEMA_VERSION = 1


class Sources:
    """Which clip (or input draft) a job or a warning concerns.

    ``of_job(job_id)`` and ``of_frame(instance_id, frame_index)`` give
    ``{"draft_id", "path", "name"}`` (``path``/``name`` None for a draft that
    is not a media file) or None. An output of a media lens leads back, through
    ``meta.batch.frameSourceDraftId``, to the clip it was made from.
    """

    def __init__(self, state: DerivedState, store: Any = None):
        self.state = state
        self.store = store
        self._drafts: dict[str, Draft] = dict(state.drafts)
        if store is not None:
            for draft in store.drafts.values():
                self._drafts[draft.id] = draft
                if is_packed_carrier(draft):
                    for frame in carrier_frames(draft) or ():
                        if type(frame) is Draft:
                            self._drafts.setdefault(frame.id, frame)

    def describe(self, draft_id: str | None) -> dict | None:
        if draft_id is None:
            return None
        draft = self._drafts.get(draft_id)
        for _ in range(64):  # follow outputs back to their clip (chains are short; never loop forever)
            batch = draft.meta.get("batch") if draft is not None else None
            parent = batch.get("frameSourceDraftId") if isinstance(batch, PMap) else None
            if parent is None or parent not in self._drafts:
                break
            draft = self._drafts[parent]
        path = draft.payload.get("path") if draft is not None and isinstance(draft.payload, PMap) else None
        path = path if isinstance(path, str) else None
        return {"draft_id": draft_id, "path": path, "name": Path(path).name if path else None}

    def of_job(self, job_id: Any) -> dict | None:
        origin = self.state.job_origins.get(job_id)
        return self.describe(origin[2]) if origin else None

    def of_frame(self, instance_id: str | None, frame_index: int | None) -> dict | None:
        """The input draft of one frame (or of a non-batched call) of an instance."""
        if self.store is None or instance_id not in self.store.lens_instances:
            return None
        source = self.store.lens_instances[instance_id].input
        if isinstance(source, OutputOf):
            if frame_index is None or source.instance_id not in self.state.instance_ids:
                return None
            upstream = self.state.outputs(source.instance_id)
            return self.describe(upstream[frame_index].id) if frame_index < len(upstream) else None
        if source is None:
            return None
        if frame_index is None:
            return self.describe(source)
        carrier = self.store.drafts.get(source)
        frames = carrier_frames(carrier) if carrier is not None else None
        if not frames or frame_index >= len(frames):
            return None
        frame = frames[frame_index]
        frame_id = frame.id if type(frame) is Draft else make_draft(frame).id
        self._drafts.setdefault(frame_id, frame if type(frame) is Draft else make_draft(frame))
        return self.describe(frame_id)


def truncations(state: DerivedState) -> list[dict]:
    """Every warning by which caps dropped work, as ``{"instance", "code", "message"}``."""
    return [{"instance": w.lens_instance_id, "code": w.code, "message": w.message}
            for w in state.warnings if w.code.startswith("truncated")]


def _warning(w, sources: Sources | None = None) -> dict:
    record = {"code": w.code, "message": w.message, "lens_instance_id": w.lens_instance_id, "batch_id": w.batch_id,
              "frame_index": w.frame_index, "details": thaw(w.details)}
    if sources is not None:
        record["source"] = sources.of_frame(w.lens_instance_id, w.frame_index)
    return record


def plan_record(session: BatchPlanSession, caps_notes: list | None = None) -> dict:
    jobs = []
    for job in session.jobs:
        jobs.append({
            "job_id": str(job.job_id), "job_type": job.job_type, "lens_instance_id": job.lens_instance_id,
            "frame_index": job.frame_index, "inputs": list(job.inputs), "outputs": list(job.outputs),
            "params": thaw(job.params), "depends_on": [str(d) for d in job.depends_on], "decision": job.decision,
            "expands": job.expands, "command": list(job.command), "problem": job.problem,
        })
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "draftlens.plan",
        "session_id": str(session.session_id),
        "caps_notes": list(caps_notes or []),
        "job_count": session.job_count,
        "is_dag": session.is_dag,
        "instances": session.summary(),
        "topological_order": [str(j) for j in session.topological_order],
        "jobs": jobs,
    }


def _result(job_id: Any, result: Any, state: DerivedState, sources: Sources) -> dict:
    record = result.to_dict()
    origin = state.job_origins.get(job_id)
    record["instance"] = origin[0] if origin else None
    record["frame"] = origin[1] if origin else None
    record["source"] = sources.of_job(job_id)
    return record


def run_record(state: DerivedState, counts: dict[str, int], store: Any = None) -> dict[str, Any]:
    """The whole run: counts, results (with instance, frame and source clip), warnings, batches, outputs.

    ``store`` (the pipeline's) lets results and warnings name the clip or
    input draft they concern; without it ``source`` is still given for
    results whose input is a derived draft.
    """
    sources = Sources(state, store)
    outputs = {
        instance_id: [{"id": d.id, "payload": thaw(d.payload), "meta": thaw(d.meta)} for d in state.outputs(instance_id)]
        for instance_id in state.instance_ids
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "draftlens.run",
        "session_id": str(state.plan.session_id),
        "counts": counts,
        "truncated": truncations(state),
        "results": [_result(j, r, state, sources) for j, r in state.results.items()],
        "warnings": [_warning(w, sources) for w in state.warnings],
        "batches": [
            {"batch_id": b, "lens_instance_id": s.lens_instance_id, "lens_id": s.lens_id, "frames": s.frames,
             "outputs": s.outputs, "outputs_per_frame": list(s.outputs_per_frame), "truncated": s.truncated,
             "warnings": [_warning(w, sources) for w in s.warnings]}
            for b, s in state.batch_summary_by_batch_id.items()
        ],
        "outputs": outputs,
    }


def record_owner_problem(path: Path) -> str | None:
    """Why draftlens may not write its record ``path`` (run.json, report.html): a file it did not write is there.

    The same rule as for media outputs (``lenses.media.ledger``): only a file
    draftlens wrote, still with the bytes it wrote, may be replaced.
    """
    from lenses.media.ledger import owner_problem

    problem, _ = owner_problem(str(path), elsewhere="set another output folder: [pipeline] output")
    return problem


def write_atomically(path: Path, text: str) -> None:
    """Write through an exclusive, unpredictably named temporary file and publish it (``drafts.files``).

    A reader never sees half a file, and two runs writing one folder never
    share a temporary file. The file is recorded in the folder's ledger
    first, so the next run knows it may replace it; a file there that
    draftlens did not write is never replaced (OSError naming it).
    """
    from drafts.files import create_temporary, remove_temporary
    from lenses.media.ledger import owner_problem, publish_recorded

    path.parent.mkdir(parents=True, exist_ok=True)
    problem, earlier = owner_problem(str(path))
    if problem is not None:
        raise FileExistsError(problem)
    fd, temp = create_temporary(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
        publish_recorded(temp, str(path), earlier, "draftlens run record", "")
    finally:
        remove_temporary(temp)  # published already (then gone), or failed: never left behind


def dumps(record: dict) -> str:
    return json.dumps(record, indent=2, sort_keys=True, default=str)
