"""The bundled example: a small pipeline a new user can run and read."""

from __future__ import annotations

from drafts import OutputOf, Store, make_draft, pack_drafts

from .caps import Caps
from .recompute import recompute_derived
from .state import DerivedState

__all__ = ["demo_store", "run_demo"]

CLIPS = [
    {"name": "harbour at dawn", "takes": ["wide", "close"]},
    {"name": "market", "takes": ["pan"]},
    {"name": "night ferry", "takes": ["deck", "bow", "wake"]},
    {"name": "broken clip"},  # no "takes": its frame fails and the rest go on
]


def demo_store() -> Store:
    """Clips packed into a carrier; a split, a template and an upper-case lens chained."""
    carrier = pack_drafts([make_draft(c) for c in CLIPS])
    return (
        Store.empty()
        .add_draft(carrier)
        .add_lens_instance("takes", "list.split", carrier.id, {"field": "takes", "keep_others": True})
        .add_lens_instance("labels", "text.format", OutputOf("takes"), {"template": "{name} / {takes}", "into": "label"})
        .add_lens_instance("shout", "text.upper", OutputOf("labels"), {"field": "label"})
    )


def run_demo(caps: Caps | None = None) -> DerivedState:
    return recompute_derived(demo_store(), caps=caps or Caps(max_total_drafts_per_batch=5))


def render(state: DerivedState) -> str:
    lines = []
    for instance_id in state.instance_ids:
        lines.append(f"{instance_id}:")
        for d in state.outputs(instance_id):
            batch = d.meta.get("batch")
            where = f"frame {batch['frameIndex']}.{batch['variantIndex']}" if batch else "single"
            lines.append(f"  {d.id[:10]}  {where:<11} {d.payload.get('label', d.payload.get('takes'))}")
    lines.append("batches:")
    for batch_id, s in state.batch_summary_by_batch_id.items():
        lines.append(
            f"  {batch_id[:10]}  {s.lens_instance_id:<7} frames={s.frames} outputs={s.outputs} "
            f"per-frame={list(s.outputs_per_frame)} truncated={s.truncated}"
        )
    lines.append("warnings:")
    lines.extend(f"  {w}" for w in state.warnings)
    return "\n".join(lines)
