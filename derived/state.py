"""DerivedState: everything a recompute produced. Never persisted.

Large indexes are plain dicts built once and handed out as read-only views
(``MappingProxyType``) that iterate in the deterministic order they were built.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from drafts.draft import Draft

from .diagnostics import DerivedWarning

__all__ = ["DerivedState", "BatchSummary", "BatchFrameIndex"]


class BatchFrameIndex(Mapping):
    """``(batch_id, frame_index) -> draft ids``, read-only, in batch then frame order.

    Stored as each batch's id tuple plus an array of frame offsets into it, so
    a 100k-frame batch costs 8 bytes a frame instead of a tuple and a dict
    entry per frame.
    """

    __slots__ = ("_batches",)

    def __init__(self, batches: dict[str, tuple[tuple[str, ...], array]]):
        self._batches = batches

    def __getitem__(self, key: tuple[str, int]) -> tuple[str, ...]:
        try:
            batch_id, frame = key
            ids, offsets = self._batches[batch_id]
        except (TypeError, ValueError, KeyError):
            raise KeyError(key) from None
        if type(frame) is not int or not 0 <= frame < len(offsets) - 1:
            raise KeyError(key)
        return ids[offsets[frame] : offsets[frame + 1]]

    def __iter__(self) -> Iterator[tuple[str, int]]:
        for batch_id, (_, offsets) in self._batches.items():
            for frame in range(len(offsets) - 1):
                yield (batch_id, frame)

    def __len__(self) -> int:
        return sum(len(offsets) - 1 for _, offsets in self._batches.values())

    def __repr__(self) -> str:
        return f"BatchFrameIndex({len(self)} frames in {len(self._batches)} batches)"


@attrs.frozen
class BatchSummary:
    """One batch evaluation at a glance."""

    frames: int
    outputs: int
    outputs_per_frame: tuple[int, ...]
    lens_instance_id: str
    lens_id: str
    truncated: bool
    warnings: tuple[DerivedWarning, ...]


def _view(value: dict) -> MappingProxyType:
    return MappingProxyType(value)


@attrs.frozen(eq=False, repr=False)
class DerivedState:
    """Lens outputs, batch indexes, warnings and execution results of one recompute."""

    _outputs: MappingProxyType = attrs.field(converter=_view)
    drafts: MappingProxyType = attrs.field(converter=_view)
    draft_ids_by_batch_id: MappingProxyType = attrs.field(converter=_view)
    draft_ids_by_batch_frame: BatchFrameIndex
    batch_summary_by_batch_id: MappingProxyType = attrs.field(converter=_view)
    warnings: tuple[DerivedWarning, ...] = ()
    results: MappingProxyType = attrs.field(factory=dict, converter=_view)
    plan: Any = None
    batch_id_by_instance: MappingProxyType = attrs.field(factory=dict, converter=_view)
    job_origins: MappingProxyType = attrs.field(factory=dict, converter=_view)
    """Job id (of each result) -> ``(lens instance id, frame index or None, input draft id or None)``."""

    def outputs(self, instance_id: str) -> tuple[Draft, ...]:
        """The output drafts of one lens instance, in derived order."""
        try:
            return self._outputs[instance_id]
        except KeyError:
            raise KeyError(f"no lens instance {instance_id!r} in this derived state (known: {list(self._outputs)})") from None

    @property
    def instance_ids(self) -> tuple[str, ...]:
        """Lens instances in the order they were evaluated."""
        return tuple(self._outputs)

    def warnings_for(self, instance_id: str) -> tuple[DerivedWarning, ...]:
        return tuple(w for w in self.warnings if w.lens_instance_id == instance_id)

    def _key(self) -> tuple:
        return (
            tuple((k, tuple(d.id for d in v)) for k, v in self._outputs.items()),
            self.warnings,
            tuple(self.batch_summary_by_batch_id.items()),
            tuple(self.results.items()),
            getattr(self.plan, "session_id", None),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DerivedState):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _repr_html_(self) -> str:
        """Tables for notebooks: outputs per instance, batch summaries, warnings."""
        import html

        esc = html.escape
        rows = []
        for instance_id, drafts in self._outputs.items():
            for d in drafts[:20]:
                batch = d.meta.get("batch")
                where = f"{batch['frameIndex']}.{batch['variantIndex']}" if batch else ""
                rows.append(f"<tr><td>{esc(instance_id)}</td><td>{where}</td><td><code>{esc(d.id[:12])}</code></td>"
                            f"<td>{esc(repr(d)[:160])}</td></tr>")
            if len(drafts) > 20:
                rows.append(f"<tr><td>{esc(instance_id)}</td><td colspan=3>… {len(drafts) - 20} more</td></tr>")
        batches = "".join(
            f"<tr><td><code>{esc(b[:12])}</code></td><td>{esc(s.lens_instance_id)}</td><td>{esc(s.lens_id)}</td>"
            f"<td>{s.frames}</td><td>{s.outputs}</td><td>{s.truncated}</td></tr>"
            for b, s in self.batch_summary_by_batch_id.items()
        )
        warnings = "".join(
            f"<tr><td>{esc(w.code)}</td><td>{esc(str(w.lens_instance_id))}</td><td>{'' if w.frame_index is None else w.frame_index}</td>"
            f"<td>{esc(w.message)}</td></tr>"
            for w in self.warnings
        )
        return (
            "<div class='draftlens-derived'>"
            "<h4>Outputs</h4><table><tr><th>instance</th><th>frame.variant</th><th>id</th><th>draft</th></tr>"
            + "".join(rows) + "</table>"
            "<h4>Batches</h4><table><tr><th>batch</th><th>instance</th><th>lens</th><th>frames</th><th>outputs</th>"
            "<th>truncated</th></tr>" + batches + "</table>"
            "<h4>Warnings</h4><table><tr><th>code</th><th>instance</th><th>frame</th><th>message</th></tr>"
            + warnings + "</table></div>"
        )

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}: {len(v)}" for k, v in self._outputs.items())
        return f"DerivedState(outputs={{{counts}}}, batches={len(self.batch_summary_by_batch_id)}, warnings={len(self.warnings)})"
