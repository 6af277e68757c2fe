"""What a job's output file holds, read in-process: the verification read, with no second FFmpeg.

Exit code 0 is not success (seed ``002_f460e4c8ce5728cf.txt``), so every
written file is read back before it is published and compared with what the
source promised (``verify``). Starting the FFmpeg binary again only to read
the header it has just written cost 15-22 ms a clip, 80-90 % of a media
job's overhead (benchmarks/README.md); the containers and images draftlens
writes are read here instead, by small readers of their headers:

- MOV / MP4 / M4A (``isobmff.read_movie``): the boxes tile the file, every
  chunk of the sample tables lies inside ``mdat``;
- Matroska / WebM / MKA (``matroska.read_matroska``): the Segment's size,
  filled in when FFmpeg finishes the file, matches the file;
- JPEG / PNG (``stills``): start to end-of-image marker; every PNG chunk's
  CRC;
- WAV (``riff.read_wav``): the RIFF and data sizes, written at the end,
  match the file;
- FLAC and Ogg Opus/Vorbis (``xiph``): STREAMINFO's sample count against the
  last frame (CRC-16 checked); Ogg pages tiling the file to an end-of-stream
  page whose CRC checks;
- MP3 (``mpegaudio.read_mp3``): every frame walked, matching the counts of
  the Info frame FFmpeg fills in at the end;
- MXF OP1a (``mxf.read_mxf``): KLVs tiling the file from a closed header
  partition to the footer it names and the Random Index Pack.

A file cut, empty or malformed raises ``NotWhole`` — a ``verification``
failure, as a file that did not probe was before. Each reader gives the
shape of ``mediainfo.parse_input_dump``; the container duration is rounded
to the centisecond as FFmpeg's dump prints it, so a payload means what it
meant when FFmpeg read it. Two stream fields a container header does not
state plainly come from FFmpeg's own ``Output #0`` dump of the same run (how
it set up the encoders): ``pix_fmt`` of a video stream and
``channel_layout`` of an audio stream, when the file agrees on the stream's
kind and channel count.

**The deliberate fallback**: a file a reader declines (``NotReadHere``: a
fragmented movie, a rotated track, a drop-frame timecode, a codec tag or
descriptor it does not map, an Ogg file with two streams, MXF with several
source packages) is read by FFmpeg as before (``argv.header_argv``, one
process), and the job's message says so ("read by FFmpeg: <why>"). Every
format draftlens writes has a reader (``READERS``); nothing is retried: a
file that is not whole fails here and never reaches FFmpeg.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import NotReadHere, NotWhole
from .isobmff import read_movie
from .matroska import read_matroska
from .mediainfo import CHANNEL_LAYOUTS, parse_output_dump
from .mpegaudio import read_mp3
from .mxf import read_mxf
from .riff import read_wav
from .stills import read_jpeg, read_png
from .xiph import read_flac, read_ogg

__all__ = ["READERS", "read_written", "output_format", "as_dumped"]

# (job kind, container or image format) -> the in-process reader of that output
READERS: dict[tuple[str, str], Callable[[str], dict[str, Any]]] = {
    ("proxy", "mov"): read_movie, ("proxy", "mp4"): read_movie,
    ("proxy", "mkv"): read_matroska, ("proxy", "webm"): read_matroska, ("proxy", "mxf"): read_mxf,
    ("thumbnail", "jpg"): read_jpeg, ("thumbnail", "png"): read_png,
    ("audio", "wav"): read_wav, ("audio", "m4a"): read_movie,
    ("audio", "mka"): read_matroska, ("audio", "webm"): read_matroska,
    ("audio", "flac"): read_flac, ("audio", "ogg"): read_ogg, ("audio", "mp3"): read_mp3,
}


def output_format(kind: str, spec: Any) -> tuple[str, str]:
    """``(job kind, container or image format)`` of a job's output."""
    return kind, spec.image_format if kind == "thumbnail" else spec.container


def as_dumped(seconds: float | None) -> float | None:
    """A duration as FFmpeg's dump prints it: microseconds, then to the nearest centisecond (half up)."""
    if seconds is None:
        return None
    micro = round(seconds * 1_000_000) + 5000
    return (micro // 10_000) / 100


def _with_encoder_fields(info: dict[str, Any], stderr: str) -> dict[str, Any]:
    dumped = parse_output_dump(stderr) or []
    streams = []
    for stream in info["streams"]:
        said = dumped[stream["index"]] if stream["index"] < len(dumped) else None
        if said is not None and said["codec_type"] == stream["codec_type"]:
            if stream["codec_type"] == "video" and stream["pix_fmt"] is None:
                stream = {**stream, "pix_fmt": said["pix_fmt"]}
            layout = said["channel_layout"]
            if stream["codec_type"] == "audio" and layout is not None \
                    and CHANNEL_LAYOUTS.get(layout, said["channels"]) == stream["channels"]:
                stream = {**stream, "channel_layout": layout}
        streams.append(stream)
    return {**info, "duration": as_dumped(info["duration"]), "streams": streams}


def read_written(kind: str, spec: Any, path: str, stderr: str) -> tuple[dict[str, Any] | None, str | None]:
    """``(info, None)``: what the output at ``path`` holds; ``(None, why)`` when FFmpeg is to read it.

    ``why`` names the fallback case (what a reader declined: ``NotReadHere``),
    and the job's message shows it. ``stderr``:
    the job's own FFmpeg stderr (for its ``Output #0`` dump). Raises NotWhole
    when the file is cut, empty or malformed.
    """
    fmt = output_format(kind, spec)
    reader = READERS.get(fmt)
    if reader is None:  # a format added to the codecs table without a reader: still verified, by FFmpeg
        return None, f"read by FFmpeg: no reader for {fmt[1]} outputs"
    try:
        info = reader(path)
    except NotReadHere as exc:
        return None, f"read by FFmpeg: {exc}"
    except OSError as exc:
        raise NotWhole(f"cannot be read back ({exc.strerror or exc})") from None
    return _with_encoder_fields(info, stderr), None
