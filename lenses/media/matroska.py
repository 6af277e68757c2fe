"""Matroska / WebM files draftlens wrote, read in-process (the verification of a job's output).

An EBML walk (RFC 8794; Matroska element IDs from RFC 9559): the EBML
header's ``DocType``, then the ``Segment``, whose size FFmpeg fills in when
it finishes a seekable file, so a file cut anywhere after its header no
longer matches it. Every top-level element of the segment must fit inside
it; ``Info`` gives the duration, ``Tracks`` the streams (codec ID, frame
size, sample rate, channels, default frame duration), ``Tags`` each
stream's own ``DURATION`` (which FFmpeg writes when it finishes the file).
Cluster contents (the frames themselves) are not parsed: their sizes, the
segment's and the file's must agree.

``read_matroska(path)`` returns the shape of ``mediainfo.parse_input_dump``
or raises ``NotWhole`` (cut, empty, malformed: which element, which offset)
or ``NotReadHere`` (a codec ID this reader does not map).
"""

from __future__ import annotations

import struct
from typing import Any

from .errors import NotReadHere, NotWhole
from .wholefile import size_of

__all__ = ["read_matroska", "MATROSKA_CONTAINER", "CODEC_IDS"]

MATROSKA_CONTAINER = "matroska,webm"  # the name FFmpeg's demuxer gives both
# Codec IDs FFmpeg's Matroska muxer writes -> FFmpeg's codec name (libavformat/matroska.c).
CODEC_IDS = {
    "V_PRORES": "prores", "V_MPEG4/ISO/AVC": "h264", "V_MPEGH/ISO/HEVC": "hevc", "V_VP9": "vp9", "V_AV1": "av1",
    "A_OPUS": "opus", "A_VORBIS": "vorbis", "A_FLAC": "flac", "A_AAC": "aac", "A_MPEG/L3": "mp3", "A_ALAC": "alac",
}
_DNXHD_FOURCCS = (b"AVdn", b"AVdh")  # V_QUICKTIME whose sample description names DNxHD/DNxHR

_EBML, _DOCTYPE = 0x1A45DFA3, 0x4282
_SEGMENT, _INFO, _TRACKS, _TAGS, _CLUSTER = 0x18538067, 0x1549A966, 0x1654AE6B, 0x1254C367, 0x1F43B675
_TIMESTAMP_SCALE, _DURATION = 0x2AD7B1, 0x4489
_TRACK_ENTRY, _TRACK_NUMBER, _TRACK_UID, _TRACK_TYPE, _CODEC_ID = 0xAE, 0xD7, 0x73C5, 0x83, 0x86
_CODEC_PRIVATE, _DEFAULT_DURATION, _VIDEO, _AUDIO = 0x63A2, 0x23E383, 0xE0, 0xE1
_PIXEL_WIDTH, _PIXEL_HEIGHT, _SAMPLING, _CHANNELS, _BIT_DEPTH = 0xB0, 0xBA, 0xB5, 0x9F, 0x6264
_TAG, _TARGETS, _TAG_TRACK_UID, _SIMPLE_TAG, _TAG_NAME, _TAG_STRING = 0x7373, 0x63C0, 0x63C5, 0x67C8, 0x45A3, 0x4487
_TRACK_KINDS = {1: "video", 2: "audio", 17: "subtitle"}
_UNKNOWN = -1
_MAX_HEADER_ELEMENT = 16 << 20  # Info, Tracks, Tags larger than this are not worth reading for a check


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int]:
    """``(value, length)`` of the EBML variable-length integer at ``pos``; ``_UNKNOWN`` for an all-ones size."""
    if pos >= len(data):
        raise NotWhole(f"an element header at offset {pos} is cut off")
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or pos + length > len(data):
        raise NotWhole(f"a malformed or cut element header at offset {pos}")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[pos + 1:pos + length]:
        value = (value << 8) | byte
    if not keep_marker and value == (1 << (7 * length)) - 1:
        value = _UNKNOWN
    return value, length


def _elements(data: bytes, start: int, end: int, where: str):
    """``(id, payload start, payload end)`` of the elements in ``data[start:end]``; NotWhole if one does not fit."""
    pos = start
    while pos < end:
        ident, id_len = _vint(data, pos, keep_marker=True)
        size, size_len = _vint(data, pos + id_len, keep_marker=False)
        body = pos + id_len + size_len
        if size == _UNKNOWN or body + size > end:
            raise NotWhole(f"element {ident:#x} at offset {pos} in {where} does not fit in it: the file is cut")
        yield ident, body, body + size
        pos = body + size


