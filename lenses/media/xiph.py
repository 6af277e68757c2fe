"""FLAC and Ogg (Opus, Vorbis) files draftlens wrote, read in-process to verify them.

FLAC (RFC 9639): ``STREAMINFO`` gives the sample rate, channels and the total
sample count, which FFmpeg fills in when it finishes a seekable file. The file
must end with a whole frame: the last frame header is found from the end
(sync code, CRC-8; a false sync inside frame data is passed over), its CRC-16
must check over the bytes up to the end of the file, and its first sample plus its block size must be the total — so a file
cut anywhere in its frames, or just after one, is caught.

Ogg (RFC 3533) with one Opus (RFC 7845) or Vorbis I stream: the page
headers must tile the file, the first page begins the stream, the last page
ends it (EOS) and its CRC checks. The identification header gives the codec,
rate and channels; the last page's granule position the duration (less
Opus's pre-skip).

Both give the shape of ``mediainfo.parse_input_dump``; a cut, empty or
malformed file raises ``NotWhole``, what is left to FFmpeg ``NotReadHere``.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from .errors import NotReadHere, NotWhole
from .wholefile import size_of

__all__ = ["read_flac", "read_ogg"]

_MAX_TAIL = 1 << 20  # the last FLAC frame is looked for in the last MiB (a frame is at most 16 MiB, ours far less)
_CANDIDATES = 8  # frame headers tried from the end before the file is called cut


def _crc_table(poly: int, width: int) -> list[int]:
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & mask if crc & top else (crc << 1) & mask
        table.append(crc)
    return table


_CRC8 = _crc_table(0x07, 8)
_CRC16 = _crc_table(0x8005, 16)
_CRC32 = _crc_table(0x04C11DB7, 32)


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    table = _CRC16
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


def _crc32(data: bytes) -> int:
    crc = 0
    table = _CRC32
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


def _audio(container: str, codec: str, rate: int, channels: int, duration: float | None,
           start: float | None) -> dict[str, Any]:
    stream = {
        "index": 0, "codec_type": "audio", "codec_name": codec, "width": None, "height": None,
        "frame_rate": None, "r_frame_rate": None, "sample_rate": rate, "channels": channels, "pix_fmt": None,
        "channel_layout": None, "attached_pic": False, "rotation": None, "duration": None,
    }
    return {"container": container, "duration": duration, "duration_estimated": False, "start_time": start,
            "streams": [stream], "timecode": None}


# --- FLAC ---------------------------------------------------------------------------------------


def _utf8_number(data: bytes, pos: int) -> tuple[int, int] | None:
    """FLAC's UTF-8-like coded frame/sample number at ``pos``: ``(value, length)``."""
    first = data[pos]
    if first < 0x80:
        return first, 1
    length = 0
    while length < 8 and first & (0x80 >> length):
        length += 1
    if length < 2 or length > 7 or pos + length > len(data):
        return None
    value = first & (0x7F >> length)
    for byte in data[pos + 1:pos + length]:
        if byte & 0xC0 != 0x80:
            return None
        value = (value << 6) | (byte & 0x3F)
    return value, length


def _frame_header(data: bytes, pos: int) -> tuple[bool, int, int] | None:
    """``(variable block size, frame or sample number, block size)`` of a frame header at ``pos``, or None."""
    if pos + 6 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xFE != 0xF8:
        return None
    variable = bool(data[pos + 1] & 1)
    size_code, rate_code = data[pos + 2] >> 4, data[pos + 2] & 0xF
    if size_code == 0 or rate_code == 0xF or data[pos + 3] & 1:
        return None
    number = _utf8_number(data, pos + 4)
    if number is None:
        return None
    at = pos + 4 + number[1]
    if size_code == 6:
        block, at = data[at] + 1 if at < len(data) else None, at + 1
    elif size_code == 7:
        block, at = (struct.unpack_from(">H", data, at)[0] + 1 if at + 2 <= len(data) else None), at + 2
    elif size_code == 1:
        block = 192
    elif size_code <= 5:
        block = 576 << (size_code - 2)
    else:
        block = 256 << (size_code - 8)
    at += {12: 1, 13: 2, 14: 2}.get(rate_code, 0)
    if block is None or at >= len(data) or _crc8(data[pos:at]) != data[at]:
        return None
    return variable, number[0], block


