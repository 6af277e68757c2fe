"""Argv building: a pure function of (spec, engine, source). The only
module that imports ffmpeg-python (lazily: it costs ~50 ms to import).

Every argv:

- is a list (never a shell string), starting with the engine's absolute path;
- names files as ``file:<absolute path>``, so a leading ``-`` is not read as
  an option and a ``:`` not as a protocol;
- has ``-nostdin`` and writes only to its standard output, ``-fd 1 fd:``:
  the job hands FFmpeg the temporary file it created exclusively
  (``drafts.files``), so FFmpeg never opens an output path itself (a link
  planted at a temporary name is never written through), and the argv is the
  same whatever the temporary file is called. ``fd:`` is seekable on a
  regular file, so MOV/MP4/MXF headers are written as usual;
- asks for bit-exact output: ``-fflags +bitexact``, ``-flags:v/a +bitexact``,
  scaling with ``accurate_rnd+full_chroma_int+bitexact`` in an explicit
  ``scale`` filter (which also does the pixel-format conversion), and pinned
  thread counts (``-threads``, ``-filter_complex_threads``, x265 pools).

ffmpeg-python writes keyword options in alphabetical order and global
options after the outputs; FFmpeg reads both the same way, and the order is
fixed, so equal inputs always give equal argv.
"""

from __future__ import annotations

import functools
from typing import Any

from .codecs import (
    AUDIO_CODECS,
    AUDIO_CONTAINERS,
    IMAGE_FORMATS,
    PROXY_AUDIO,
    PROXY_AUDIO_FILTERS,
    PROXY_CONTAINERS,
    VIDEO_CODECS,
)
from .posters import size_exprs as poster_size_exprs
from .specs import AudioSpec, ProxySpec, ThumbnailSpec

__all__ = ["proxy_argv", "thumbnail_argv", "audio_argv", "probe_argv", "header_argv", "SWS_FLAGS", "GLOBAL_ARGS",
           "scaled_size", "OUTPUT_TARGET", "decode_argv", "UNINDEXED_CONTAINERS", "MXF_AUDIO_MARGIN",
           "MXF_UNPROBED_PAD"]

# Silence added after an MXF proxy's audio, in seconds; the muxer drops it with everything else past the
# video's last frame (argv._mxf_padded). With a probed source the audio is first padded to the video's end,
# so the margin only needs to exceed a frame (1/23.976 s); a plain media draft's audio gets the fixed pad,
# so its video may run up to that much longer than its audio.
MXF_AUDIO_MARGIN = "0.1"
MXF_UNPROBED_PAD = "30"
_MXF_AUDIO_START = "aresample=async=1:first_pts=0"  # PCM in MXF has no timestamps: a late start becomes silence
OUTPUT_TARGET = "fd:"  # with -fd 1: the job's own temporary file, given to FFmpeg as its stdout
SWS_FLAGS = "bicubic+accurate_rnd+full_chroma_int+bitexact"
GLOBAL_ARGS = ("-hide_banner", "-nostdin", "-nostats")
_SCALE = {
    "same": ("trunc(iw/2)*2", "trunc(ih/2)*2"),
    "half": ("trunc(iw/4)*2", "trunc(ih/4)*2"),
    "quarter": ("trunc(iw/8)*2", "trunc(ih/8)*2"),
}


@functools.cache
def _ffmpeg():
    import ffmpeg

    return ffmpeg


def _file(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"media paths must be absolute, got {path!r}")
    return "file:" + path


def _scale_exprs(size: str, exact_same: bool) -> tuple[str, str]:
    if size == "same" and exact_same:
        return "iw", "ih"
    if size in _SCALE:
        return _SCALE[size]
    if "x" in size:
        width, height = size.split("x")
        return width, height
    return size, "-2"  # a width: the height follows the aspect ratio, rounded to even


