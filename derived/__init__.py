"""Derived state: the engine. The single writer (``recompute_derived``: plan → schedule → assemble),
its executors and cache; the ``draftlens`` command lives apart in ``derived.command``."""

from lenses.result import ExecutionResult

from .caps import Caps
from .diagnostics import DerivedWarning
from .executors import DaskExecutor, ProcessExecutor, SerialExecutor
from .memo import Memo
from .monitor import Monitor
from .plan import BatchPlanSession, SessionId, SessionJob, SessionJobId, plan_session
from .recompute import recompute_derived
from .state import BatchSummary, DerivedState
from .workspace import Workspace

__all__ = [
    "BatchPlanSession",
    "BatchSummary",
    "Caps",
    "DaskExecutor",
    "DerivedState",
    "DerivedWarning",
    "ExecutionResult",
    "Memo",
    "Monitor",
    "ProcessExecutor",
    "SerialExecutor",
    "SessionId",
    "SessionJob",
    "SessionJobId",
    "Workspace",
    "plan_session",
    "recompute_derived",
]
