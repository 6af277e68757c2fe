"""Why a job runs: the reason ``draftlens plan`` prints beside each job.

A job is ``reused`` when the memo holds an outcome for its complete call key
that may stand in for a run (``derived.reuse.reusable``). Otherwise the reason
is the first of these that holds:

- ``forced``: ``--force`` was given;
- ``invalid``: it fails validation before running (the plan names the problem);
- ``earlier failure``: the memo holds a FAILED result for this very job;
- ``output missing or changed``: the memo holds a COMPLETED result whose files
  are gone or no longer have the bytes it wrote;
- ``lens version changed`` / ``params changed``: the instance last ran with
  another lens version / other params (the durable store remembers them);
- ``new input``: the job's input was never run with these params (a new or
  changed clip, a new instance);
- ``expands at run time``: the job reads another instance's outputs; its
  frames are decided, and reused where possible, once those exist.

Reasons are read from the memo and the store's history only; they never
change what is planned or computed.
"""

from __future__ import annotations

from typing import Any

from lenses.result import FAILED

from ..plan import InstancePlan

__all__ = ["REASONS", "job_reasons", "instance_rows"]

REASONS = ("reused", "forced", "invalid", "earlier failure", "output missing or changed", "lens version changed",
           "params changed", "new input", "expands at run time")


def _why(memo: Any, key: Any, ip: InstancePlan, history: dict, force: bool, described: Any) -> str:
    if force:
        return "forced"
    if described and "error" in described:
        return "invalid"
    outcome = memo.get_call(key) if memo is not None and key is not None else None
    if outcome is not None:
        result = outcome.result
        if result is not None and result.status == FAILED:
            return "earlier failure"
        return "output missing or changed"
    before = history.get(ip.instance_id)
    if before is not None:
        lens_id, version, params_key = before
        if lens_id == ip.lens_id and version != ip.lens.version:
            return "lens version changed"
        if lens_id == ip.lens_id and params_key != ip.params_key:
            return "params changed"
    return "new input"


def job_reasons(session: Any, instances: list[InstancePlan], singles: dict, memo: Any, history: dict,
                force: bool) -> dict[str, str]:
    """``{job id (str): reason}`` for every job of ``session`` (see the module docstring)."""
    reasons: dict[str, str] = {}
    by_instance: dict[str, list] = {}
    for job in session.jobs:
        by_instance.setdefault(job.lens_instance_id, []).append(job)
    for ip in instances:
        for job in by_instance.get(ip.instance_id, ()):
            if job.expands:
                reason = "expands at run time"
            elif job.decision == "reused":
                reason = "reused"
            elif ip.batched:
                index = job.frame_index
                reason = _why(memo, ip.frames.call_keys[index], ip, history, force, ip.frames.described[index])
            else:
                key, _, described = singles[ip.instance_id]
                reason = _why(memo, key, ip, history, force, described)
            reasons[str(job.job_id)] = reason
    return reasons


def instance_rows(instances: list[InstancePlan]) -> list[tuple[str, str, str, bytes]]:
    """``(instance id, lens id, lens version, params key)`` of the instances that resolved (for the history)."""
    return [(ip.instance_id, ip.lens_id, ip.lens.version, ip.params_key)
            for ip in instances if ip.problem is None and ip.lens is not None]
