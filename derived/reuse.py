"""Whether a memo's outcome may stand in for a run: the one question of the plan that reads the disk.

Kept out of ``derived.plan`` so the plan's other rules stay pure: a media
result is reused only while its outputs and its source are as they were.
"""

from __future__ import annotations

import os
from typing import Any

from pyrsistent import PMap

from drafts.draft import Draft
from drafts.media import MEDIA_KEYS, source_change
from lenses.lens import Lens
from lenses.result import COMPLETED, ExecutionResult

__all__ = ["reusable"]


def reusable(lens: Lens, outcome: Any, draft: Draft | None = None) -> bool:
    """A cached outcome may stand in for a run: media results only if COMPLETED, still on disk, and
    made from a source that still holds the bytes its draft recorded (a take swapped for another of
    the same size runs again, and fails validation saying so)."""
    if outcome is None:
        return False
    result = outcome.result
    if result is None:
        return True
    if result.status != COMPLETED:
        return False
    if draft is not None and _source_changed(draft):
        return False
    check = getattr(lens.fn, "still_valid", None) or _outputs_still_there
    return bool(check(result))


def _source_changed(draft: Draft) -> bool:
    payload = draft.payload
    if not isinstance(payload, PMap) or not all(k in payload for k in MEDIA_KEYS):
        return False
    path, size, fingerprint = payload["path"], payload["size"], payload["fingerprint"]
    if not (isinstance(path, str) and isinstance(size, int) and isinstance(fingerprint, str)):
        return False
    return source_change(path, size, fingerprint) is not None


def _outputs_still_there(result: ExecutionResult) -> bool:
    for payload in result.outputs:
        path = payload.get("path") if isinstance(payload, PMap) else None
        if path is None:
            continue
        try:
            if os.path.getsize(path) != payload.get("size"):
                return False
        except OSError:
            return False
    return True
