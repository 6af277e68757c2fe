"""recompute_derived: the single writer of derived state, in three one-way stages.

1. *plan* (``derived.plan``, pure): instances in order, their frames, the
   memo's decisions, job ids: the ``BatchPlanSession``;
2. *schedule* (``derived.schedule``): ready jobs of the whole graph go to the
   executor as they become ready, from every instance at once;
3. *assemble* (``derived.assemble``): caps, indexes, summaries and warnings,
   in plan order whatever the completion order.

Lens instances come dependencies first, then in insertion order; a
``packDrafts`` carrier input is mapped frame by frame (``frameIndex`` then
``variantIndex`` order), every other input is one call. Caps drop from the
end of that order and say so in warnings. Bad input of any kind becomes a
warning with the instance, batch and frame it concerns; nothing touches the
store.
"""

from __future__ import annotations

from typing import Any

from drafts.store import Store
from lenses import default_registry
from lenses.registry import Registry

from .assemble import Assembly
from .caps import Caps
from .executors import SerialExecutor
from .order import evaluation_order, is_batched
from .plan import build_plan
from .schedule import Scheduler, run_chunk
from .state import DerivedState

__all__ = ["recompute_derived", "evaluation_order", "is_batched", "run_chunk"]


def recompute_derived(
    store: Store,
    *,
    registry: Registry | None = None,
    caps: Caps | None = None,
    executor: Any = None,
    memo: Any = None,
    monitor: Any = None,
    progress: Any = None,
    force: bool = False,
) -> DerivedState:
    """Turn a store into derived state. Pure: equal stores and caps give equal results.

    ``executor`` (default ``SerialExecutor()``) decides where calls run,
    ``memo`` lets successive recomputes reuse unchanged calls, ``monitor``
    sees the plan and the state, ``progress(done, total)`` is called as jobs
    finish. None of them changes the result. ``force`` runs every job even
    where the memo could stand in (and refreshes the memo).

    >>> from drafts import Store, make_draft, pack_drafts
    >>> words = pack_drafts([make_draft({"text": w}) for w in ["a", "b"]])
    >>> store = Store.empty().add_draft(words).add_lens_instance("up", "text.upper", words.id)
    >>> [d.payload["text"] for d in recompute_derived(store).outputs("up")]
    ['A', 'B']
    """
    if not isinstance(store, Store):
        raise TypeError(f"recompute_derived takes a Store, got {type(store).__name__}")
    caps = caps or Caps()
    session, planner, (instances, singles) = build_plan(
        store, default_registry if registry is None else registry, caps, memo, force
    )
    if monitor is not None:
        monitor.observe_session(session)
    assembly = Assembly(session, caps, memo)
    Scheduler(planner, instances, singles, assembly, executor or SerialExecutor(), memo, progress).run()
    state = assembly.state()
    if monitor is not None:
        monitor.observe_state(state)
    return state
