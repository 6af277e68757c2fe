"""ExecutionResult: the one record that says what a job run did.

Media lenses return one per frame; nothing else (logs, metrics, files on disk)
may be needed to tell whether the job succeeded.
"""

from __future__ import annotations

from typing import Any

import attrs
from pyrsistent import freeze

__all__ = ["ExecutionResult", "COMPLETED", "FAILED", "FAILURE_CLASSES"]

COMPLETED = "COMPLETED"
FAILED = "FAILED"
FAILURE_CLASSES = ("validation", "execution", "verification")


def _check(result: ExecutionResult) -> None:
    if result.status not in (COMPLETED, FAILED):
        raise ValueError(f"status must be {COMPLETED!r} or {FAILED!r}, got {result.status!r}")
    if result.status == COMPLETED and result.failure_class is not None:
        raise ValueError("a COMPLETED result has no failure_class")
    if result.status == FAILED and result.failure_class not in FAILURE_CLASSES:
        raise ValueError(f"a FAILED result needs failure_class in {list(FAILURE_CLASSES)}, got {result.failure_class!r}")
    if result.status == FAILED and result.outputs:
        raise ValueError("a FAILED result has no outputs")


@attrs.frozen
class ExecutionResult:
    """Status, failure class, the exact argv, the engine, exit code, outputs, message.

    ``duration_s`` is kept for people, not for equality: two runs of the same
    job compare equal however long they took.
    """

    job_id: str | None
    status: str
    failure_class: str | None = None
    command: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    engine: str = ""
    exit_code: int | None = None
    outputs: Any = attrs.field(default=(), converter=lambda v: freeze(list(v)))
    message: str = ""
    duration_s: float = attrs.field(default=0.0, eq=False)

    def __attrs_post_init__(self):
        _check(self)

    @property
    def ok(self) -> bool:
        return self.status == COMPLETED

    def with_job_id(self, job_id: str) -> ExecutionResult:
        return attrs.evolve(self, job_id=job_id)

    def to_dict(self) -> dict:
        """Plain data (for run.json and journals); ``outputs`` thawed."""
        from pyrsistent import thaw

        return {
            "job_id": self.job_id,
            "status": self.status,
            "failure_class": self.failure_class,
            "command": list(self.command),
            "engine": self.engine,
            "exit_code": self.exit_code,
            "outputs": thaw(self.outputs),
            "message": self.message,
            "duration_s": self.duration_s,
        }