def _uint(data: bytes, start: int, end: int) -> int:
    return int.from_bytes(data[start:end], "big")


def _float(data: bytes, start: int, end: int) -> float:
    return struct.unpack(">f" if end - start == 4 else ">d", data[start:end])[0]


def _read_header(fh, size_on_disk: int) -> tuple[str, int, int]:
    """``(doc type, segment payload offset, segment payload end)``."""
    head = fh.read(64)
    if len(head) < 4 or int.from_bytes(head[:4], "big") != _EBML:
        raise NotWhole("no EBML header: not a Matroska/WebM file")
    size, size_len = _vint(head, 4, keep_marker=False)
    body = 4 + size_len
    if size == _UNKNOWN or body + size > len(head):
        raise NotWhole("the EBML header is cut or too large")
    doctype = ""
    for ident, s, e in _elements(head, body, body + size, "the EBML header"):
        if ident == _DOCTYPE:
            doctype = head[s:e].rstrip(b"\0").decode("ascii", "replace")
    pos = body + size
    ident, id_len = _vint(head, pos, keep_marker=True)
    if ident != _SEGMENT:
        raise NotWhole(f"element {ident:#x} at offset {pos} where the Segment should start")
    seg_size, seg_len = _vint(head, pos + id_len, keep_marker=False)
    seg_start = pos + id_len + seg_len
    if seg_size == _UNKNOWN:
        raise NotWhole("the Segment's size was never filled in: the file was not finished")
    if seg_start + seg_size != size_on_disk:
        raise NotWhole(f"the Segment declares {seg_size} bytes from offset {seg_start}, but the file holds "
                       f"{size_on_disk - seg_start}: the file is cut or has bytes after its end")
    return doctype, seg_start, seg_start + seg_size


def _top_level(fh, start: int, end: int) -> dict[int, list[bytes]]:
    """The payloads of Info, Tracks and Tags; every top-level element must end inside the segment."""
    wanted: dict[int, list[bytes]] = {}
    pos = start
    while pos < end:
        fh.seek(pos)
        head = fh.read(12)
        ident, id_len = _vint(head, 0, keep_marker=True)
        size, size_len = _vint(head, id_len, keep_marker=False)
        body = pos + id_len + size_len
        if size == _UNKNOWN or body + size > end:
            raise NotWhole(f"top-level element {ident:#x} at offset {pos} runs past the end of the Segment: "
                           "the file is cut")
        if ident in (_INFO, _TRACKS, _TAGS):  # FFmpeg writes a second Tags (the DURATIONs) at the end
            if size > _MAX_HEADER_ELEMENT:
                raise NotReadHere(f"a header element {ident:#x} of {size} bytes")
            fh.seek(body)
            wanted.setdefault(ident, []).append(fh.read(size))
        pos = body + size
    return wanted


def _duration_tag(text: str) -> float | None:
    parts = text.strip().split(":")
    if len(parts) != 3:
        return None
    try:
        return round(int(parts[0]) * 3600 + int(parts[1]) * 60 + float(parts[2]), 6)
    except ValueError:
        return None


def _stream_durations(tags: bytes) -> dict[int, float]:
    """Track UID -> its ``DURATION`` tag in seconds."""
    found: dict[int, float] = {}
    for ident, s, e in _elements(tags, 0, len(tags), "Tags"):
        if ident != _TAG:
            continue
        uids, duration = [], None
        for inner, s2, e2 in _elements(tags, s, e, "a Tag"):
            if inner == _TARGETS:
                uids += [_uint(tags, a, b) for i, a, b in _elements(tags, s2, e2, "Targets") if i == _TAG_TRACK_UID]
            elif inner == _SIMPLE_TAG:
                fields = {i: tags[a:b] for i, a, b in _elements(tags, s2, e2, "a SimpleTag")}
                if fields.get(_TAG_NAME) == b"DURATION" and _TAG_STRING in fields:
                    duration = _duration_tag(fields[_TAG_STRING].rstrip(b"\0").decode("ascii", "replace"))
        if duration is not None:
            for uid in uids:
                found[uid] = duration
    return found


