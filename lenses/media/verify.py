"""Verification: does the written file hold what the source promised?

Exit code 0 is not success (a half-cut source makes FFmpeg exit 0 with a short
output; seed ``002_f460e4c8ce5728cf.txt``), so every written file is read
back (in-process, ``written``) and compared with the source's
own header dump, read from the job's FFmpeg run. Each output stream is compared with the source stream it came from:

- stream counts and codecs: exactly the streams the job maps;
- frame size: the size the spec's resolution gives for the source
  (after autorotation); a poster's is its display size, square pixels
  (``posters``);
- frame rate: an explicit rate, or for MXF (always constant rate) the
  source's; ``same-as-source`` elsewhere passes the source's timestamps
  through (variable rate stays variable, dropped or null frames of an AVI stay
  dropped), so its average rate is not compared — its duration is;
- audio: every mapped stream with the source's channels and sample rate (or
  the rate the spec / container fixes);
- duration: that of the source streams the output carries — each stream's
  own duration when the file states it (Matroska ``DURATION`` tags, the MP4 /
  QuickTime track headers, ``isobmff``), else the container's when the output
  carries every stream that could make it up — within one frame period (two
  for variable frame rate) plus 25 ms, and 50 ms more for audio. Shorter
  fails (truncation); longer than a stream's header says passes up to the
  container's duration (headers that undercount their samples exist). A
  duration FFmpeg only estimated from the bit rate, or one of a container
  whose header durations are known to be approximate (ASF), promises nothing. With no promise,
  the output must instead decode from start to end without an error
  (``needs_decode`` in the result; ``execute`` runs that decode), and may not
  be longer than the container says. A truncated source, whose header
  promises more than its data holds, still fails.

Each check returns ``Checked(problems, summary, needs_decode)``; no problems
means verified.
"""

from __future__ import annotations

from typing import Any

import attrs

from . import argv as _argv
from .argv import scaled_size
from .codecs import AUDIO_CODECS, IMAGE_FORMATS, PROXY_AUDIO, VIDEO_CODECS
from .mediainfo import audio_streams_with_sound, count_streams, display_size, first_stream, is_vfr
from .posters import poster_size, sample_aspect
from .specs import AudioSpec, ProxySpec, ThumbnailSpec, fps_value

__all__ = ["Checked", "check_proxy", "check_thumbnail", "check_audio", "duration_tolerance", "promised_duration"]

# Containers whose header duration FFmpeg derives from a play duration less a preroll that real
# files get wrong by up to half a second (measured on the corpus): no promise, decode instead.
APPROXIMATE_CONTAINERS = frozenset({"asf"})
_DEFAULT_FRAME = 1 / 25
_SLACK = 0.025
_AUDIO_SLACK = 0.05
_ENCODER_PADDING = 0.5


@attrs.frozen
class Checked:
    problems: tuple[str, ...]
    summary: str
    needs_decode: bool = False


def duration_tolerance(*frame_rates: float | None, frames: int = 1) -> float:
    """``frames`` frame periods of the slowest known rate (else 1/25 s) plus 25 ms."""
    known = [r for r in frame_rates if r]
    return frames * (1 / min(known) if known else _DEFAULT_FRAME) + _SLACK


def _audio_streams(info: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in info.get("streams", ()) if s.get("codec_type") == "audio"]


def _timed_streams(info: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in info.get("streams", ()) if s.get("codec_type") in ("video", "audio")
            and not s.get("attached_pic")]


def promised_duration(source: dict[str, Any], carried: list[dict[str, Any]]) -> float | None:
    """What the source promises the output's duration to be, carrying ``carried`` source streams; None if nothing.

    Each carried stream's own duration when all are known; else the
    container's (not an estimate) when the output carries every timed stream
    of the source (the container's duration is its longest stream's).
    """
    if not carried:
        return None
    own = [s.get("duration") for s in carried]
    if all(d is not None for d in own):
        return max(own)
    if source.get("duration") is None or source.get("duration_estimated") \
            or source.get("container") in APPROXIMATE_CONTAINERS:
        return None
    indexes = {s.get("index") for s in carried}
    if all(s.get("index") in indexes for s in _timed_streams(source)):
        return source["duration"]
    return None