def scaled_size(size: str, width: int, height: int, exact_same: bool = False) -> tuple[int, int | None]:
    """The frame size a ``resolution``/``size`` gives for a ``width x height`` source.

    The height of a width-only size is None (FFmpeg rounds it; checked to ±2).
    """
    if size == "same":
        return (width, height) if exact_same else (width // 2 * 2, height // 2 * 2)
    if size == "half":
        return width // 4 * 2, height // 4 * 2
    if size == "quarter":
        return width // 8 * 2, height // 8 * 2
    if "x" in size:
        w, h = size.split("x")
        return int(w), int(h)
    return int(size), None


def _video_chain(stream: Any, size: str, pix_fmt: str, exact_same: bool, fps: str | None = None) -> Any:
    if fps is not None:
        # The fps filter, not -r: it keeps the duration (-r with cfr pads the end by up to two frames).
        stream = stream.filter("fps", fps=fps)
    width, height = _scale_exprs(size, exact_same)
    return stream.filter("scale", w=width, h=height, flags=SWS_FLAGS).filter("format", pix_fmt)


def _fps_text(value: int | float | str) -> str:
    return value if isinstance(value, str) else repr(value)


def _audio_inputs(inp: Any, audio_streams: tuple[int, ...] | None, default: str) -> list[Any]:
    """The audio streams to map: those a probe found carrying sound, else ``default`` (``a?``, ``a:0``)."""
    if audio_streams is None:
        return [inp[default]]
    return [inp[str(index)] for index in audio_streams]


def _memoised(build):
    """A pure argv builder, remembered: the plan is made twice per job (``describe``, then the run).

    Keyed on the spec's canonical JSON, not on ``==`` (``fps_explicit=25``
    and ``25.0`` are equal specs but write different argv); each call gets
    its own list.
    """
    remembered: dict[tuple, tuple[str, ...]] = {}

    @functools.wraps(build)
    def argv(spec, *args, **kwargs):
        key = (type(spec), spec.to_json(), args, tuple(sorted(kwargs.items())))
        found = remembered.get(key)
        if found is None:
            if len(remembered) >= 4096:
                remembered.clear()
            found = remembered[key] = tuple(build(spec, *args, **kwargs))
        return list(found)

    return argv


def _mxf_padded(ff: Any, video: Any, inp: Any, audio_streams: tuple[int, ...]) -> list[Any]:
    """The video and the given audio streams of an MXF proxy, each audio stream at least as long as the video.

    Why: MXF stores PCM without timestamps, and its muxer writes whole edit
    units only (a video frame with its audio), ending the file at the
    shorter of the two. So every audio stream starts at 0 (``aresample``
    with ``first_pts=0`` pads a late start with silence) and is made to
    reach past the video's end; the muxer then drops the surplus, and the
    file ends with the video's last frame.

    How: a ``concat`` of two segments, the clip itself and an empty one
    (every frame dropped by ``select=0``/``aselect=0``). Concat pads each
    audio stream of a segment that is not the last with silence to the end
    of the segment's longest stream, so audio that ends early is padded to
    the end of the video's last frame, whatever the lengths; ``apad`` adds
    ``MXF_AUDIO_MARGIN`` seconds more, so no rounding of the resampler leaves
    it a few samples short. Every step is a function of the streams'
    timestamps, so the cut is the same in every run. ``-shortest`` is not
    used: where it cuts depends on how far the padded audio ran ahead of the
    video encoder (FFmpeg's ``-shortest_buf_duration`` buffer), which varies
    from run to run (``DETERMINISM.md``).

    The graph names each audio stream, so the source must have been probed;
    a plain media draft gets ``_MXF_AUDIO_START`` and a fixed
    ``MXF_UNPROBED_PAD`` per stream instead (``-af``, ``-map 0:a?``).
    """
    video_parts = video.split()
    audio_parts = [inp[str(index)].filter("aresample", **{"async": 1, "first_pts": 0}).asplit()  # _MXF_AUDIO_START
                   for index in audio_streams]
    joined = ff.concat(video_parts[0], *(part[0] for part in audio_parts),
                       video_parts[1].filter("select", "0"), *(part[1].filter("aselect", "0") for part in audio_parts),
                       v=1, a=len(audio_streams)).node
    return [joined[0], *(joined[k + 1].filter("apad", pad_dur=MXF_AUDIO_MARGIN) for k in range(len(audio_streams)))]


@_memoised
def proxy_argv(spec: ProxySpec, engine_path: str, source: str,
               audio_streams: tuple[int, ...] | None = None) -> list[str]:
    """``ffmpeg ... -i file:<source> ... -fd 1 fd:`` for a proxy.

    ``audio_streams``: the source's stream indexes that carry sound, when a
    probe of the source says so (an empty track listed by an MPEG-TS program
    map is then left out); None maps every audio stream (``0:a?``).
    """
    ff = _ffmpeg()
    codec = VIDEO_CODECS[spec.codec]
    inp = ff.input(_file(source))
    fps = _fps_text(spec.fps_explicit) if spec.fps_mode == "explicit" else None
    streams = [_video_chain(inp["V:0"], spec.resolution, codec.pix_fmt, exact_same=False, fps=fps)]
    kw: dict[str, Any] = {
        "f": PROXY_CONTAINERS[spec.container].muxer,
        "c:v": codec.encoder,
        **dict(codec.options),
        "fflags": "+bitexact",
        "flags:v": "+bitexact",
        "threads": spec.threads,
        # The video comes out of a filter graph, so FFmpeg would not copy its
        # stream metadata (timecode, reel name): copy it, for NLE relinking.
        "map_metadata:s:v:0": "0:s:V:0",
    }
    if codec.encoder == "libx265":
        kw["x265-params"] = f"log-level=error:pools={spec.threads}:frame-threads={spec.threads}"
    if codec.mov_tag and spec.container in ("mov", "mp4"):
        kw["tag:v"] = codec.mov_tag
    # same-as-source keeps the source's timestamps, except in MXF (constant rate only)
    kw["fps_mode"] = "cfr" if spec.fps_mode == "explicit" or spec.container == "mxf" else "passthrough"
    if spec.audio and audio_streams != ():
        encoder, _name, options, rate = PROXY_AUDIO[spec.container]
        kw.update({"c:a": encoder, "flags:a": "+bitexact", **dict(options)})
        if rate is not None:
            kw["ar"] = rate
        if spec.container != "mxf":  # each stream keeps its own length
            streams.extend(_audio_inputs(inp, audio_streams, "a?"))
            if spec.container in PROXY_AUDIO_FILTERS:
                kw["af"] = PROXY_AUDIO_FILTERS[spec.container]
        elif audio_streams is not None:  # MXF ends with the video: see _mxf_padded
            streams = _mxf_padded(ff, streams[0], inp, audio_streams)
        else:  # a plain draft: every audio stream, if any, with a fixed pad
            streams.extend(_audio_inputs(inp, None, "a?"))
            kw["af"] = f"{_MXF_AUDIO_START},apad=pad_dur={MXF_UNPROBED_PAD}"
    out = ff.output(*streams, OUTPUT_TARGET, fd=1, **kw)
    out = out.global_args(*GLOBAL_ARGS, "-filter_complex_threads", str(spec.threads))
    return out.compile(cmd=engine_path)


# Containers without an index, where FFmpeg's input seek estimates a byte position and can land
# past the frame asked for (MPEG-TS/PS, elementary streams): their posters seek by decoding. RealMedia
# too: its index seek fails near the end (a 60 s corpus clip wrote nothing at 59.6 s).
UNINDEXED_CONTAINERS = frozenset({"mpegts", "mpeg", "mpegvideo", "h264", "hevc", "m4v", "cavsvideo", "vc1", "rm"})


@_memoised
def thumbnail_argv(spec: ThumbnailSpec, engine_path: str, source: str, offset: float,
                   seek_by_decoding: bool = False, hold_last: float | None = None) -> list[str]:
    """One frame at ``offset`` seconds, at the poster size (``posters``), square pixels, as jpg/png.

    An input seek (fast, frame-accurate) where the container has an index;
    ``seek_by_decoding`` for containers without one, where an input seek may
    overshoot: everything is decoded and frames before ``offset`` dropped.
    ``hold_last`` (seconds, or None): hold the video's last frame that long
    past its end (``tpad``), so a time after the last frame starts but before
    the end the probe states gives that last frame. The input seek then lands
    on the keyframe before ``offset`` without dropping anything
    (``-noaccurate_seek``) and ``trim`` drops the frames before ``offset``
    after the padding, so a seek past the video's real end still finds the
    held frame. ``-max_error_rate 1``: a poster is
    judged by verification, not by how many broken packets of a damaged
    source the decoder met before the one frame came out (that count varies
    from run to run with thread timing, so FFmpeg's exit code would too).
    """
    ff = _ffmpeg()
    encoder, _name, pix_fmt, options = IMAGE_FORMATS[spec.image_format]
    at = f"{offset:.6f}"
    if seek_by_decoding:
        inp = ff.input(_file(source))
    elif hold_last is not None:
        inp = ff.input(_file(source), ss=at, noaccurate_seek=None)
    else:
        inp = ff.input(_file(source), ss=at)
    video = inp["V:0"]
    if hold_last is not None:
        video = video.filter("tpad", stop_mode="clone", stop_duration=f"{hold_last:.6f}")
        video = video.filter("trim", start=at if seek_by_decoding else "0")
    width, height = poster_size_exprs(spec.size)
    video = (video.filter("scale", w=width, h=height, flags=SWS_FLAGS).filter("setsar", "1")
             .filter("format", pix_fmt))
    kw = {
        # image2pipe: one image to one file descriptor (image2 opens paths itself)
        "f": "image2pipe", "c:v": encoder, **dict(options), "frames:v": 1,
        "fflags": "+bitexact", "flags:v": "+bitexact", "threads": 1,
    }
    if seek_by_decoding and hold_last is None:
        kw["ss"] = at
    out = ff.output(video, OUTPUT_TARGET, fd=1, **kw).global_args(
        *GLOBAL_ARGS, "-filter_complex_threads", "1", "-max_error_rate", "1")
    return out.compile(cmd=engine_path)


FLAC_HEADER_MAX_RATE = 655_350
"""The highest sample rate (Hz) a FLAC frame header can name (in tens of Hz; RFC 9639 9.1.2)."""
FLAC_HIGH_RATE_BLOCK = 32_768
"""FLAC block size (samples) above ``FLAC_HEADER_MAX_RATE``: FFmpeg's own choice for such rates (105 ms,
rounded down to its table), given explicitly since its CLI otherwise asks the encoder for 65536, which it
refuses ("invalid block size: 65536", measured with a 705.6 kHz 24-bit WAV)."""


@_memoised
def audio_argv(spec: AudioSpec, engine_path: str, source: str, audio_streams: tuple[int, ...] | None = None,
               source_rate: int | None = None) -> list[str]:
    """The first audio stream of ``source`` (with sound, when probed), encoded as the spec says.

    ``source_rate``: that stream's sample rate in Hz, when a probe says.
    """
    ff = _ffmpeg()
    codec = AUDIO_CODECS[spec.codec]
    inp = ff.input(_file(source))
    kw: dict[str, Any] = {
        "f": AUDIO_CONTAINERS[spec.container].muxer,
        "c:a": codec.encoder, **dict(codec.options),
        "fflags": "+bitexact", "flags:a": "+bitexact", "threads": 1,
    }
    if spec.codec == "flac" and spec.sample_rate == "same" and source_rate and source_rate > FLAC_HEADER_MAX_RATE:
        kw["frame_size"] = FLAC_HIGH_RATE_BLOCK
    if spec.sample_rate != "same":
        kw["ar"] = spec.sample_rate
    if spec.channels != "same":
        kw["ac"] = spec.channels
    first = _audio_inputs(inp, audio_streams[:1] if audio_streams else None, "a:0")
    out = ff.output(*first, OUTPUT_TARGET, fd=1, **kw).global_args(*GLOBAL_ARGS)
    return out.compile(cmd=engine_path)


def probe_argv(engine_path: str, path: str) -> list[str]:
    """Open ``path`` as input #0 and print its header dump; exit 0 iff it opens.

    The zero-frame dummy output (a lavfi null source) makes the run valid
    whatever streams the file holds. Written out by hand: ffmpeg-python drops
    an input that feeds no output.
    """
    return [
        engine_path, *GLOBAL_ARGS, "-i", _file(path),
        "-f", "lavfi", "-i", "nullsrc=s=2x2:d=0", "-map", "1:v", "-c:v", "rawvideo", "-f", "null", "-",
    ]


def header_argv(engine_path: str, path: str) -> list[str]:
    """The cheapest header read (no output: FFmpeg exits 1 after printing the dump).

    Used to verify a job's own output that no in-process reader reads (a
    file a reader declines: ``written``), where only the dump matters; 2-3 ms cheaper than ``probe_argv``, whose exit code is
    meaningful.
    """
    return [engine_path, *GLOBAL_ARGS, "-i", _file(path)]


def decode_argv(engine_path: str, path: str) -> list[str]:
    """Decode every stream of ``path`` to nothing; any error is printed (``-v error``) and fails it.

    The check of an output whose source promised no duration for the streams
    it carries: it must at least be whole and decodable from start to end.
    """
    return [engine_path, *GLOBAL_ARGS, "-v", "error", "-xerror", "-i", _file(path), "-map", "0", "-f", "null", "-"]
