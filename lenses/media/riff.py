"""WAV files draftlens wrote, read in-process to verify them.

RIFF/WAVE (Microsoft's multimedia file format, 1991; WAVE_FORMAT_EXTENSIBLE
for more than two channels): the ``RIFF`` size must cover the file exactly,
``fmt `` gives the format, rate and channels, and the ``data`` chunk's size,
which FFmpeg writes when it finishes the file, gives the duration — so a file
cut after its header no longer matches. An empty ``data`` chunk gives no
duration at all. A cut, empty or malformed file raises
``NotWhole``; a sample format other than 16/24-bit integer PCM ``NotReadHere``.
"""

from __future__ import annotations

import struct
from typing import Any

from .errors import NotReadHere, NotWhole
from .wholefile import size_of

__all__ = ["read_wav"]

_PCM, _EXTENSIBLE = 0x0001, 0xFFFE


def read_wav(path: str) -> dict[str, Any]:
    """``{"container": "wav", "duration", ..., "streams": [one audio stream]}``; NotWhole unless whole."""
    with open(path, "rb") as fh:
        size = size_of(fh)
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise NotWhole("no RIFF/WAVE header: not a WAV file")
        declared = struct.unpack_from("<I", head, 4)[0] + 8
        if declared != size:
            raise NotWhole(f"the RIFF header declares {declared} bytes, but the file holds {size}: "
                           "the file is cut or was never finished")
        pos, fmt, data_size = 12, None, None
        while pos + 8 <= size:
            fh.seek(pos)
            kind, length = struct.unpack("<4sI", fh.read(8))
            if pos + 8 + length > size:
                raise NotWhole(f"chunk {kind.decode('latin-1')!r} at offset {pos} declares {length} bytes, but only "
                               f"{size - pos - 8} are left: the file is cut")
            if kind == b"fmt ":
                fmt = fh.read(min(length, 40))
            elif kind == b"data":
                data_size = length
            pos += 8 + length + (length & 1)
    if fmt is None or len(fmt) < 16 or data_size is None:
        raise NotWhole("no fmt or data chunk")
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]  # the sub-format GUID starts with the format tag
    if tag != _PCM or bits not in (16, 24):
        raise NotReadHere(f"WAV format tag {tag:#06x} with {bits} bits")
    if not rate or not block_align or block_align != channels * bits // 8:
        raise NotWhole(f"the fmt chunk is inconsistent ({channels} channels, {bits} bits, block {block_align})")
    if data_size % block_align:
        raise NotWhole(f"the data chunk holds {data_size} bytes, not a whole number of {block_align}-byte frames")
    stream = {
        "index": 0, "codec_type": "audio", "codec_name": f"pcm_s{bits}le", "width": None, "height": None,
        "frame_rate": None, "r_frame_rate": None, "sample_rate": rate, "channels": channels, "pix_fmt": None,
        "channel_layout": None, "attached_pic": False, "rotation": None,
        # no samples, no duration (as FFmpeg's "Duration: N/A"): verification says the output has none
        "duration": round(data_size / block_align / rate, 6) if data_size else None,
    }
    return {"container": "wav", "duration": stream["duration"], "duration_estimated": False, "start_time": None,
            "streams": [stream], "timecode": None}
