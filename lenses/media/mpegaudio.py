"""MP3 files draftlens wrote (libmp3lame through FFmpeg's mp3 muxer), read in-process to verify them.

FFmpeg writes an ID3v2 tag, then a Xing/Info frame whose counts of frames
and bytes it fills in when it finishes a seekable file (with the LAME tag's
encoder delay and padding), then the audio frames (ISO/IEC 11172-3 and
13818-3, Layer III). The frames are walked header to header: they must run
back to back to the end of the file (an ID3v1 tag may close it) and match
the Info frame's counts, so a file cut anywhere after its header is caught.
The duration is the frames' samples less the delay and padding, as FFmpeg
computes it.

``read_mp3(path)`` gives the shape of ``mediainfo.parse_input_dump``; a cut,
empty or malformed file raises ``NotWhole``; a file without an Info frame
(not one FFmpeg finished) ``NotReadHere``.
"""

from __future__ import annotations

import struct
from typing import Any

from .errors import NotReadHere, NotWhole
from .wholefile import read_small

__all__ = ["read_mp3"]

_BITRATES = {1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1 Layer III, kbit/s
             2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}  # MPEG-2 and 2.5 Layer III
_RATES = (44100, 48000, 32000)
_MAX_FILE = 512 << 20


def _header(data: bytes, pos: int) -> tuple[int, int, int, int, int] | None:
    """``(frame length, sample rate, channels, samples per frame, Xing offset)`` of a Layer III header."""
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    version_bits, layer_bits = (data[pos + 1] >> 3) & 3, (data[pos + 1] >> 1) & 3
    rate_index, bitrate_index = (data[pos + 2] >> 2) & 3, data[pos + 2] >> 4
    if version_bits == 1 or layer_bits != 1 or rate_index == 3 or bitrate_index in (0, 15):
        return None
    mpeg1 = version_bits == 3
    rate = _RATES[rate_index] // (1 if mpeg1 else 2 if version_bits == 2 else 4)
    bitrate = _BITRATES[1 if mpeg1 else 2][bitrate_index] * 1000
    padding = (data[pos + 2] >> 1) & 1
    mono = data[pos + 3] >> 6 == 3
    length = (144 if mpeg1 else 72) * bitrate // rate + padding
    xing = 4 + (17 if mono else 32) if mpeg1 else 4 + (9 if mono else 17)
    return length, rate, 1 if mono else 2, 1152 if mpeg1 else 576, xing


def read_mp3(path: str) -> dict[str, Any]:
    """An MP3 file FFmpeg finished: rate, channels, duration; every frame walked; NotWhole unless whole."""
    data = read_small(path, _MAX_FILE, "an MP3 file")
    pos = 0
    if data[:3] == b"ID3":
        if len(data) < 10:
            raise NotWhole("the ID3v2 tag is cut off")
        tag = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F)
        pos = 10 + tag + (10 if data[5] & 0x10 else 0)
        if pos > len(data):
            raise NotWhole("the ID3v2 tag runs past the end of the file: the file is cut")
    first = _header(data, pos)
    if first is None:
        raise NotWhole(f"no MP3 frame header at offset {pos}, after the ID3 tag")
    length, rate, channels, per_frame, xing = first
    marker = data[pos + xing:pos + xing + 4]
    if marker not in (b"Xing", b"Info"):
        raise NotReadHere("an MP3 file without a Xing/Info frame")
    flags = struct.unpack_from(">I", data, pos + xing + 4)[0]
    if flags & 3 != 3:
        raise NotReadHere(f"an Info frame without frame and byte counts (flags {flags:#x})")
    frames, total_bytes = struct.unpack_from(">II", data, pos + xing + 8)
    lame = pos + xing + 8 + 8 + (100 if flags & 4 else 0) + (4 if flags & 8 else 0)
    delay = padding = 0
    if data[lame:lame + 4] in (b"LAME", b"Lavf", b"Lavc") and lame + 24 <= len(data):
        packed = int.from_bytes(data[lame + 21:lame + 24], "big")
        delay, padding = packed >> 12, packed & 0xFFF
    start, walked, at = pos, 0, pos + length  # the Info frame holds no audio
    end = len(data) - (128 if data[-128:-125] == b"TAG" else 0)
    while at < end:
        header = _header(data, at)
        if header is None:
            raise NotWhole(f"no MP3 frame header at offset {at}: the file is cut or damaged")
        if at + header[0] > end:
            raise NotWhole(f"the frame at offset {at} needs {header[0]} bytes, only {end - at} are left: "
                           "the file is cut")
        walked += 1
        at += header[0]
    if walked != frames or at - start != total_bytes:
        raise NotWhole(f"{walked} frames ({at - start} bytes) in the file, but its Info frame counts {frames} "
                       f"({total_bytes} bytes): the file is cut")
    samples = frames * per_frame - delay - padding
    stream = {
        "index": 0, "codec_type": "audio", "codec_name": "mp3", "width": None, "height": None,
        "frame_rate": None, "r_frame_rate": None, "sample_rate": rate, "channels": channels, "pix_fmt": None,
        "channel_layout": None, "attached_pic": False, "rotation": None, "duration": None,
    }
    return {"container": "mp3", "duration": round(samples / rate, 6) if samples > 0 else None,
            "duration_estimated": False, "start_time": None, "streams": [stream], "timecode": None}
