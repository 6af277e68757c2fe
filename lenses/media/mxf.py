"""MXF (OP1a) files draftlens wrote, read in-process to verify them.

SMPTE ST 377-1: the file is a run of KLV triplets (16-byte key, BER length,
value). FFmpeg's MXF muxer, finishing a seekable file, rewrites the header
partition closed and complete (so its metadata holds the final durations),
writes a footer partition and ends with a Random Index Pack. The file must
be exactly that: KLVs tiling it, the header partition pack first naming the
footer's offset, a footer partition pack there, the Random Index Pack last
— so a file cut anywhere, in its header or in its essence, is caught.

Streams come from the header metadata, resolved by instance UID as FFmpeg's
demuxer does: the material package's picture and sound tracks in order
(timecode tracks give the start timecode, not a stream), each track's
sequence duration over its edit rate, and the source package descriptor
linked to it (stored size, sample rate, picture coding, audio sampling rate,
channels, bits).

``read_mxf(path)`` gives the shape of ``mediainfo.parse_input_dump``; a cut,
empty or malformed file raises ``NotWhole``, what it leaves to FFmpeg
(several source packages, a picture coding or sound descriptor it does not
map, a drop-frame timecode) ``NotReadHere``.
"""

from __future__ import annotations

import struct
from typing import Any

from .errors import NotReadHere, NotWhole
from .wholefile import size_of

__all__ = ["read_mxf"]

_PREFIX = bytes.fromhex("060e2b34")
_PARTITION = bytes.fromhex("060e2b34020501010d010201")  # + 01 kind status 00
_RIP = bytes.fromhex("060e2b34020501010d01020101110100")
_SET = bytes.fromhex("060e2b34025301010d0101010101")  # + set type, 00
_MATERIAL_PACKAGE, _SOURCE_PACKAGE = 0x36, 0x37
_CDCI, _RGBA, _AES3, _WAVE = 0x28, 0x29, 0x47, 0x48
_MAX_HEADER = 16 << 20


def _ber(data: bytes, pos: int) -> tuple[int, int]:
    """``(length, bytes used)`` of the BER length at ``pos``."""
    if pos >= len(data):
        raise NotWhole(f"a KLV length at offset {pos} is cut off")
    first = data[pos]
    if first < 0x80:
        return first, 1
    count = first & 0x7F
    if not 1 <= count <= 8 or pos + 1 + count > len(data):
        raise NotWhole(f"a malformed or cut KLV length at offset {pos}")
    return int.from_bytes(data[pos + 1:pos + 1 + count], "big"), 1 + count


def _klvs(fh, size: int) -> list[tuple[bytes, int, int, int]]:
    """``(key, offset, value offset, value length)`` of every KLV; NotWhole unless they tile the file."""
    found, pos = [], 0
    while pos < size:
        fh.seek(pos)
        head = fh.read(25)
        if len(head) < 17 or head[:4] != _PREFIX:
            raise NotWhole(f"no KLV key at offset {pos}: the file is cut or damaged")
        length, used = _ber(head, 16)
        value = pos + 16 + used
        if value + length > size:
            raise NotWhole(f"the KLV at offset {pos} declares {length} bytes, but only {size - value} are left: "
                           "the file is cut")
        found.append((head[:16], pos, value, length))
        pos = value + length
    return found


def _local_set(value: bytes) -> dict[int, bytes]:
    tags, pos = {}, 0
    while pos + 4 <= len(value):
        tag, length = struct.unpack_from(">HH", value, pos)
        tags[tag] = value[pos + 4:pos + 4 + length]
        pos += 4 + length
    return tags


def _refs(batch: bytes) -> list[bytes]:
    """The UIDs of a strong-reference array or batch (count, item length, items)."""
    if len(batch) < 8:
        return []
    count, item = struct.unpack_from(">II", batch)
    return [batch[8 + n * item:8 + (n + 1) * item] for n in range(count) if 8 + (n + 1) * item <= len(batch)]


