"""run.json: what a run did, for machines (and for the HTML report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyrsistent import thaw

from drafts.files import write_file_atomically

from .plan import BatchPlanSession
from .state import DerivedState

__all__ = ["run_record", "write_atomically", "plan_record"]


def _warning(w) -> dict:
    return {"code": w.code, "message": w.message, "lens_instance_id": w.lens_instance_id, "batch_id": w.batch_id,
            "frame_index": w.frame_index, "details": thaw(w.details)}


def plan_record(session: BatchPlanSession) -> dict:
    jobs = []
    for job in session.jobs:
        jobs.append({
            "job_id": str(job.job_id), "job_type": job.job_type, "lens_instance_id": job.lens_instance_id,
            "frame_index": job.frame_index, "inputs": list(job.inputs), "outputs": list(job.outputs),
            "params": thaw(job.params), "depends_on": [str(d) for d in job.depends_on], "decision": job.decision,
            "expands": job.expands, "command": list(job.command), "problem": job.problem,
        })
    return {
        "session_id": str(session.session_id),
        "job_count": session.job_count,
        "is_dag": session.is_dag,
        "instances": session.summary(),
        "topological_order": [str(j) for j in session.topological_order],
        "jobs": jobs,
    }


def run_record(state: DerivedState, counts: dict[str, int]) -> dict[str, Any]:
    outputs = {
        instance_id: [{"id": d.id, "payload": thaw(d.payload), "meta": thaw(d.meta)} for d in state.outputs(instance_id)]
        for instance_id in state.instance_ids
    }
    return {
        "session_id": str(state.plan.session_id),
        "counts": counts,
        "results": [r.to_dict() for r in state.results.values()],
        "warnings": [_warning(w) for w in state.warnings],
        "batches": [
            {"batch_id": b, "lens_instance_id": s.lens_instance_id, "lens_id": s.lens_id, "frames": s.frames,
             "outputs": s.outputs, "outputs_per_frame": list(s.outputs_per_frame), "truncated": s.truncated,
             "warnings": [_warning(w) for w in s.warnings]}
            for b, s in state.batch_summary_by_batch_id.items()
        ],
        "outputs": outputs,
    }


def write_atomically(path: Path, text: str) -> None:
    """Write through an exclusive, unpredictably named temporary file and rename (``drafts.files``).

    A reader never sees half a file, and two runs writing one folder never
    share a temporary file: the last complete file wins whole.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomically(path, text.encode("utf-8"))


def dumps(record: dict) -> str:
    return json.dumps(record, indent=2, sort_keys=True, default=str)
