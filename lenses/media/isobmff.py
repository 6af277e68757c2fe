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

``read_movie(path)`` reads a MOV / MP4 / M4A that draftlens itself wrote
(the verification of a job's output, ``lenses.media.written``): it checks
that the file is whole — the top-level boxes tile the file exactly, ``moov``
and ``mdat`` are there, and every chunk of every track's sample table lies
inside ``mdat`` — and gives its streams and durations in the shape of
``mediainfo.parse_input_dump``. A cut or malformed file raises ``NotWhole``;
what it leaves to FFmpeg (fragmented files, a rotated track, a drop-frame
timecode, a sample entry it does not know) raises ``NotReadHere``.

>>> track_durations("/nonexistent.mp4")
{}
"""

from __future__ import annotations

import os
import struct
from itertools import accumulate
from typing import Any

from .errors import NotReadHere, NotWhole
from .wholefile import size_of

__all__ = ["track_durations", "track_timing", "ISOBMFF_EXTENSIONS", "read_movie", "MOVIE_CONTAINER"]

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


def _track(moov: bytes, start: int, end: int) -> tuple[str | None, int | None, bool]:
    """``(kind, tkhd duration, whether the edit list starts with an empty edit)`` of one ``trak``."""
    kind = duration = None
    delayed = False
    for box, s, e in _boxes(moov, start, end):
        if box == b"edts":
            for inner, s2, e2 in _boxes(moov, s, e):
                if inner == b"elst" and e2 - s2 >= 8 and struct.unpack_from(">I", moov, s2 + 4)[0] > 0:
                    # the first entry's media_time is -1 for an empty edit (ISO/IEC 14496-12, 8.6.6)
                    media_time = (struct.unpack_from(">q", moov, s2 + 16)[0] if moov[s2] == 1 and e2 - s2 >= 24
                                  else struct.unpack_from(">i", moov, s2 + 12)[0] if e2 - s2 >= 16 else 0)
                    delayed = media_time == -1
        elif box == b"tkhd":
            version = moov[s]
            if version == 1:
                duration = struct.unpack_from(">Q", moov, s + 4 + 8 + 8 + 4 + 4)[0]
            else:
                duration = struct.unpack_from(">I", moov, s + 4 + 4 + 4 + 4 + 4)[0]
        elif box == b"mdia":
            for inner, s2, _e2 in _boxes(moov, s, e):
                if inner == b"hdlr":
                    kind = _KINDS.get(moov[s2 + 8:s2 + 12], "other")
    return kind, duration, delayed


def track_durations(path: str) -> dict[int, tuple[str, float]]:
    """``{track position: (kind, seconds)}`` in file order (FFmpeg's stream order); ``{}`` if unknown.

    ``kind`` is ``"video"``, ``"audio"`` or ``"other"`` (timecode, text, …).
    """
    return {position: (kind, seconds) for position, (kind, seconds, _) in track_timing(path).items()}


def track_timing(path: str) -> dict[int, tuple[str, float, bool]]:
    """``track_durations`` and, per track, whether its duration counts from the movie's start.

    A track header's duration is the length of the track's edit list: with a
    leading empty edit (a track that starts late on purpose) it counts from
    the movie's start; otherwise the track's presentation starts at the movie's
    start, shifted only by its first sample's composition offset (B-frames
    without an edit list: FFmpeg's stream ``start`` then), and it is a length
    from there (review 30: ``pymediainfo-sample.mp4``, whose video starts at
    0.083 s, lost its last two frames when the two were confused).
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
        out: dict[int, tuple[str, float, bool]] = {}
        position = 0
        for kind, start, end in _boxes(moov):
            if kind != b"trak":
                continue
            track_kind, duration, delayed = _track(moov, start, end)
            if track_kind is not None and duration not in (None, 0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
                out[position] = (track_kind, round(duration / scale, 6), delayed)
            position += 1
        return out
    except (OSError, struct.error, IndexError):
        return {}


MOVIE_CONTAINER = "mov,mp4,m4a,3gp,3g2,mj2"  # the name FFmpeg's demuxer gives these files
# Sample-entry four-character codes FFmpeg writes -> FFmpeg's codec name (libavformat/isom.c, mov.c).
VIDEO_ENTRIES = {
    b"apco": "prores", b"apcs": "prores", b"apcn": "prores", b"apch": "prores", b"ap4h": "prores", b"ap4x": "prores",
    b"AVdh": "dnxhd", b"AVdn": "dnxhd", b"avc1": "h264", b"avc3": "h264", b"hvc1": "hevc", b"hev1": "hevc",
    b"vp09": "vp9", b"av01": "av1",
}
AUDIO_ENTRIES = {b"sowt": "pcm_s16le", b"twos": "pcm_s16be", b"in24": "pcm_s24be", b"mp4a": "aac", b"alac": "alac",
                 b"Opus": "opus", b"fLaC": "flac", b".mp3": "mp3"}
_IDENTITY = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_NO_DURATION = (0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)


def _top_boxes(fh, size_on_disk: int) -> list[tuple[bytes, int, int, int]]:
    """``(type, offset, header length, size)`` of every top-level box; NotWhole unless they tile the file."""
    boxes, pos = [], 0
    while pos < size_on_disk:
        fh.seek(pos)
        head = fh.read(16)
        if len(head) < 8:
            raise NotWhole(f"{size_on_disk - pos} stray byte(s) at offset {pos}, after the last whole box")
        size, kind = struct.unpack_from(">I4s", head)
        if not all(0x20 <= c <= 0x7E for c in kind):
            raise NotWhole(f"{size_on_disk - pos} byte(s) at offset {pos} that are not a box (type {kind!r})")
        header = 8
        if size == 0 and kind != b"mdat":  # "to the end of the file": only media data is ever written so
            raise NotWhole(f"box {kind!r} at offset {pos} has no size")
        if size == 1:
            if len(head) < 16:
                raise NotWhole(f"box {kind!r} at offset {pos}: its 64-bit size is cut off")
            size, header = struct.unpack_from(">Q", head, 8)[0], 16
        elif size == 0:
            size = size_on_disk - pos
        if size < header:
            raise NotWhole(f"box {kind!r} at offset {pos} declares {size} bytes, less than its own header")
        if pos + size > size_on_disk:
            raise NotWhole(f"box {kind!r} at offset {pos} declares {size} bytes, but only {size_on_disk - pos} "
                           "are left in the file: the file is cut")
        boxes.append((kind, pos, header, size))
        pos += size
    return boxes


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for box, s, e in _boxes(data, start, end):
        if box == kind:
            return s, e
    return None


def _path(data: bytes, start: int, end: int, *kinds: bytes) -> tuple[int, int] | None:
    span: tuple[int, int] | None = (start, end)
    for kind in kinds:
        span = _child(data, span[0], span[1], kind)
        if span is None:
            return None
    return span


def _full_box_table(data: bytes, span: tuple[int, int] | None, fmt: str, what: str) -> list[tuple]:
    """The entries of a full box whose body is a u32 count then ``fmt`` entries (stts, stsc, stco, co64)."""
    if span is None:
        return []
    start, end = span
    count = struct.unpack_from(">I", data, start + 4)[0]
    width = struct.calcsize(fmt)
    if start + 8 + count * width > end:
        raise NotWhole(f"{what} lists {count} entries but its box holds only {(end - start - 8) // width}")
    return list(struct.iter_unpack(fmt, data[start + 8:start + 8 + count * width]))


def _sample_sizes(data: bytes, span: tuple[int, int] | None) -> tuple[int, int, tuple[int, ...]]:
    """``(fixed size or 0, sample count, sizes when not fixed)`` of an ``stsz`` box."""
    if span is None:
        return 0, 0, ()
    start, end = span
    fixed, count = struct.unpack_from(">II", data, start + 4)
    if fixed:
        return fixed, count, ()
    if start + 12 + 4 * count > end:
        raise NotWhole(f"stsz lists {count} sample sizes but its box holds only {(end - start - 12) // 4}")
    return 0, count, struct.unpack_from(f">{count}I", data, start + 12)


def _chunk_extents(data: bytes, stbl: tuple[int, int], track: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of every chunk of a track, from its sample table (ISO/IEC 14496-12 §8.7)."""
    offsets = [o for (o,) in _full_box_table(data, _child(data, *stbl, b"stco"), ">I", "stco")]
    offsets += [o for (o,) in _full_box_table(data, _child(data, *stbl, b"co64"), ">Q", "co64")]
    runs = _full_box_table(data, _child(data, *stbl, b"stsc"), ">III", "stsc")
    fixed, count, sizes = _sample_sizes(data, _child(data, *stbl, b"stsz"))
    ends = None if fixed else [0, *accumulate(sizes)]  # byte position of each sample within the track
    extents, sample = [], 0
    for n, (first, per_chunk, _description) in enumerate(runs):
        last = runs[n + 1][0] - 1 if n + 1 < len(runs) else len(offsets)
        if first < 1 or last > len(offsets) or sample + (last - first + 1) * per_chunk > count:
            raise NotWhole(f"track {track}: the sample table maps more samples or chunks than it lists")
        for chunk in range(first, last + 1):
            length = per_chunk * fixed if fixed else ends[sample + per_chunk] - ends[sample]
            extents.append((offsets[chunk - 1], length))
            sample += per_chunk
    if sample != count:
        raise NotWhole(f"track {track}: {count} samples listed, {sample} placed in chunks")
    return extents


def _timecode(fh, data: bytes, entry: int, stbl: tuple[int, int]) -> str | None:
    """The start timecode of a ``tmcd`` track, as FFmpeg prints it (non-drop-frame only)."""
    flags, scale, frame_duration = struct.unpack_from(">III", data, entry + 20)
    if flags & 0x1:
        raise NotReadHere("a drop-frame timecode track")
    offsets = _full_box_table(data, _child(data, *stbl, b"stco"), ">I", "stco") \
        or _full_box_table(data, _child(data, *stbl, b"co64"), ">Q", "co64")
    if not offsets or not frame_duration:
        return None
    fh.seek(offsets[0][0])
    raw = fh.read(4)
    if len(raw) < 4:
        raise NotWhole("the timecode sample lies past the end of the file")
    frame = struct.unpack(">I", raw)[0]
    fps = round(scale / frame_duration)
    if fps <= 0:
        return None
    hours = frame // (fps * 3600)
    if flags & 0x2:
        hours %= 24
    return f"{hours:02d}:{frame // (fps * 60) % 60:02d}:{frame // fps % 60:02d}:{frame % fps:02d}"


def _audio_entry(data: bytes, entry: int, fourcc: bytes) -> tuple[str, int, int]:
    """``(codec name, sample rate, channels)`` of a sound sample entry (QuickTime v0/v1/v2, ISO)."""
    version = struct.unpack_from(">H", data, entry + 16)[0]
    if version == 2:
        rate = struct.unpack_from(">d", data, entry + 40)[0]
        channels, _always, bits, flags = struct.unpack_from(">IIII", data, entry + 48)
        if fourcc == b"lpcm":
            if flags & 0x1 or not flags & 0x4 or bits not in (16, 24):
                raise NotReadHere(f"an lpcm sound entry with flags {flags:#x} and {bits} bits")
            codec = f"pcm_s{bits}{'be' if flags & 0x2 else 'le'}"
        else:
            codec = AUDIO_ENTRIES.get(fourcc)
        return codec, int(round(rate)), channels
    channels = struct.unpack_from(">H", data, entry + 24)[0]
    rate = struct.unpack_from(">I", data, entry + 32)[0] >> 16
    return AUDIO_ENTRIES.get(fourcc), rate, channels


def _stream(fh, data: bytes, trak: tuple[int, int], index: int, movie_scale: int,
            mdat: list[tuple[int, int]]) -> tuple[dict[str, Any], float | None, str | None]:
    """``(stream, start offset in s, timecode)`` of one track."""
    tkhd = _child(data, *trak, b"tkhd")
    mdia = _child(data, *trak, b"mdia")
    hdlr = mdia and _child(data, *mdia, b"hdlr")
    mdhd = mdia and _child(data, *mdia, b"mdhd")
    stbl = mdia and _path(data, *mdia, b"minf", b"stbl")
    stsd = stbl and _child(data, *stbl, b"stsd")
    if not (tkhd and hdlr and mdhd and stbl and stsd):
        raise NotWhole(f"track {index}: its tkhd, hdlr, mdhd or sample table is missing")
    handler = data[hdlr[0] + 8:hdlr[0] + 12]
    version = data[tkhd[0]]
    body = tkhd[0] + (4 + 8 + 8 + 4 + 4 if version == 1 else 4 + 4 + 4 + 4 + 4)
    duration = struct.unpack_from(">Q" if version == 1 else ">I", data, body)[0]
    matrix_at = body + (8 if version == 1 else 4) + 8 + 2 + 2 + 2 + 2
    if struct.unpack_from(">9I", data, matrix_at) != _IDENTITY and handler == b"vide":
        raise NotReadHere(f"track {index} has a display matrix (rotation)")
    media_version = data[mdhd[0]]
    media_scale = struct.unpack_from(">I", data, mdhd[0] + (4 + 8 + 8 if media_version == 1 else 4 + 4 + 4))[0]
    entry = stsd[0] + 8
    if struct.unpack_from(">I", data, stsd[0] + 4)[0] < 1 or entry + 8 > stsd[1]:
        raise NotWhole(f"track {index}: its sample description is empty")
    fourcc = data[entry + 4:entry + 8]
    for offset, length in _chunk_extents(data, stbl, index):
        if length and not any(start <= offset and offset + length <= end for start, end in mdat):
            raise NotWhole(f"track {index}: a chunk of {length} bytes at offset {offset} lies outside the media data "
                           "(mdat): the file is cut or damaged")
    stream: dict[str, Any] = {
        "index": index, "codec_type": "data", "codec_name": None, "width": None, "height": None,
        "frame_rate": None, "r_frame_rate": None, "sample_rate": None, "channels": None, "pix_fmt": None,
        "channel_layout": None, "attached_pic": False, "rotation": None,
        "duration": round(duration / movie_scale, 6) if duration not in _NO_DURATION else None,
    }
    timecode = None
    if handler == b"vide":
        stream["codec_type"] = "video"
        stream["codec_name"] = VIDEO_ENTRIES.get(fourcc)
        if stream["codec_name"] is None:
            raise NotReadHere(f"video sample entry {fourcc!r}")
        stream["width"], stream["height"] = struct.unpack_from(">HH", data, entry + 32)
        deltas = _full_box_table(data, _child(data, *stbl, b"stts"), ">II", "stts")
        count, total = sum(c for c, _d in deltas), sum(c * d for c, d in deltas)
        if count and total and media_scale:
            stream["frame_rate"] = round(count * media_scale / total, 2)
            # FFmpeg's base rate (tbr): the one delta of a constant-rate track, else the shortest
            steady = len(deltas) == 1 or (len(deltas) == 2 and deltas[1][0] == 1)
            shortest = deltas[0][1] if steady else min(d for _c, d in deltas if d)
            stream["r_frame_rate"] = round(media_scale / shortest, 2)
    elif handler == b"soun":
        codec, rate, channels = _audio_entry(data, entry, fourcc)
        if rate and media_scale > 0xFFFF and media_scale % rate == 0 and not (media_scale // rate) & (
                media_scale // rate - 1):
            # A rate above 65535 does not fit the entry's 16.16 field: it holds the rate halved until it
            # fits (ISO/IEC 14496-12, 12.2.3; what FFmpeg writes), and the media timescale is the rate.
            rate = media_scale
        if codec is None:
            raise NotReadHere(f"sound sample entry {fourcc!r}")
        stream.update(codec_type="audio", codec_name=codec, sample_rate=rate, channels=channels)
    elif handler == b"tmcd" and fourcc == b"tmcd":
        timecode = _timecode(fh, data, entry, stbl)
    start = 0.0
    elst = _path(data, *trak, b"edts", b"elst")
    if elst is not None:
        edit_version = data[elst[0]]
        entries = _full_box_table(data, elst, ">QqI" if edit_version == 1 else ">IiI", "elst")
        empty = [d for d, media_time, _rate in entries[:1] if media_time == -1]
        start = empty[0] / movie_scale if empty else 0.0
    return stream, start, timecode


def read_movie(path: str) -> dict[str, Any]:
    """``{"container", "duration", "duration_estimated", "start_time", "streams", "timecode"}`` of a MOV/MP4/M4A.

    Raises NotWhole (cut, empty or malformed: the message says which box and
    offset) or NotReadHere (what this reader leaves to FFmpeg). Streams are
    the tracks in file order (FFmpeg's stream order); a track's ``duration``
    is its ``tkhd`` duration, the container's the longest of them (else
    ``mvhd``'s). ``frame_rate`` is the average rate of the sample table.
    """
    with open(path, "rb") as fh:
        size_on_disk = size_of(fh)
        boxes = _top_boxes(fh, size_on_disk)
        kinds = [kind for kind, *_rest in boxes]
        if b"moof" in kinds:
            raise NotReadHere("a fragmented movie")
        if b"moov" not in kinds:
            raise NotWhole("no movie header (moov): the file is cut or was never finished")
        if kinds.count(b"moov") > 1:
            raise NotWhole("two movie headers (moov)")
        mdat = [(pos + header, pos + size) for kind, pos, header, size in boxes if kind == b"mdat"]
        _kind, pos, header, size = boxes[kinds.index(b"moov")]
        if size - header > _MAX_MOOV:
            raise NotReadHere(f"a movie header of {size - header} bytes")
        fh.seek(pos + header)
        moov = fh.read(size - header)
        try:
            return _movie(fh, moov, mdat)
        except (struct.error, IndexError) as exc:
            raise NotWhole(f"the movie header (moov) is malformed ({exc})") from None


def _movie(fh, moov: bytes, mdat: list[tuple[int, int]]) -> dict[str, Any]:
    mvhd = _child(moov, 0, len(moov), b"mvhd")
    if mvhd is None:
        raise NotWhole("the movie header has no mvhd")
    version = moov[mvhd[0]]
    scale_at = mvhd[0] + (4 + 16 if version == 1 else 4 + 8)
    scale = struct.unpack_from(">I", moov, scale_at)[0]
    movie_duration = struct.unpack_from(">Q" if version == 1 else ">I", moov, scale_at + 4)[0]
    if not scale:
        raise NotWhole("the movie header gives a time scale of 0")
    streams, starts, timecode = [], [], None
    for kind, start, end in _boxes(moov):
        if kind == b"trak":
            stream, begins, code = _stream(fh, moov, (start, end), len(streams), scale, mdat)
            streams.append(stream)
            starts.append(begins)
            timecode = timecode or code
    if not streams:
        raise NotWhole("the movie has no tracks")
    known = [s["duration"] for s in streams if s["duration"] is not None]
    duration = max(known) if known else (round(movie_duration / scale, 6) if movie_duration not in _NO_DURATION
                                         else None)
    return {"container": MOVIE_CONTAINER, "duration": duration, "duration_estimated": False,
            "start_time": min(starts), "streams": streams, "timecode": timecode}
