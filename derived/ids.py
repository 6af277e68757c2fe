"""Deterministic ids for derived things: a hash of canonical bytes, never ``hash()``."""

from __future__ import annotations

import hashlib
from typing import Any

from drafts.canonical import canonical_bytes

__all__ = ["digest"]


def digest(kind: str, *parts: Any, size: int = 16) -> str:
    """Hex digest of canonical JSON of ``[kind, *parts]`` (parts: plain canonical data)."""
    data = canonical_bytes([kind, *parts])
    return hashlib.blake2b(data, digest_size=size).hexdigest()
