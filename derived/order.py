"""Which instance comes first, and which inputs are mapped frame by frame: the plan's two rules of order.

Kept apart so that the plan (``derived.plan``) and the run that carries it out
(``derived.recompute``) both import them, and neither imports the other.
"""

from __future__ import annotations

from drafts.carrier import is_packed_carrier
from drafts.draft import Draft
from drafts.store import OutputOf, Store
from lenses.lens import Lens

__all__ = ["evaluation_order", "is_batched"]


def evaluation_order(store: Store) -> list[str]:
    """Instance ids, each after the instance it reads, otherwise in insertion order."""
    instances = store.lens_instances
    order: list[str] = []
    seen: set[str] = set()

    def visit(instance_id: str) -> None:
        if instance_id in seen:
            return
        seen.add(instance_id)
        source = instances[instance_id].input
        if isinstance(source, OutputOf) and source.instance_id in instances:
            visit(source.instance_id)
        order.append(instance_id)

    for instance_id in instances:
        visit(instance_id)
    return order


def is_batched(lens: Lens, draft: Draft | None) -> bool:
    """Apply the lens's batch behavior to an input draft."""
    if draft is None or lens.batch_behavior == "disable":
        return False
    if lens.batch_behavior == "inherit":
        return is_packed_carrier(draft)
    return "carrier" in draft.meta  # "enable": any carrier kind