def _track(tracks: bytes, s: int, e: int, index: int) -> tuple[dict[str, Any], int]:
    """``(stream, track UID)`` of one TrackEntry."""
    fields: dict[int, tuple[int, int]] = {i: (a, b) for i, a, b in _elements(tracks, s, e, "a TrackEntry")}
    kind = _TRACK_KINDS.get(_uint(tracks, *fields[_TRACK_TYPE]) if _TRACK_TYPE in fields else 0, "data")
    codec_id = tracks[slice(*fields[_CODEC_ID])].rstrip(b"\0").decode("ascii", "replace") if _CODEC_ID in fields else ""
    codec = CODEC_IDS.get(codec_id)
    if codec_id == "V_QUICKTIME" and _CODEC_PRIVATE in fields:  # a QuickTime sample description
        private = tracks[slice(*fields[_CODEC_PRIVATE])]
        codec = "dnxhd" if private[4:8] in _DNXHD_FOURCCS else None
    stream: dict[str, Any] = {
        "index": index, "codec_type": kind, "codec_name": codec, "width": None, "height": None,
        "frame_rate": None, "r_frame_rate": None, "sample_rate": None, "channels": None, "pix_fmt": None,
        "channel_layout": None, "attached_pic": False, "rotation": None, "duration": None,
    }
    if kind == "video" and _VIDEO in fields:
        video = {i: (a, b) for i, a, b in _elements(tracks, *fields[_VIDEO], "Video")}
        if _PIXEL_WIDTH in video and _PIXEL_HEIGHT in video:
            stream["width"], stream["height"] = _uint(tracks, *video[_PIXEL_WIDTH]), _uint(tracks, *video[_PIXEL_HEIGHT])
        if _DEFAULT_DURATION in fields:
            nanoseconds = _uint(tracks, *fields[_DEFAULT_DURATION])
            if nanoseconds:
                stream["frame_rate"] = stream["r_frame_rate"] = round(1e9 / nanoseconds, 2)
    elif kind == "audio" and _AUDIO in fields:
        audio = {i: (a, b) for i, a, b in _elements(tracks, *fields[_AUDIO], "Audio")}
        stream["sample_rate"] = int(round(_float(tracks, *audio[_SAMPLING]))) if _SAMPLING in audio else 8000
        stream["channels"] = _uint(tracks, *audio[_CHANNELS]) if _CHANNELS in audio else 1
        if codec_id == "A_PCM/INT/LIT":
            bits = _uint(tracks, *audio[_BIT_DEPTH]) if _BIT_DEPTH in audio else 0
            codec = stream["codec_name"] = {16: "pcm_s16le", 24: "pcm_s24le"}.get(bits)
    if kind in ("video", "audio") and codec is None:
        raise NotReadHere(f"Matroska codec ID {codec_id!r}")
    uid = _uint(tracks, *fields[_TRACK_UID]) if _TRACK_UID in fields else 0
    return stream, uid


def read_matroska(path: str) -> dict[str, Any]:
    """``{"container", "duration", "duration_estimated", "start_time", "streams", "timecode"}`` of an MKV/WebM/MKA.

    Raises NotWhole or NotReadHere (see the module). Streams are the tracks
    in file order; each stream's ``duration`` is its ``DURATION`` tag.
    """
    with open(path, "rb") as fh:
        size_on_disk = size_of(fh)
        _doctype, start, end = _read_header(fh, size_on_disk)
        parts = _top_level(fh, start, end)
    if _INFO not in parts or _TRACKS not in parts:
        raise NotWhole("no Info or Tracks element: not a finished Matroska file")
    head = parts[_INFO][0]
    info = {i: (a, b) for i, a, b in _elements(head, 0, len(head), "Info")}
    scale = _uint(head, *info[_TIMESTAMP_SCALE]) if _TIMESTAMP_SCALE in info else 1_000_000
    duration = round(_float(head, *info[_DURATION]) * scale / 1e9, 6) if _DURATION in info else None
    tracks = parts[_TRACKS][0]
    streams, uids = [], []
    for ident, s, e in _elements(tracks, 0, len(tracks), "Tracks"):
        if ident == _TRACK_ENTRY:
            stream, uid = _track(tracks, s, e, len(streams))
            streams.append(stream)
            uids.append(uid)
    if not streams:
        raise NotWhole("the file has no tracks")
    durations: dict[int, float] = {}
    for tags in parts.get(_TAGS, ()):
        durations.update(_stream_durations(tags))
    for stream, uid in zip(streams, uids, strict=True):
        stream["duration"] = durations.get(uid)
    return {"container": MATROSKA_CONTAINER, "duration": duration, "duration_estimated": False, "start_time": 0.0,
            "streams": streams, "timecode": None}
