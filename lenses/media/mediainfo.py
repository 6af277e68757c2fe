"""Probing without ffprobe: parse the ``Input #0`` dump FFmpeg prints on stderr.

The bundled imageio-ffmpeg has no ffprobe, so a probe is one run of the same
binary: ``ffmpeg -hide_banner -nostdin -nostats -i file:<path>`` plus a
zero-frame dummy output (``-f lavfi -i nullsrc=d=0 -map 1:v -f null -``), which
makes FFmpeg exit 0 exactly when it could open and read the headers of the
file, whatever streams it holds. FFmpeg prints the header dump of every input
(``av_dump_format``) at the default log level; that dump is what this module
reads. The same dump appears at the top of every transcoding run, so a job
learns what its source promised (duration, streams) from its own run, with no
extra process.

The dump is a human format, read defensively: only the ``Input #0`` section
(indented lines after ``Input #0, <demuxer>, from '...':``), stream lines
found at any nesting (FFmpeg 9 nests streams under ``Stream group`` and
``Program``), each stream once, ordered by index; parenthesised details
(``yuv420p(tv, bt709)``) never split a field. Paths with control characters
are refused before a run, so a file name cannot inject dump lines.

Stream keys follow ffprobe: ``index``, ``codec_type``, ``codec_name``,
``width``, ``height``, ``frame_rate`` (the average rate, FFmpeg's ``fps``
figure, else ``tbr``; rounded by FFmpeg to 2 decimals, e.g. 29.97),
``sample_rate``, ``channels``, ``duration`` (the stream's own duration in
seconds when the file states it — Matroska/WebM ``DURATION`` tags — else
None), ``start_time`` (seconds: the stream's first timestamp, which FFmpeg
prints only when it is not 0 — an MPEG-TS video that starts after its audio,
say; else None), ``sample_aspect_ratio`` (``"num:den"``, the shape of a
stored pixel, as the FFmpeg command line uses it: the container's value when
it overrides the codec's, else the codec's; None when unstated, which FFmpeg
takes as square), plus ``r_frame_rate`` (``tbr``: the base rate;
differing from ``frame_rate`` marks variable frame rate), ``pix_fmt``, ``channel_layout``, ``attached_pic`` and ``rotation`` (the
display matrix, degrees; ``width``/``height`` are the coded size, as in
ffprobe). Keys that do not apply to a stream are None.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["parse_input_dump", "parse_output_dump", "first_stream", "count_streams", "display_size", "is_vfr", "CHANNEL_LAYOUTS",
           "audio_streams_with_sound", "with_track_durations", "looks_unindexed"]

_INPUT_RE = re.compile(r"^Input #(\d+), (.*?), from '")
_OUTPUT_RE = re.compile(r"^Output #(\d+), (.*?), to '")
_DURATION_RE = re.compile(r"^\s+Duration: (N/A|(\d+):(\d\d):(\d\d(?:\.\d+)?))(?:, start: (-?[\d.]+))?")
_STREAM_RE = re.compile(
    r"^\s+Stream #(\d+):(\d+)(?:\[0x[0-9a-fA-F]+\])?(?:\([^)]*\))?: (Video|Audio|Subtitle|Data|Attachment): ?(.*)$"
)
_ROTATION_RE = re.compile(r"^\s+display ?matrix: rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_STREAM_DURATION_RE = re.compile(r"^\s+DURATION\s*: (\d+):(\d\d):(\d\d(?:\.\d+)?)\s*$")
_ESTIMATED = "Estimating duration from bitrate"
_TIMECODE_RE = re.compile(r"^\s+timecode\s*: (\d\d:\d\d:\d\d[:;.]\d+)\s*$")
_DIMS_RE = re.compile(r"^(\d+)x(\d+)(?:\s|$)")
_RATE_RE = re.compile(r"^(\d+(?:\.\d+)?)(k?) (fps|tbr)\b")
_HZ_RE = re.compile(r"^(\d+) Hz$")
_N_CHANNELS_RE = re.compile(r"^(\d+) channels\b")
_START_RE = re.compile(r"^start (-?\d+(?:\.\d+)?)\b")
_CODEC_SAR_RE = re.compile(r"\[SAR (\d+):(\d+) DAR \d+:\d+\]")  # in the size part: the codec's
_STREAM_SAR_RE = re.compile(r"^SAR (\d+):(\d+) DAR \d+:\d+$")  # a part of its own: the container's, which wins
_CUSTOM_LAYOUT_RE = re.compile(r"^[A-Z][A-Za-z0-9]*(?:\+[A-Z][A-Za-z0-9]*)+$")

# FFmpeg's named channel layouts (libavutil/channel_layout.c) -> channel count.
CHANNEL_LAYOUTS = {
    "mono": 1, "stereo": 2, "binaural": 2, "downmix": 2, "2.1": 3, "3.0": 3, "3.0(back)": 3,
    "4.0": 4, "quad": 4, "quad(side)": 4, "3.1": 4, "5.0": 5, "5.0(side)": 5, "4.1": 5,
    "5.1": 6, "5.1(side)": 6, "6.0": 6, "6.0(front)": 6, "3.1.2": 6, "hexagonal": 6,
    "6.1": 7, "6.1(back)": 7, "6.1(front)": 7, "7.0": 7, "7.0(front)": 7,
    "7.1": 8, "7.1(wide)": 8, "7.1(wide-side)": 8, "5.1.2": 8, "5.1.2(back)": 8, "octagonal": 8, "cube": 8,
    "5.1.4": 10, "7.1.2": 10, "7.1.4": 12, "7.2.3": 12, "9.1.4": 14, "9.1.6": 16, "hexadecagonal": 16, "22.2": 24,
}


def _section(stderr: str, index: int, header: re.Pattern = _INPUT_RE) -> list[str] | None:
    """The lines of the dump of input (or output) ``index`` (header line first), or None."""
    lines = stderr.splitlines()
    for start, line in enumerate(lines):
        match = header.match(line)
        if match and int(match.group(1)) == index:
            body = [line]
            for follow in lines[start + 1:]:
                if follow[:1] in (" ", "\t"):
                    body.append(follow)
                elif follow.startswith("[") or not follow:
                    continue  # a log line of another thread, not the end of the dump
                else:
                    break
            return body
    return None


def _split_top(text: str) -> list[str]:
    """Split on commas outside () and []."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]" and depth:
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _rate(part: str) -> tuple[str, float] | None:
    match = _RATE_RE.match(part)
    if not match:
        return None
    value = float(match.group(1)) * (1000 if match.group(2) else 1)
    return match.group(3), value


