"""Packed draft carriers: one draft that transports many frames."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pyrsistent import PMap

from .draft import Draft, make_draft
from .errors import DraftError

__all__ = ["PACK_KIND", "pack_drafts", "is_packed_carrier", "carrier_kind", "carrier_frames"]

PACK_KIND = "packDrafts"


def pack_drafts(frames: Iterable[Any], meta: Mapping[str, Any] | None = None) -> Draft:
    """A carrier whose ``payload['values']`` are the frames, in order.

    >>> c = pack_drafts([{"n": 1}, {"n": 2}])
    >>> is_packed_carrier(c), len(c.payload["values"])
    (True, 2)
    """
    if isinstance(frames, (str, bytes, Mapping)):
        raise DraftError(f"frames must be a sequence of drafts or values, got {type(frames).__name__}", "frames")
    meta = dict(meta or {})
    carrier = meta.get("carrier")
    if carrier is not None and (not isinstance(carrier, Mapping) or carrier.get("kind") != PACK_KIND):
        raise DraftError(f"pack_drafts makes {PACK_KIND!r} carriers; meta has carrier {carrier!r}", "meta['carrier']")
    meta["carrier"] = {**(carrier or {}), "kind": PACK_KIND}
    return make_draft({"values": list(frames)}, meta)


def carrier_kind(draft: Draft) -> Any:
    carrier = draft.meta.get("carrier") if isinstance(draft.meta, PMap) else None
    return carrier.get("kind") if isinstance(carrier, PMap) else None


def is_packed_carrier(draft: Any) -> bool:
    """True iff ``draft.meta.carrier.kind == "packDrafts"``; shape alone never counts."""
    return isinstance(draft, Draft) and carrier_kind(draft) == PACK_KIND


def carrier_frames(draft: Draft):
    """The frames vector of a carrier, or None if ``payload['values']`` is not a list."""
    payload = draft.payload
    if not isinstance(payload, PMap):
        return None
    values = payload.get("values")
    from pyrsistent import PVector

    return values if isinstance(values, PVector) else None