def _check_duration(problems: list[str], source: dict, output: dict, carried: list[dict],
                    tolerance: float, short_cause: str = "") -> tuple[str, bool]:
    """``(summary, needs_decode)``; ``short_cause``: another reason an output may come out short, said with it."""
    got = output.get("duration")
    if got is None:
        problems.append("the output has no duration")
        return "duration unknown", False
    want = promised_duration(source, carried)
    ceiling = source.get("duration")
    if ceiling is None or source.get("duration_estimated") or source.get("container") in APPROXIMATE_CONTAINERS:
        ceiling = None
    # Shorter than promised is a truncated or damaged source; longer than a stream's own header
    # says is fine (headers undercount: more decoded than declared), up to the whole container.
    longest = max(v for v in (want, ceiling) if v is not None) if (want, ceiling) != (None, None) else None
    # An encoder's priming and last frame (AAC: 2048 samples, 0.26 s at 8 kHz) may add length: only a
    # clearly longer output (a wrong filter, a padded stream) is refused.
    if longest is not None and got > longest + tolerance + _ENCODER_PADDING:
        problems.append(f"duration {got:.3f} s, longer than the whole source ({longest:.3f} s)")
    if want is not None:
        if got < want - tolerance:
            problems.append(
                f"duration {got:.3f} s, but the source promises {want:.3f} s (tolerance {tolerance:.3f} s): "
                f"the source may be truncated or damaged{short_cause}"
            )
        return f"{got:.3f} s (source {want:.3f} s, ±{tolerance:.3f} s)", False
    return f"{got:.3f} s (the source states no duration for these streams: decoded in full)", True


def _check_video(problems: list[str], src_video: dict | None, out: dict, codec_name: str,
                 size: str, exact_same: bool) -> dict | None:
    if count_streams(out, "video") != 1:
        problems.append(f"expected 1 video stream, the output has {count_streams(out, 'video')}")
        return None
    video = first_stream(out, "video")
    if video["codec_name"] != codec_name:
        problems.append(f"video codec {video['codec_name']!r}, expected {codec_name!r}")
    shown = display_size(src_video) if src_video else None
    if shown is not None:
        want_w, want_h = scaled_size(size, shown[0], shown[1], exact_same)
        got = (video["width"], video["height"])
        if want_h is None:
            ratio_h = shown[1] * want_w / shown[0]
            if got[0] != want_w or got[1] is None or abs(got[1] - ratio_h) > 2:
                problems.append(f"frame size {got[0]}x{got[1]}, expected width {want_w} and height ≈ {ratio_h:.0f}")
        elif got != (want_w, want_h):
            problems.append(f"frame size {got[0]}x{got[1]}, expected {want_w}x{want_h}")
    return video


def proxy_audio_sources(spec: ProxySpec, source: dict) -> list[dict]:
    """The source audio streams a proxy carries: every one with sound, when ``spec.audio``."""
    return audio_streams_with_sound(source) if spec.audio else []


def check_proxy(spec: ProxySpec, source: dict, output: dict) -> Checked:
    problems: list[str] = []
    codec = VIDEO_CODECS[spec.codec]
    src_video = first_stream(source, "video")
    video = _check_video(problems, src_video, output, codec.codec_name, spec.resolution, exact_same=False)
    vfr = is_vfr(src_video)
    if spec.fps_mode == "explicit":
        want_fps = fps_value(spec.fps_explicit)
    elif spec.container == "mxf":  # constant rate: the source's base rate when its timing varies
        want_fps = (src_video or {}).get("r_frame_rate") if vfr else (src_video or {}).get("frame_rate")
    else:
        want_fps = None  # passthrough: the source's own timestamps, whatever their average
    got_fps = (video or {}).get("frame_rate")
    if want_fps and got_fps and abs(got_fps - want_fps) > max(0.01 * want_fps, 0.011):
        problems.append(f"frame rate {got_fps} fps, expected {want_fps:.3f} fps")
    src_audio, out_audio = proxy_audio_sources(spec, source), _audio_streams(output)
    if len(out_audio) != len(src_audio):
        problems.append(f"expected {len(src_audio)} audio stream(s), the output has {len(out_audio)}")
    else:
        _encoder, codec_name, _options, forced_rate = PROXY_AUDIO[spec.container]
        for n, (want, got) in enumerate(zip(src_audio, out_audio, strict=True)):
            rate = forced_rate or want.get("sample_rate")
            if got["codec_name"] != codec_name:
                problems.append(f"audio stream {n}: codec {got['codec_name']!r}, expected {codec_name!r}")
            if rate is not None and got["sample_rate"] != rate:
                problems.append(f"audio stream {n}: {got['sample_rate']} Hz, expected {rate} Hz")
            if want.get("channels") is not None and got["channels"] != want["channels"]:
                problems.append(f"audio stream {n}: {got['channels']} channels, expected {want['channels']}")
    # MXF pads or cuts its audio to the video (NLEs want equal lengths): the video sets the duration.
    carried = ([src_video] if src_video else []) + ([] if spec.container == "mxf" else src_audio)
    tolerance = duration_tolerance((src_video or {}).get("frame_rate"), got_fps, frames=2 if vfr else 1)
    if src_audio and spec.container != "mxf":
        tolerance += _AUDIO_SLACK
    short_cause = ""
    if spec.container == "mxf" and src_audio:
        # The muxer ends an MXF at its shortest stream: a plain draft's audio, padded a fixed
        # MXF_UNPROBED_PAD seconds (argv.py), ends it early when the video runs on longer than that.
        short_cause = (f" (or, from a plain media draft, the video runs more than {_argv.MXF_UNPROBED_PAD} s past "
                       "its audio, which is padded that long at most: feed the proxy a media.probe output)")
    timing, decode = _check_duration(problems, source, output, carried, tolerance, short_cause)
    size = f"{video['width']}x{video['height']}" if video else "no video"
    return Checked(tuple(problems), f"{codec.codec_name} {size} @ {got_fps} fps, {len(out_audio)} audio stream(s), "
                   f"{timing}", decode)