def _rational(raw: bytes | None) -> float | None:
    if raw is None or len(raw) < 8:
        return None
    num, den = struct.unpack(">ii", raw[:8])
    return num / den if den else None


def _u32(raw: bytes | None) -> int | None:
    return struct.unpack(">I", raw[:4])[0] if raw is not None and len(raw) >= 4 else None


def _check_structure(klvs: list, size: int) -> int:
    """The value offset of the header partition pack, once the partitions are as a finished file has them."""
    key, _pos, value_at, _length = klvs[0]
    if key[:12] != _PARTITION or key[13] != 0x02:
        raise NotWhole("the file does not start with a header partition pack")
    if key[-1] != 0 or key[14] not in (0x02, 0x04):
        raise NotWhole("the header partition is not closed: the file was never finished")
    if klvs[-1][0] != _RIP:
        raise NotWhole("no Random Index Pack at the end: the file is cut or was never finished")
    footers = [pos for k, pos, _v, _l in klvs if k[:12] == _PARTITION and k[13] == 0x04]
    if not footers:
        raise NotWhole("no footer partition: the file is cut or was never finished")
    return value_at


def _streams(sets: dict[bytes, tuple[int, dict[int, bytes]]]) -> tuple[list[dict[str, Any]], str | None]:
    packages = [tags for kind, tags in sets.values() if kind == _MATERIAL_PACKAGE]
    sources = [tags for kind, tags in sets.values() if kind == _SOURCE_PACKAGE]
    if len(packages) != 1 or len(sources) != 1:
        raise NotReadHere(f"{len(packages)} material and {len(sources)} source packages")
    descriptors: dict[int, tuple[int, dict[int, bytes]]] = {}
    top = sets.get(sources[0].get(0x4701, b""))
    if top is None:
        raise NotWhole("the source package has no descriptor in the header metadata")
    # a multiple descriptor lists one per track; a single-track file has the descriptor itself
    linked = _refs(top[1][0x3F01]) if 0x3F01 in top[1] else [sources[0][0x4701]]
    for uid in linked:
        described = sets.get(uid)
        if described is not None and 0x3006 in described[1]:
            descriptors[_u32(described[1][0x3006])] = described
    streams, timecode = [], None
    for track_uid in _refs(packages[0].get(0x4403, b"")):
        track = sets.get(track_uid)
        sequence = sets.get(track[1].get(0x4803, b"")) if track else None
        if sequence is None:
            raise NotWhole("a material package track or its sequence is missing from the header metadata")
        definition = sequence[1].get(0x0201, b"")[11:13]  # RP 224: 01 01 timecode, 02 01 picture, 02 02 sound
        rate = _rational(track[1].get(0x4B01))
        length = struct.unpack(">q", sequence[1][0x0202])[0] if len(sequence[1].get(0x0202, b"")) == 8 else None
        components = [sets.get(uid) for uid in _refs(sequence[1].get(0x1001, b""))]
        if definition == b"\x01\x01":  # timecode
            for component in components:
                if component is not None and 0x1501 in component[1]:
                    timecode = _timecode(component[1])
            continue
        if definition not in (b"\x02\x01", b"\x02\x02"):
            raise NotReadHere(f"a material track of data definition {definition.hex()}")
        clip = next((c for c in components if c is not None and 0x1102 in c[1]), None)
        described = descriptors.get(_u32(clip[1][0x1102])) if clip else None
        if described is None:
            raise NotReadHere("a material track with no descriptor linked to it")
        stream = _stream(len(streams), definition == b"\x02\x01", described)
        stream["duration"] = round(length / rate, 6) if rate and length is not None and length >= 0 else None
        streams.append(stream)
    return streams, timecode


