"""Derived state: the single writer (recompute_derived), its plans, executors and cache."""

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
