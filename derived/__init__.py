"""Derived state: the single writer (recompute_derived) and what it produces."""

from lenses.result import ExecutionResult

from .caps import Caps
from .diagnostics import DerivedWarning
from .recompute import recompute_derived
from .state import BatchSummary, DerivedState

__all__ = [
    "BatchSummary",
    "Caps",
    "DerivedState",
    "DerivedWarning",
    "ExecutionResult",
    "recompute_derived",
]
