"""Per-track durations of MP4 / MOV / M4A / 3GP files, read from their header.

FFmpeg's header dump gives one duration for the whole file: that of its
longest stream. A job that writes only some streams (the audio of a clip, a
proxy without audio) must be compared with *those* streams' durations: in
camera and phone files the audio often ends a little before the video, or
runs past it. MP4 and QuickTime files say so in their header: every track's
``tkhd`` box holds its presentation duration (edit lists applied) in the
movie's time scale (``mvhd``). ISO/IEC 14496-12 §8.2.2 (mvhd), §8.3.2 (tkhd),
§8.4.3 (hdlr).

Only the top-level boxes are walked (a seek each) and ``moov`` is read; the
media data is never read. Fragmented files (durations in ``moof``) and
anything malformed give no durations (``{}``), never an error.

>>> track_durations("/nonexistent.mp4")
{}
"""

from __future__ import annotations

import os
import struct

__all__ = ["track_durations", "ISOBMFF_EXTENSIONS"]

ISOBMFF_EXTENSIONS = (".mp4", ".m4v", ".m4a", ".mov", ".qt", ".3gp", ".3g2", ".mj2")
_MAX_MOOV = 64 << 20  # a header larger than this is not worth reading for a check
_KINDS = {b"vide": "video", b"soun": "audio"}


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    """``(type, payload start, payload end)`` of the boxes in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def _find_moov(path: str) -> bytes | None:
    with open(path, "rb") as fh:
        size_on_disk = os.fstat(fh.fileno()).st_size
        pos = 0
        while pos + 8 <= size_on_disk:
            fh.seek(pos)
            head = fh.read(16)
            if len(head) < 8:
                return None
            size, kind = struct.unpack_from(">I4s", head)
            header = 8
            if size == 1 and len(head) >= 16:
                size, header = struct.unpack_from(">Q", head, 8)[0], 16
            elif size == 0:
                size = size_on_disk - pos
            if size < header:
                return None
            if kind == b"moov":
                if size > _MAX_MOOV:
                    return None
                fh.seek(pos + header)
                return fh.read(size - header)
            pos += size
    return None


def _movie_timescale(moov: bytes) -> int | None:
    for kind, start, _end in _boxes(moov):
        if kind == b"mvhd":
            version = moov[start]
            offset = start + (4 + 16 if version == 1 else 4 + 8)
            return struct.unpack_from(">I", moov, offset)[0] or None
    return None


def _track(moov: bytes, start: int, end: int) -> tuple[str | None, int | None]:
    kind = duration = None
    for box, s, e in _boxes(moov, start, end):
        if box == b"tkhd":
            version = moov[s]
            if version == 1:
                duration = struct.unpack_from(">Q", moov, s + 4 + 8 + 8 + 4 + 4)[0]
            else:
                duration = struct.unpack_from(">I", moov, s + 4 + 4 + 4 + 4 + 4)[0]
        elif box == b"mdia":
            for inner, s2, _e2 in _boxes(moov, s, e):
                if inner == b"hdlr":
                    kind = _KINDS.get(moov[s2 + 8:s2 + 12], "other")
    return kind, duration


def track_durations(path: str) -> dict[int, tuple[str, float]]:
    """``{track position: (kind, seconds)}`` in file order (FFmpeg's stream order); ``{}`` if unknown.

    ``kind`` is ``"video"``, ``"audio"`` or ``"other"`` (timecode, text, …).
    """
    if not path.lower().endswith(ISOBMFF_EXTENSIONS):
        return {}
    try:
        moov = _find_moov(path)
        if moov is None:
            return {}
        scale = _movie_timescale(moov)
        if scale is None:
            return {}
        out: dict[int, tuple[str, float]] = {}
        position = 0
        for kind, start, end in _boxes(moov):
            if kind != b"trak":
                continue
            track_kind, duration = _track(moov, start, end)
            if track_kind is not None and duration not in (None, 0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
                out[position] = (track_kind, round(duration / scale, 6))
            position += 1
        return out
    except (OSError, struct.error, IndexError):
        return {}
