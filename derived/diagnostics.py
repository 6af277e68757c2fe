"""Derived warnings: how bad input and truncation become visible, never a crash."""

from __future__ import annotations

from typing import Any

import attrs
from pyrsistent import freeze, pmap

__all__ = ["DerivedWarning", "WARNING_CODES"]

WARNING_CODES = (
    "truncatedFrames",
    "truncatedBatchOutputs",
    "truncatedFrameOutputs",
    "truncatedRecomputeOutputs",
    "malformedCarrier",
    "lensError",
    "invalidOutput",
    "unknownLens",
    "invalidParams",
    "missingInput",
    "executionFailed",
    "lensCodeChanged",
)


def _known_code(_inst, _attr, value):
    if value not in WARNING_CODES:
        raise ValueError(f"unknown warning code {value!r}; known: {list(WARNING_CODES)}")


@attrs.frozen
class DerivedWarning:
    """One thing a recompute wants a person to see, and where it happened.

    ``details`` is a frozen mapping with the figures (``requested``,
    ``emitted``, ``limit``, ...).
    """

    code: str = attrs.field(validator=_known_code)
    message: str
    lens_instance_id: str | None = None
    batch_id: str | None = None
    frame_index: int | None = None
    details: Any = attrs.field(default=pmap(), converter=freeze)

    def __str__(self) -> str:
        where = [f"instance {self.lens_instance_id!r}"] if self.lens_instance_id else []
        if self.frame_index is not None:
            where.append(f"frame {self.frame_index}")
        return f"[{self.code}] {', '.join(where)}: {self.message}" if where else f"[{self.code}] {self.message}"
