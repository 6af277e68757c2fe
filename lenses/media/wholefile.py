"""Opening a written output to read it: the first check every reader makes.

An output FFmpeg finished but left empty is never whole; a small format
(a still, an MP3) is read in one piece, up to a size past which the reader
leaves the file to FFmpeg.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from .errors import NotReadHere, NotWhole

__all__ = ["read_small", "size_of"]


def size_of(fh: BinaryIO) -> int:
    """The open file's size in bytes. Raises NotWhole if it is empty."""
    size = os.fstat(fh.fileno()).st_size
    if size == 0:
        raise NotWhole("the file is empty")
    return size


def read_small(path: str, limit: int, what: str) -> bytes:
    """The whole file. Raises NotWhole if empty, NotReadHere (naming ``what``) if over ``limit`` bytes."""
    with open(path, "rb") as fh:
        size = size_of(fh)
        if size > limit:
            raise NotReadHere(f"{what} of {size} bytes")
        return fh.read()
