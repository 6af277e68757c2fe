"""The authoritative side: drafts, carriers, the store, media drafts, the journal and work sessions.

``drafts`` knows nothing of ``lenses`` or ``derived``.
"""

from .carrier import is_packed_carrier, pack_drafts
from .draft import Draft, draft_from_json, make_draft
from .errors import DraftError, StoreError
from .media import MediaError, media_draft
from .store import LensInstance, OutputOf, Store

__all__ = [
    "Draft",
    "DraftError",
    "LensInstance",
    "MediaError",
    "OutputOf",
    "Store",
    "StoreError",
    "draft_from_json",
    "is_packed_carrier",
    "make_draft",
    "media_draft",
    "pack_drafts",
]