def _channels(layout: str) -> int | None:
    if layout in CHANNEL_LAYOUTS:
        return CHANNEL_LAYOUTS[layout]
    match = _N_CHANNELS_RE.match(layout)
    if match:
        return int(match.group(1))
    if _CUSTOM_LAYOUT_RE.match(layout):
        return layout.count("+") + 1
    return None


def _stream(index: int, kind: str, body: str) -> dict[str, Any]:
    parts = _split_top(body)
    codec = parts[0].split(" ", 1)[0] if parts else ""
    stream: dict[str, Any] = {
        "index": index,
        "codec_type": kind.lower(),
        "codec_name": codec if codec and codec != "none" else None,
        "width": None, "height": None, "frame_rate": None, "r_frame_rate": None,
        "sample_rate": None, "channels": None,
        "pix_fmt": None, "channel_layout": None,
        "attached_pic": "(attached pic)" in body,
        "rotation": None,
        "duration": None,
        "start_time": None,
        "sample_aspect_ratio": None,
    }
    rest = parts[1:]
    for part in rest:
        start = _START_RE.match(part)
        if start and stream["start_time"] is None:
            stream["start_time"] = float(start.group(1))
    if kind == "Video":
        fps = tbr = None
        for position, part in enumerate(rest):
            dims = _DIMS_RE.match(part)
            if dims and stream["width"] is None:
                stream["width"], stream["height"] = int(dims.group(1)), int(dims.group(2))
                if position == 1 and stream["pix_fmt"] is None and not _DIMS_RE.match(rest[0]):
                    stream["pix_fmt"] = rest[0].split("(", 1)[0].strip() or None
            sar = _CODEC_SAR_RE.search(part) if dims else _STREAM_SAR_RE.match(part)
            if sar and int(sar.group(1)) and int(sar.group(2)) and (stream["sample_aspect_ratio"] is None or not dims):
                stream["sample_aspect_ratio"] = f"{int(sar.group(1))}:{int(sar.group(2))}"
            rate = _rate(part)
            if rate and rate[0] == "fps" and fps is None:
                fps = rate[1]
            elif rate and rate[0] == "tbr" and tbr is None:
                tbr = rate[1]
        stream["frame_rate"] = fps if fps is not None else tbr
        stream["r_frame_rate"] = tbr
    elif kind == "Audio":
        for position, part in enumerate(rest):
            hz = _HZ_RE.match(part)
            if hz and stream["sample_rate"] is None:
                stream["sample_rate"] = int(hz.group(1))
                if position + 1 < len(rest):
                    layout = rest[position + 1]
                    stream["channel_layout"] = layout
                    stream["channels"] = _channels(layout)
    return stream


