"""Deterministic caps on how much a recompute may produce."""

from __future__ import annotations

import attrs

__all__ = ["Caps"]


def _non_negative(_inst, attribute, value):
    if type(value) is not int or value < 0:
        raise ValueError(f"Caps.{attribute.name} must be an int >= 0, got {value!r}")


@attrs.frozen
class Caps:
    """Limits applied by dropping from the end of the deterministic order.

    - ``max_frames_evaluated``: frames of one batch evaluation that are evaluated;
    - ``max_drafts_emitted_per_frame``: outputs kept per frame of a batch;
    - ``max_total_drafts_per_batch``: outputs kept per batch evaluation;
    - ``max_total_drafts_per_recompute``: outputs kept over the whole recompute,
      counted in lens-instance order (dependencies first, then insertion order).

    A non-batched evaluation is limited only by the recompute cap.
    """

    max_frames_evaluated: int = attrs.field(default=1000, validator=_non_negative)
    max_total_drafts_per_batch: int = attrs.field(default=500, validator=_non_negative)
    max_total_drafts_per_recompute: int = attrs.field(default=10000, validator=_non_negative)
    max_drafts_emitted_per_frame: int = attrs.field(default=128, validator=_non_negative)

    def to_data(self) -> dict:
        return attrs.asdict(self)