def _timecode(tags: dict[int, bytes]) -> str | None:
    start = struct.unpack(">q", tags[0x1501])[0] if len(tags[0x1501]) == 8 else None
    base = struct.unpack(">H", tags[0x1502])[0] if len(tags.get(0x1502, b"")) == 2 else 0
    if tags.get(0x1503, b"\0") != b"\0":
        raise NotReadHere("a drop-frame timecode")
    if start is None or base <= 0:
        return None
    return f"{start // (base * 3600) % 24:02d}:{start // (base * 60) % 60:02d}:{start // base % 60:02d}:{start % base:02d}"


def _stream(index: int, picture: bool, described: tuple[int, dict[int, bytes]]) -> dict[str, Any]:
    kind, tags = described
    stream: dict[str, Any] = {
        "index": index, "codec_type": "video" if picture else "audio", "codec_name": None, "width": None,
        "height": None, "frame_rate": None, "r_frame_rate": None, "sample_rate": None, "channels": None,
        "pix_fmt": None, "channel_layout": None, "attached_pic": False, "rotation": None, "duration": None,
    }
    if picture:
        coding = tags.get(0x3201, b"")
        if kind not in (_CDCI, _RGBA) or len(coding) != 16:
            raise NotReadHere(f"a picture descriptor of set type {kind:#x}")
        if coding[8:12] == bytes.fromhex("04010202") and coding[12:14] == b"\x03\x06":
            stream["codec_name"] = "prores"
        elif coding[8:13] == bytes.fromhex("0401020271"):
            stream["codec_name"] = "dnxhd"
        else:
            raise NotReadHere(f"picture essence coding {coding.hex()}")
        # the display size (stored sizes are rounded up to whole macroblocks: DNxHD 320x180 is stored 320x192)
        stream["width"] = _u32(tags.get(0x3209)) or _u32(tags.get(0x3203))
        stream["height"] = _u32(tags.get(0x3208)) or _u32(tags.get(0x3202))
        rate = _rational(tags.get(0x3001))
        stream["frame_rate"] = stream["r_frame_rate"] = round(rate, 2) if rate else None
    else:
        bits = _u32(tags.get(0x3D01))
        if kind not in (_AES3, _WAVE) or bits not in (16, 24):
            raise NotReadHere(f"a sound descriptor of set type {kind:#x} with {bits} bits")
        rate = _rational(tags.get(0x3D03))
        stream.update(codec_name=f"pcm_s{bits}le", sample_rate=int(round(rate)) if rate else None,
                      channels=_u32(tags.get(0x3D07)))
    return stream


def read_mxf(path: str) -> dict[str, Any]:
    """``{"container": "mxf", "duration", ..., "streams", "timecode"}``; NotWhole unless the file is whole."""
    with open(path, "rb") as fh:
        size = size_of(fh)
        klvs = _klvs(fh, size)
        header_at = _check_structure(klvs, size)
        fh.seek(header_at + 2 + 2 + 4 + 8 + 8)  # major, minor, KAG size, this and previous partition
        footer = struct.unpack(">Q", fh.read(8))[0]
        if not any(k[:12] == _PARTITION and k[13] == 0x04 and pos == footer for k, pos, _v, _l in klvs):
            raise NotWhole(f"the header partition names a footer at offset {footer}, and none is there: "
                           "the file is cut or damaged")
        sets: dict[bytes, tuple[int, dict[int, bytes]]] = {}
        for key, _pos, value_at, length in klvs:
            if key[:12] == _PARTITION and key[13] in (0x03, 0x04):  # a body or footer partition pack
                break  # the header metadata ends where the next partition starts
            if key[:14] == _SET and length <= _MAX_HEADER:
                fh.seek(value_at)
                tags = _local_set(fh.read(length))
                if 0x3C0A in tags:
                    sets[tags[0x3C0A]] = (key[14], tags)
    streams, timecode = _streams(sets)
    if not streams:
        raise NotWhole("the material package has no picture or sound track")
    known = [s["duration"] for s in streams if s["duration"] is not None]
    return {"container": "mxf", "duration": max(known) if known else None, "duration_estimated": False,
            "start_time": 0.0, "streams": streams, "timecode": timecode}