def parse_input_dump(stderr: str, index: int = 0) -> dict[str, Any] | None:
    """``{"container", "duration", "duration_estimated", "start_time", "streams", "timecode"}`` of input ``index``.

    None if the dump is not there. ``duration_estimated`` is True when FFmpeg
    only guessed the duration from the bit rate ("Estimating duration from
    bitrate": VBR MP3 without a Xing header, ADTS AAC, elementary streams):
    such a duration is no promise of what the file holds.

    >>> info = parse_input_dump('''Input #0, wav, from 'file:/a.wav':
    ...   Duration: 00:00:01.50, bitrate: 705 kb/s
    ...   Stream #0:0: Audio: pcm_s16le ([1][0][0][0] / 0x0001), 44100 Hz, mono, s16, 705 kb/s
    ... At least one output file must be specified''')
    >>> info["container"], info["duration"], info["streams"][0]["channels"]
    ('wav', 1.5, 1)
    """
    lines = _section(stderr, index)
    if lines is None:
        return None
    container = _INPUT_RE.match(lines[0]).group(2)
    duration = start = timecode = None
    streams: dict[int, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in lines[1:]:
        match = _DURATION_RE.match(line)
        if match and duration is None:
            if match.group(2) is not None:
                h, m, s = int(match.group(2)), int(match.group(3)), float(match.group(4))
                duration = round(h * 3600 + m * 60 + s, 6)
            if match.group(5) is not None:
                start = float(match.group(5))
            continue
        match = _STREAM_RE.match(line)
        if match:
            current = None
            if int(match.group(1)) == index:
                number = int(match.group(2))
                if number not in streams:
                    current = streams[number] = _stream(number, match.group(3), match.group(4))
            continue
        match = _STREAM_DURATION_RE.match(line)
        if match and current is not None and current["duration"] is None:
            h, m, sec = int(match.group(1)), int(match.group(2)), float(match.group(3))
            current["duration"] = round(h * 3600 + m * 60 + sec, 6)
            continue
        match = _ROTATION_RE.match(line)
        if match and current is not None and current["codec_type"] == "video":
            current["rotation"] = float(match.group(1))
            continue
        match = _TIMECODE_RE.match(line)
        if match and timecode is None:
            timecode = match.group(1)
    estimated = any(line.startswith(f"[in#{index}/") and _ESTIMATED in line for line in stderr.splitlines())
    return {
        "container": container,
        "duration": duration,
        "duration_estimated": estimated and duration is not None,
        "start_time": start,
        "streams": [streams[k] for k in sorted(streams)],
        "timecode": timecode,
    }


def parse_output_dump(stderr: str, index: int = 0) -> list[dict[str, Any]] | None:
    """The streams of FFmpeg's ``Output #index`` dump — what it set out to write — or None.

    Same stream keys as ``parse_input_dump``; printed before the first frame
    is written, so it says how the encoders were configured (pixel format,
    channel layout), never what reached the file (``lenses.media.written``
    reads that from the file itself).
    """
    lines = _section(stderr, index, _OUTPUT_RE)
    if lines is None:
        return None
    streams: dict[int, dict[str, Any]] = {}
    for line in lines[1:]:
        match = _STREAM_RE.match(line)
        if match and int(match.group(1)) == index and int(match.group(2)) not in streams:
            streams[int(match.group(2))] = _stream(int(match.group(2)), match.group(3), match.group(4))
    return [streams[k] for k in sorted(streams)]


def first_stream(info: dict[str, Any], codec_type: str) -> dict[str, Any] | None:
    """The first stream of a type (video: skipping cover art), or None."""
    for stream in info.get("streams", ()):
        if stream.get("codec_type") == codec_type and not stream.get("attached_pic"):
            return stream
    return None


def display_size(stream: dict[str, Any]) -> tuple[int, int] | None:
    """``(width, height)`` as FFmpeg's filters see them: after autorotation by ±90°."""
    if stream.get("width") is None or stream.get("height") is None:
        return None
    if stream.get("rotation") is not None and round(abs(stream["rotation"])) % 180 == 90:
        return stream["height"], stream["width"]
    return stream["width"], stream["height"]


def is_vfr(stream: dict[str, Any] | None) -> bool:
    """True when the average and base frame rates differ by more than 1 % (variable frame rate).

    A base rate twice the average is a constant rate counted in fields (MPEG-1/2
    and interlaced H.264: "24 fps, 48 tbr", "25 fps, 50 tbr"), not a variable
    one: FFmpeg encodes it at the frame rate (``av_guess_frame_rate`` takes the
    codec's rate there), so it is not VFR here either (review 30: an MXF proxy
    of such an MPEG-1 clip always failed verification, expecting 48 fps).
    """
    if not stream or not stream.get("frame_rate") or not stream.get("r_frame_rate"):
        return False
    fps, base = stream["frame_rate"], stream["r_frame_rate"]
    if abs(base - 2 * fps) <= 0.01 * base:
        return False
    return abs(fps - base) > 0.01 * base


def count_streams(info: dict[str, Any], codec_type: str) -> int:
    return sum(1 for s in info.get("streams", ()) if s.get("codec_type") == codec_type and not s.get("attached_pic"))


def audio_streams_with_sound(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The audio streams that carry sound: an MPEG-TS program map can list a track with no packets
    (FFmpeg shows it with no sample rate or ``0 channels``); mapping it makes the encoder fail."""
    return [s for s in info.get("streams", ()) if s.get("codec_type") == "audio"
            and s.get("sample_rate") and s.get("channels") != 0]


def with_track_durations(info: dict[str, Any], path: str) -> dict[str, Any]:
    """``info`` with each stream's own ``duration`` filled in from an MP4/QuickTime header where known.

    Such a stream also gets ``duration_from_movie_start``: True when that
    duration counts from the movie's start (the track begins with an empty
    edit), False when it is a length from the stream's own start
    (``isobmff.track_timing``).
    """
    from .isobmff import track_timing

    tracks = track_timing(path)
    if not tracks:
        return info
    streams = []
    for stream in info.get("streams", ()):
        track = tracks.get(stream.get("index"))
        if stream.get("duration") is None and track is not None and track[0] == stream.get("codec_type"):
            stream = {**stream, "duration": track[1], "duration_from_movie_start": track[2]}
        streams.append(stream)
    return {**info, "streams": streams}


_MPEG_START = b"\x00\x00\x01"
# After a start code: pack header (MPEG-PS), sequence header (MPEG-1/2 video), visual object sequence
# (MPEG-4 part 2, CAVS), VC-1 sequence header; 0x00-0x2F are MPEG-4 video object (layer) starts.
_ES_STARTS = frozenset({0xBA, 0xB3, 0xB0, 0x0F, *range(0x00, 0x30)})


def looks_unindexed(path: str) -> bool:
    """True when ``path`` starts like a container without an index: MPEG-TS (also with M2TS's 4-byte
    prefix: AVCHD ``.MTS``), MPEG-PS, an MPEG or H.264/HEVC elementary stream, or RealMedia.

    For a plain media draft, whose container no probe has named: these are the files FFmpeg's input seek
    can only estimate a byte position in (a 10 s MPEG-TS poster came out 2 s late, an MPEG-PS one 0.3 s),
    so their posters seek by decoding, as a probed one does (review 30). By signature, not by file name;
    False when the file cannot be read (the job then fails on its own terms).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(400)
    except OSError:
        return False
    if len(head) >= 377 and head[0] == head[188] == head[376] == 0x47:
        return True  # MPEG-TS: a sync byte every 188 bytes
    if len(head) >= 389 and head[4] == head[196] == head[388] == 0x47:
        return True  # M2TS / AVCHD: 192-byte packets, a 4-byte time code first
    if head[:4] == b"\x00\x00\x00\x01" or head[:4] == b".RMF":
        return True  # an H.264/HEVC Annex B stream; RealMedia
    return head[:3] == _MPEG_START and len(head) > 3 and head[3] in _ES_STARTS
