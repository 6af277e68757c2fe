"""The poster rule: which frame a thumbnail shows, and at what size.

**Which frame.** Times are counted on the clip's timeline, from the start of
its earliest stream (as a player counts them; FFmpeg's ``start`` in the
header dump). The video stream may start later than that (an MPEG-TS whose
audio comes first) and end earlier (an AVI or MKV whose audio runs longer):
its own *span* is ``[start, end)``, where ``start`` is the stream's first
timestamp and ``end`` its own stated end (MP4/MOV track headers, Matroska
``DURATION`` tags, which FFmpeg's muxers write as the last timestamp), else
the container's end.

- ``time_offset`` is seconds on the clip's timeline; a time before the
  video's first frame gives that first frame.
- ``time_fraction`` is a fraction of the video's span:
  ``start + fraction * (end - start)``.
- With a constant frame rate the time is moved back to half a frame before
  the start of the frame on screen then, on a grid anchored at the video's
  first frame (FFmpeg's seek returns the first frame that *starts* at or
  after the time asked, and real timestamps sit off the grid by rounding:
  half a frame either way still finds that frame), and never past the span's
  last frame.
- A stated end can still be later than the video's real last frame (the
  container's end is the audio's; headers round). So when the span's end is
  known, the poster argv holds the last frame (FFmpeg's ``tpad`` clones it)
  through the time asked: a time inside the last frame, or after it but
  before the stated end, gives that last frame, the frame a player shows
  there. Without a probe nothing is known about the end before the run: a
  time past the video's last frame writes nothing, and FFmpeg's read of the
  source in that run then says so (validation, as for a probed frame).

**What size.** A poster is a picture for people: square pixels (SAR 1:1)
with the source's *display* aspect ratio — the stored size stretched by its
sample aspect ratio (SAR), after autorotation. For a source of stored size
``W x H`` with SAR ``s`` (display width ``W * s``):

- ``same``: ``round(W * s) x H`` — the stored height, the width the display
  aspect gives (1440x1080 at SAR 4:3 gives 1920x1080; DV 720x480 at SAR 8:9
  gives 640x480); exactly ``W x H`` for square pixels, odd sizes included;
- ``half`` / ``quarter``: that display size halved / quartered, each side
  rounded down to even (``trunc(W * s / 4) * 2 x trunc(H / 4) * 2``), at
  least 2;
- a width ``N``: ``N`` wide, the height from the display aspect rounded to
  the nearest even number, at least 2 (320 of a 16:9 source gives 320x180);
- ``WxH``: exactly that box, the picture stretched to fill it.

The filter expressions below say this to FFmpeg's ``scale`` filter (its
``sar`` / ``dar`` are the input's, after autorotation), followed by
``setsar=1``; ``poster_size`` computes the same in Python, for verification.
A source with no stated SAR is taken as square, as FFmpeg does.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import attrs

from .errors import SpecError
from .mediainfo import display_size, first_stream, is_vfr

__all__ = ["VideoSpan", "video_span", "poster_time", "hold_last_for", "size_exprs", "poster_size",
           "sample_aspect"]

_EPSILON = 1e-6


def _seconds(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@attrs.frozen
class VideoSpan:
    """The video stream's span on the clip's timeline, in seconds from the clip's start.

    ``start``: where its first frame is (0 when the probe states nothing).
    ``end``: its stated end, or the container's (None if neither is known, or
    the container's is only an estimate from the bit rate). ``rough_end``:
    the same, but an estimated container duration will do (where a fraction
    lands, never a limit).
    """

    start: float
    end: float | None
    rough_end: float | None


def video_span(source: dict[str, Any]) -> VideoSpan:
    """The span of ``source``'s first video stream (a probe's payload, or a plain media draft's).

    >>> video_span({"start_time": 9.881, "duration": 10.12, "streams": [
    ...     {"codec_type": "video", "start_time": 10.0, "duration": None}]})
    VideoSpan(start=0.119, end=10.12, rough_end=10.12)
    """
    if not isinstance(source.get("streams"), list):
        return VideoSpan(0.0, None, None)
    video = first_stream(source, "video") or {}
    origin = _seconds(source.get("start_time")) or 0.0
    # FFmpeg prints a stream's start only when it is not 0: a clip that starts before 0 (an encoder's
    # priming samples) has its video start after the clip's; unknown, it starts with the clip.
    first = _seconds(video.get("start_time"))
    start = round(max(0.0, (0.0 if first is None else first) - origin), 6)
    own = _seconds(video.get("duration"))
    end = None
    from_movie_start = video.get("duration_from_movie_start")
    if own is not None and own > 0 and from_movie_start is not None:
        # MP4/MOV: the track header says whether its duration counts from the movie's start (a
        # leading empty edit) or from the track's own first frame (isobmff.track_timing).
        end = own - origin if from_movie_start else start + own
    elif own is not None and own > 0:
        # Matroska's DURATION tag states the stream's end (its last timestamp); a figure that
        # cannot be an end on this timeline is taken as a length from the video's start.
        end = own - origin if own - origin > start else start + own
    container = _seconds(source.get("duration"))
    rough = end
    if end is None and container is not None and container > start:
        rough = container
        if not source.get("duration_estimated"):
            end = container
    return VideoSpan(start, None if end is None else round(end, 6), None if rough is None else round(rough, 6))


def poster_time(spec: Any, source: dict[str, Any]) -> float:
    """The time (seconds on the clip's timeline) of the frame a ``ThumbnailSpec`` asks for.

    Raises SpecError when ``time_fraction`` is asked of a source whose
    duration is unknown, or ``time_offset`` is at or past the video's known
    end. See the module docstring for the rule.
    """
    probed = isinstance(source.get("streams"), list)
    span = video_span(source)
    name = source.get("path", "the source")
    if spec.time_offset is not None:
        when = float(spec.time_offset)
        if span.end is not None and when >= span.end:
            raise SpecError(f"{name}: time_offset {spec.time_offset} s is not before the end of the video "
                            f"({span.end} s)")
    elif span.rough_end is None and probed:
        raise SpecError(f"{name}: time_fraction needs the clip's duration, and the probe found none "
                        "(a file without a duration in its header); give time_offset in seconds")
    elif span.rough_end is None:
        raise SpecError("time_fraction needs the clip's duration: use a media.probe output as the input "
                        "(or give time_offset in seconds)")
    else:
        when = span.start + spec.time_fraction * (span.rough_end - span.start)
    video = first_stream(source, "video") if probed else None
    fps = (video or {}).get("frame_rate")
    if fps and not is_vfr(video):
        frame = math.floor((when - span.start) * fps + _EPSILON)  # the frame on screen at that time
        if span.end is not None:
            frame = min(frame, math.ceil((span.end - span.start) * fps - _EPSILON) - 1)
        # Half a frame before the frame's nominal start: FFmpeg gives the first frame that starts at or
        # after the time asked, and real timestamps sit off the grid by up to a millisecond (Matroska,
        # WebM, FLV round them to ms: 29.999 for frame 450 at 15 fps), so aiming at the start exactly
        # gave the next frame whenever a timestamp was rounded down.
        when = span.start + max(frame - 0.5, 0) / fps
    return round(max(when, span.start if probed else 0.0), 6)


def hold_last_for(source: dict[str, Any], when: float) -> float | None:
    """How long (seconds) the poster argv holds the video's last frame: None unless the span's end is known.

    Long enough to reach ``when`` from any point of the video (the time
    asked plus a second), so the last frame covers a time between the
    video's real end and its stated end.
    """
    if video_span(source).end is None:
        return None
    return round(when + 1.0, 6)


def sample_aspect(stream: dict[str, Any] | None) -> Fraction:
    """The stream's SAR as FFmpeg's filters see it (after autorotation by ±90°); 1 when unstated."""
    text = (stream or {}).get("sample_aspect_ratio")
    try:
        num, den = (int(part) for part in str(text).split(":"))
        sar = Fraction(num, den) if num > 0 and den > 0 else Fraction(1)
    except ValueError:
        sar = Fraction(1)
    rotation = (stream or {}).get("rotation")
    if rotation is not None and round(abs(rotation)) % 180 == 90:
        sar = 1 / sar  # transposing swaps a pixel's width and height
    return sar


# FFmpeg evaluates ``iw*sar`` in doubles: 1440 x 4/3 may come out a hair under 1920, which trunc()
# would take to 1919. The exact value of a width times a SAR of 16-bit terms (H.264, MPEG-2, JFIF) is
# at least 1/(8 * 65535) ~ 1.9e-6 away from the next whole (or half) number it is not on, and the
# rounding error is ~1e-12, so adding 1e-6 gives the exact rule's result.
_NUDGE = "0.000001"


def size_exprs(size: str) -> tuple[str, str]:
    """FFmpeg ``scale`` filter expressions ``(w, h)`` for a poster ``size`` (then ``setsar=1``)."""
    if size == "same":
        return f"max(1,round(iw*sar+{_NUDGE}))", "ih"
    if size == "half":
        return f"max(2,trunc(iw*sar/4+{_NUDGE})*2)", "max(2,trunc(ih/4)*2)"
    if size == "quarter":
        return f"max(2,trunc(iw*sar/8+{_NUDGE})*2)", "max(2,trunc(ih/8)*2)"
    if "x" in size:
        width, height = size.split("x")
        return width, height
    return size, f"max(2,round({size}/dar/2)*2)"


def _round(value: Fraction) -> int:
    """C's ``round`` (FFmpeg's expression evaluator): halves away from zero; ``value`` is positive."""
    return math.floor(value + Fraction(1, 2))


def poster_size(size: str, stream: dict[str, Any]) -> tuple[int, int] | None:
    """``(width, height)`` of the poster of ``stream`` (a probed video stream) at ``size``; None if unknown.

    Exact arithmetic, which FFmpeg's evaluation of ``size_exprs`` matches,
    except for a width-only size's height, which may land on the other even
    number at a near-half (verification allows two, as for proxies).

    >>> poster_size("320", {"width": 1440, "height": 1080, "sample_aspect_ratio": "4:3"})
    (320, 180)
    >>> poster_size("same", {"width": 720, "height": 480, "sample_aspect_ratio": "8:9"})
    (640, 480)
    """
    shown = display_size(stream)
    if shown is None:
        return None
    width, height = shown
    sar = sample_aspect(stream)
    wide = width * sar
    if size == "same":
        return max(1, _round(wide)), height
    if size in ("half", "quarter"):
        share = 4 if size == "half" else 8
        return max(2, math.floor(wide / share) * 2), max(2, height // share * 2)
    if "x" in size:
        w, h = size.split("x")
        return int(w), int(h)
    return int(size), max(2, _round(int(size) * height / wide / 2) * 2)
