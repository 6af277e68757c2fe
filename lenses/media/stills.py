"""JPEG and PNG stills draftlens wrote (thumbnails), read in-process to verify them.

A JPEG must run from its start-of-image marker through its frame header
(SOFn: size and sampling, ITU T.81 §B.2.2) and scan to an end-of-image
marker at the very end of the file. A PNG must hold its signature, an
``IHDR`` first, chunks whose lengths and CRCs all check (zlib's CRC-32,
as PNG uses; ISO/IEC 15948 §5.3) and ``IEND`` last. A cut, empty or
malformed file raises ``NotWhole``.

Both give the shape of ``mediainfo.parse_input_dump`` for one video stream,
named as FFmpeg's image-pipe demuxers name them (``jpeg_pipe``,
``png_pipe``); a still has no duration and no frame rate. Its
``sample_aspect_ratio`` is the pixel shape the file states, read as FFmpeg's
decoders read it (JFIF ``APP0`` X:Y density; PNG ``pHYs`` X:Y pixels per
unit), None when it states none.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from .errors import NotWhole
from .wholefile import read_small

__all__ = ["read_jpeg", "read_png"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type and bit depth -> FFmpeg's pixel format (libavcodec/pngdec.c)
_PNG_FORMATS = {(2, 8): "rgb24", (6, 8): "rgba", (0, 8): "gray", (4, 8): "ya8", (2, 16): "rgb48be",
                (6, 16): "rgba64be", (0, 16): "gray16be", (3, 8): "pal8"}
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# (Y horizontal, Y vertical) sampling with chroma at 1x1 -> FFmpeg's pixel format for full-range JPEG
_JPEG_SAMPLING = {(2, 2): "yuvj420p", (2, 1): "yuvj422p", (1, 1): "yuvj444p", (1, 2): "yuvj440p"}


def _still(container: str, codec: str, width: int, height: int, pix_fmt: str | None,
           aspect: tuple[int, int] | None = None) -> dict[str, Any]:
    stream = {
        "index": 0, "codec_type": "video", "codec_name": codec, "width": width, "height": height,
        "frame_rate": None, "r_frame_rate": None, "sample_rate": None, "channels": None, "pix_fmt": pix_fmt,
        "channel_layout": None, "attached_pic": False, "rotation": None, "duration": None,
        "sample_aspect_ratio": f"{aspect[0]}:{aspect[1]}" if aspect and aspect[0] > 0 and aspect[1] > 0 else None,
    }
    return {"container": container, "duration": None, "duration_estimated": False, "start_time": None,
            "streams": [stream], "timecode": None}


def _read(path: str, limit: int = 256 << 20) -> bytes:
    return read_small(path, limit, "a still")


def read_jpeg(path: str) -> dict[str, Any]:
    """One JPEG image: its size and sampling from the frame header; NotWhole unless whole."""
    data = _read(path)
    if data[:2] != b"\xff\xd8":
        raise NotWhole("no start-of-image marker (FFD8): not a JPEG file")
    if data[-2:] != b"\xff\xd9":
        raise NotWhole("no end-of-image marker (FFD9) at the end: the file is cut")
    pos, frame, aspect = 2, None, None
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise NotWhole(f"expected a marker at offset {pos}, found byte {data[pos]:#04x}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = struct.unpack_from(">H", data, pos + 2)[0]
        if length < 2 or pos + 2 + length > len(data):
            raise NotWhole(f"segment {marker:#04x} at offset {pos} runs past the end of the file: the file is cut")
        if marker == 0xE0 and length >= 14 and data[pos + 4:pos + 9] == b"JFIF\x00" and aspect is None:
            aspect = struct.unpack_from(">HH", data, pos + 12)  # X density, Y density (after version, units)
        if marker in _SOF:
            precision, height, width, count = struct.unpack_from(">BHHB", data, pos + 4)
            components = [data[pos + 10 + 3 * n:pos + 13 + 3 * n] for n in range(count)]
            frame = (width, height, count, components)
        if marker == 0xDA:  # start of scan: entropy-coded data follows, up to the end-of-image marker
            break
        pos += 2 + length
    if frame is None:
        raise NotWhole("no frame header (SOFn) before the scan")
    width, height, count, components = frame
    if not width or not height:
        raise NotWhole(f"frame header gives a {width}x{height} image")
    pix_fmt = "gray" if count == 1 else None
    if count == 3 and len(components[0]) == 3 and all(c[1] == 0x11 for c in components[1:]):
        pix_fmt = _JPEG_SAMPLING.get((components[0][1] >> 4, components[0][1] & 0xF))
    return _still("jpeg_pipe", "mjpeg", width, height, pix_fmt, aspect)


def read_png(path: str) -> dict[str, Any]:
    """One PNG image: size and pixel format from ``IHDR``; every chunk's CRC checked; NotWhole unless whole."""
    data = _read(path)
    if data[:8] != _PNG_SIGNATURE:
        raise NotWhole("no PNG signature: not a PNG file")
    pos, header, last, aspect = 8, None, None, None
    while pos < len(data):
        if pos + 12 > len(data):
            raise NotWhole(f"a chunk header at offset {pos} is cut off")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise NotWhole(f"chunk {kind.decode('latin-1')!r} at offset {pos} declares {length} bytes, but only "
                           f"{len(data) - pos - 12} are left: the file is cut")
        crc = struct.unpack_from(">I", data, end - 4)[0]
        if zlib.crc32(data[pos + 4:end - 4]) != crc:
            raise NotWhole(f"chunk {kind.decode('latin-1')!r} at offset {pos} fails its CRC: the file is damaged")
        if header is None:
            if kind != b"IHDR" or length < 13:
                raise NotWhole("the first chunk is not IHDR")
            header = struct.unpack_from(">IIBB", data, pos + 8)
        if kind == b"pHYs" and length == 9:
            aspect = struct.unpack_from(">II", data, pos + 8)  # pixels per unit, X and Y
        last = kind
        pos = end
        if kind == b"IEND":
            break
    if last != b"IEND":
        raise NotWhole("no IEND chunk at the end: the file is cut")
    if pos != len(data):
        raise NotWhole(f"{len(data) - pos} byte(s) after the IEND chunk")
    width, height, depth, colour = header
    return _still("png_pipe", "png", width, height, _PNG_FORMATS.get((colour, depth)), aspect)