def read_flac(path: str) -> dict[str, Any]:
    """A native FLAC file: rate, channels and duration from STREAMINFO, checked against its last frame."""
    with open(path, "rb") as fh:
        size = size_of(fh)
        if fh.read(4) != b"fLaC":
            raise NotWhole("no fLaC marker: not a FLAC file")
        pos, info, last = 4, None, False
        while not last:
            head = fh.read(4)
            if len(head) < 4:
                raise NotWhole(f"a metadata block header at offset {pos} is cut off")
            last, kind, length = bool(head[0] & 0x80), head[0] & 0x7F, int.from_bytes(head[1:4], "big")
            if pos + 4 + length > size:
                raise NotWhole(f"metadata block {kind} at offset {pos} runs past the end of the file: the file is cut")
            body = fh.read(length) if kind == 0 else fh.seek(length, os.SEEK_CUR) and b""
            if kind == 0:
                info = body
            pos += 4 + length
        if info is None or len(info) < 34:
            raise NotWhole("no STREAMINFO block")
        frames_start = pos
        tail_from = max(frames_start, size - _MAX_TAIL)
        fh.seek(tail_from)
        tail = fh.read()
    min_block, max_block = struct.unpack_from(">HH", info)
    max_frame = int.from_bytes(info[7:10], "big")  # 0: unknown
    packed = int.from_bytes(info[10:18], "big")
    rate, channels, total = packed >> 44, ((packed >> 41) & 0x7) + 1, packed & ((1 << 36) - 1)
    if not rate:
        raise NotWhole("STREAMINFO gives a sample rate of 0")
    if total == 0:
        raise NotWhole("STREAMINFO gives no sample count: the file was never finished")
    if size <= frames_start:
        raise NotWhole("no audio frames after the metadata: the file is cut")
    # The last frame: a header found from the end (sync code, CRC-8) whose CRC-16 checks over the bytes up to
    # the end of the file. Frame data may hold a false sync that passes CRC-8 (FLAC does not escape it), so a
    # candidate failing CRC-16 is passed over; only the last _CANDIDATES headers within one frame are tried.
    crc = struct.unpack(">H", tail[-2:])[0]
    lowest = max(0, len(tail) - (max_frame + 64 if max_frame else len(tail)))
    tried, found = 0, None
    for start in range(len(tail) - 8, lowest - 1, -1):
        header = _frame_header(tail, start)
        if header is None:
            continue
        tried += 1
        if _crc16(tail[start:-2]) == crc:
            found = header
            break
        if tried == _CANDIDATES:
            break
    if found is None:
        raise NotWhole("the file does not end with a whole frame (no frame header whose CRC-16 checks to the end "
                       "of the file): the file is cut or damaged")
    variable, number, block = found
    first = number if variable else number * max_block
    if first + block != total and not (not variable and min_block == max_block and first + block > total):
        raise NotWhole(f"the last frame ends at sample {first + block}, but STREAMINFO says {total}: the file is cut")
    return _audio("flac", "flac", rate, channels, round(total / rate, 6), 0.0)


# --- Ogg ----------------------------------------------------------------------------------------


def _pages(fh, size: int):
    """``(offset, header type, granule, serial, header length, body length)`` of every page."""
    pos = 0
    while pos < size:
        fh.seek(pos)
        head = fh.read(27)
        if len(head) < 27 or head[:4] != b"OggS" or head[4] != 0:
            raise NotWhole(f"no Ogg page at offset {pos}: the file is cut or damaged")
        kind, granule, serial = head[5], struct.unpack_from("<q", head, 6)[0], struct.unpack_from("<I", head, 14)[0]
        lacing = fh.read(head[26])
        if len(lacing) < head[26]:
            raise NotWhole(f"the page at offset {pos} is cut off")
        header, body = 27 + head[26], sum(lacing)
        if pos + header + body > size:
            raise NotWhole(f"the page at offset {pos} declares {body} bytes, but only {size - pos - header} are left: "
                           "the file is cut")
        yield pos, kind, granule, serial, header, body
        pos += header + body


def read_ogg(path: str) -> dict[str, Any]:
    """An Ogg file with one Opus or Vorbis stream: codec, rate, channels, duration; NotWhole unless whole."""
    with open(path, "rb") as fh:
        size = size_of(fh)
        pages = list(_pages(fh, size))
        first, last = pages[0], pages[-1]
        if not first[1] & 0x2:
            raise NotWhole("the first page does not begin a stream")
        if len({page[3] for page in pages}) != 1:
            raise NotReadHere("an Ogg file with more than one logical stream")
        if not last[1] & 0x4:
            raise NotWhole("the last page does not end the stream (no EOS flag): the file is cut")
        fh.seek(last[0])
        page = bytearray(fh.read(last[4] + last[5]))
        fh.seek(first[0] + first[4])
        ident = fh.read(min(first[5], 64))
    stored = struct.unpack_from("<I", page, 22)[0]
    page[22:26] = b"\0\0\0\0"
    if _crc32(bytes(page)) != stored:
        raise NotWhole(f"the last page (offset {last[0]}) fails its CRC: the file is damaged")
    granule = last[2]
    if ident[:8] == b"OpusHead" and len(ident) >= 19:
        channels, pre_skip = ident[9], struct.unpack_from("<H", ident, 10)[0]
        return _audio("ogg", "opus", 48000, channels, round(max(granule - pre_skip, 0) / 48000, 6) or None, 0.0)
    if ident[:7] == b"\x01vorbis" and len(ident) >= 16:
        channels, rate = ident[11], struct.unpack_from("<I", ident, 12)[0]
        if not rate:
            raise NotWhole("the Vorbis identification header gives a sample rate of 0")
        return _audio("ogg", "vorbis", rate, channels, round(granule / rate, 6) or None, 0.0)
    raise NotReadHere(f"an Ogg stream whose first packet starts {bytes(ident[:8])!r}")