def check_thumbnail(spec: ThumbnailSpec, source: dict, output: dict) -> Checked:
    """One image of the poster size (``posters.poster_size``), with square pixels.

    Exact, but for a width-only size's height (within two, as for proxies:
    FFmpeg rounds it in floating point). The image's own pixel shape (JFIF
    density, PNG ``pHYs``), when it states one, must be 1:1.
    """
    problems: list[str] = []
    _encoder, codec_name, _pix, _options = IMAGE_FORMATS[spec.image_format]
    src_video = first_stream(source, "video")
    video = None
    if count_streams(output, "video") != 1:
        problems.append(f"expected 1 image, the output has {count_streams(output, 'video')} video stream(s)")
    else:
        video = first_stream(output, "video")
        if video["codec_name"] != codec_name:
            problems.append(f"image codec {video['codec_name']!r}, expected {codec_name!r}")
        want = poster_size(spec.size, src_video) if src_video else None
        if want is not None:
            slack = 2 if spec.size.isdigit() else 0
            got = (video["width"], video["height"])
            if got[0] != want[0] or got[1] is None or abs(got[1] - want[1]) > slack:
                problems.append(f"frame size {got[0]}x{got[1]}, expected {want[0]}x{want[1]} (display aspect, "
                                f"square pixels, source SAR {src_video.get('sample_aspect_ratio') or '1:1'})")
        if sample_aspect(video) != 1:
            problems.append(f"the image's pixels are not square (SAR {video['sample_aspect_ratio']}): "
                            "viewers would show it stretched")
    size = f"{video['width']}x{video['height']}" if video else "no image"
    return Checked(tuple(problems), f"{codec_name} {size}")


def check_audio(spec: AudioSpec, source: dict, output: dict) -> Checked:
    problems: list[str] = []
    codec = AUDIO_CODECS[spec.codec]
    with_sound = audio_streams_with_sound(source)
    src_audio = with_sound[0] if with_sound else {}
    out_audio = _audio_streams(output)
    if len(out_audio) != 1 or count_streams(output, "video"):
        kinds = [s.get("codec_type") or "unknown" for s in output.get("streams", ())]
        problems.append(f"expected 1 audio stream and nothing else, the output has {len(kinds)} stream(s)"
                        f"{': ' + ', '.join(kinds) if kinds else ''}")
    got = out_audio[0] if out_audio else {}
    if out_audio:
        rate = src_audio.get("sample_rate") if spec.sample_rate == "same" else spec.sample_rate
        channels = src_audio.get("channels") if spec.channels == "same" else spec.channels
        if got["codec_name"] != codec.codec_name:
            problems.append(f"audio codec {got['codec_name']!r}, expected {codec.codec_name!r}")
        if rate is not None and got["sample_rate"] != rate:
            problems.append(f"{got['sample_rate']} Hz, expected {rate} Hz")
        if channels is not None and got["channels"] != channels:
            problems.append(f"{got['channels']} channels, expected {channels}")
    src_video = first_stream(source, "video")
    frames = 2 if is_vfr(src_video) else 1
    tolerance = (duration_tolerance(src_video.get("frame_rate"), frames=frames) if src_video else 0) + _AUDIO_SLACK
    timing, decode = _check_duration(problems, source, output, [src_audio] if src_audio else [], tolerance)
    return Checked(tuple(problems), f"{codec.codec_name} {got.get('sample_rate')} Hz {got.get('channels')} ch, "
                   f"{timing}", decode)
