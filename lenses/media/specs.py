"""Job specs: frozen, validated once, serialized with a stable key order.

A spec is the whole intent of a media job (the seed's JobSpec): the same spec,
engine and source always give the same argv. Construction checks everything
that needs no engine (field types, codec x container, resolution, naming
template); ``validate()`` adds what only the engine can say (the binary runs,
is the pinned version if one is asked for, and has the encoders).

>>> spec = ProxySpec("prores_proxy", "mov", "half", "{source_name}_proxy", "/proxies")
>>> ProxySpec.from_json(spec.to_json()) == spec
True
>>> ProxySpec.from_json('{"codec": "h264", "colour": "red"}')
Traceback (most recent call last):
...
lenses.media.errors.SpecError: ProxySpec: unknown fields ['colour']; allowed: ['audio', 'codec', 'container', 'ffmpeg', 'ffmpeg_version', 'fps_explicit', 'fps_mode', 'naming_template', 'output_directory', 'resolution', 'threads']
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import orjson

from .codecs import (
    AUDIO_CODECS,
    AUDIO_CONTAINERS,
    IMAGE_FORMATS,
    MXF_FRAME_RATES,
    PROXY_AUDIO,
    PROXY_CONTAINERS,
    VIDEO_CODECS,
)
from .engine import FFmpegEngine, engine_for
from .errors import EngineError, SpecError
from .naming import check_template

__all__ = ["ProxySpec", "ThumbnailSpec", "AudioSpec", "ProbeSpec", "FPS_MODES", "parse_size"]

FPS_MODES = ("same-as-source", "explicit")
_SIZE_RE = re.compile(r"^([1-9][0-9]{0,4})x([1-9][0-9]{0,4})$")
_WIDTH_RE = re.compile(r"^[1-9][0-9]{0,4}$")
_RATIONAL_RE = re.compile(r"^([1-9][0-9]{0,5})(?:/([1-9][0-9]{0,5}))?$")
_MAX_DIM = 16384


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _one_of(choices):
    def check(inst, attribute, value):
        if not isinstance(value, str) or value not in choices:
            raise SpecError(f"{type(inst).__name__}.{attribute.name} must be one of {sorted(choices)}, got {value!r}")

    return check


def _check_container(spec: Any, codecs: dict) -> Any:
    """The codec entry of ``spec.codec``, if ``spec.container`` is in its row of the matrix."""
    codec = codecs[spec.codec]
    if spec.container not in codec.containers:
        raise SpecError(
            f"{type(spec).__name__}: codec {spec.codec!r} cannot go in container {spec.container!r}; "
            f"{spec.codec} goes in {list(codec.containers)}"
        )
    return codec


def _flag(inst, attribute, value):
    if not isinstance(value, bool):
        raise SpecError(f"{type(inst).__name__}.{attribute.name} must be true or false, got {value!r}")


def _text(inst, attribute, value):
    if not isinstance(value, str) or not value:
        raise SpecError(f"{type(inst).__name__}.{attribute.name} must be a non-empty str, got {value!r}")


def _directory(inst, attribute, value):
    if not isinstance(value, str) or not os.path.isabs(value) or re.search(r"[\x00-\x1f\x7f]", value):
        raise SpecError(
            f"{type(inst).__name__}.{attribute.name} must be an absolute directory path without control "
            f"characters, got {value!r}"
        )


def _binary(inst, attribute, value):
    if value is not None and (not isinstance(value, str) or not os.path.isabs(value)):
        raise SpecError(
            f"{type(inst).__name__}.{attribute.name} must be None (the FFmpeg pinned by imageio-ffmpeg) "
            f"or an absolute path to an FFmpeg binary, got {value!r}"
        )


def _optional_text(inst, attribute, value):
    if value is not None:
        _text(inst, attribute, value)


def _int_between(low: int, high: int, allow_same: bool = False):
    def check(inst, attribute, value):
        if allow_same and value == "same":
            return
        if not _is_int(value) or not low <= value <= high:
            same = '"same" or ' if allow_same else ""
            raise SpecError(f"{type(inst).__name__}.{attribute.name} must be {same}an int in [{low}, {high}], got {value!r}")

    return check


def parse_size(text: str) -> tuple[int, int] | None:
    """``"WxH"`` -> ``(W, H)``; anything else -> None."""
    match = _SIZE_RE.match(text) if isinstance(text, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else None


class _Spec:
    """Serialization shared by the specs: dicts and JSON with sorted keys."""

    _tokens: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False)

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace; equal specs give equal text."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS).decode()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        if not isinstance(data, Mapping):
            raise SpecError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
        names = [a.name for a in attrs.fields(cls)]
        allowed = sorted(names)
        unknown = sorted(str(k) for k in data if k not in names)
        if unknown:
            raise SpecError(f"{cls.__name__}: unknown fields {unknown}; allowed: {allowed}")
        missing = sorted(a.name for a in attrs.fields(cls) if a.default is attrs.NOTHING and a.name not in data)
        if missing:
            raise SpecError(f"{cls.__name__}: missing required fields {missing}; allowed: {allowed}")
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str | bytes):
        """Rebuild a spec from ``to_json()`` text; unknown or missing fields are refused."""
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise SpecError(f"{cls.__name__}: not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def engine(self) -> FFmpegEngine:
        """The engine this spec names (``ffmpeg``, ``ffmpeg_version``), or SpecError."""
        try:
            return engine_for(self.ffmpeg, self.ffmpeg_version)
        except EngineError as exc:
            raise SpecError(str(exc)) from None

    def encoders_needed(self) -> tuple[str, ...]:
        return ()

    def validate(self) -> None:
        """Check what only the engine can tell: it runs, has the pinned version and the encoders."""
        engine = self.engine()
        missing = [e for e in self.encoders_needed() if e not in engine.encoders()]
        if missing:
            raise SpecError(f"{type(self).__name__}: {engine.identity} has no encoder {missing} (no fallback is tried)")


@attrs.frozen
class ProxySpec(_Spec):
    """An editing proxy of one clip.

    ``codec``: prores_proxy/lt/standard/hq/4444, dnxhr_lb/sq/hq, h264, hevc, vp9,
    av1. ``container``: mov, mp4, mkv, mxf, webm (see ``MATRIX``).
    ``resolution``: ``same`` (rounded down to even), ``half``, ``quarter``
    (each rounded down to even) or ``WxH`` (even numbers). ``fps_mode``:
    ``same-as-source`` (timestamps kept; MXF is constant-rate) or ``explicit``
    with ``fps_explicit`` (a number or ``"30000/1001"``). ``audio``: carry every
    source audio stream (PCM; AAC in MP4; Opus 48 kHz in WebM; PCM 48 kHz in
    MXF). ``threads``: encoder threads (default 1), pinned because
    x264/x265/libvpx/SVT-AV1 bytes depend on it; 1 is also the only count at
    which x264 with audio gave identical bytes under CPU contention (see
    DETERMINISM.md). Parallelism comes from running clips side by side. ``ffmpeg``: the binary (None: the pinned one);
    ``ffmpeg_version``: refuse any other version.
    """

    MATRIX: ClassVar[dict[str, tuple[str, ...]]] = {k: v.containers for k, v in VIDEO_CODECS.items()}
    _tokens: ClassVar[tuple[str, ...]] = ("source_name", "source_ext", "index", "codec", "resolution")

    codec: str = attrs.field(validator=_one_of(VIDEO_CODECS))
    container: str = attrs.field(validator=_one_of(PROXY_CONTAINERS))
    resolution: str = attrs.field()
    naming_template: str = attrs.field()
    output_directory: str = attrs.field(validator=_directory)
    fps_mode: str = attrs.field(default="same-as-source", validator=_one_of(FPS_MODES))
    fps_explicit: int | float | str | None = attrs.field(default=None)
    audio: bool = attrs.field(default=True, kw_only=True, validator=_flag)
    threads: int = attrs.field(default=1, kw_only=True, validator=_int_between(1, 64))
    ffmpeg: str | None = attrs.field(default=None, validator=_binary, kw_only=True)
    ffmpeg_version: str | None = attrs.field(default=None, validator=_optional_text, kw_only=True)

    @resolution.validator
    def _check_resolution(self, _attribute, value):
        if value in ("same", "half", "quarter"):
            return
        size = parse_size(value)
        if size is None:
            raise SpecError(f"ProxySpec.resolution must be 'same', 'half', 'quarter' or 'WxH' (e.g. '1280x720'), got {value!r}")
        width, height = size
        if width % 2 or height % 2 or width > _MAX_DIM or height > _MAX_DIM:
            raise SpecError(f"ProxySpec.resolution {value!r}: width and height must be even and at most {_MAX_DIM}")

    @naming_template.validator
    def _check_naming(self, _attribute, value):
        check_template(value, self._tokens)

    @fps_explicit.validator
    def _check_fps(self, _attribute, value):
        if value is None:
            return
        if isinstance(value, str):
            if not _RATIONAL_RE.match(value):
                raise SpecError(f"ProxySpec.fps_explicit {value!r}: write a number or a ratio such as '30000/1001'")
        elif not (_is_int(value) or isinstance(value, float)) or not math.isfinite(value) or not 0 < value <= 1000:
            raise SpecError(f"ProxySpec.fps_explicit must be a number in (0, 1000] or a ratio str, got {value!r}")
        if fps_value(value) > 1000:
            raise SpecError(f"ProxySpec.fps_explicit {value!r} is over 1000 fps")

    def __attrs_post_init__(self):
        codec = _check_container(self, VIDEO_CODECS)
        if self.fps_mode == "explicit" and self.fps_explicit is None:
            raise SpecError("ProxySpec: fps_mode 'explicit' needs fps_explicit (e.g. 25 or '30000/1001')")
        if self.fps_mode == "same-as-source" and self.fps_explicit is not None:
            raise SpecError(f"ProxySpec: fps_explicit={self.fps_explicit!r} needs fps_mode='explicit'")
        if self.container == "mxf" and self.fps_mode == "explicit":
            fps = fps_value(self.fps_explicit)
            if not any(abs(fps - num / den) <= 0.001 * num / den for num, den in MXF_FRAME_RATES):
                rates = ", ".join(f"{n}/{d}" if d != 1 else str(n) for n, d in MXF_FRAME_RATES)
                raise SpecError(f"ProxySpec: MXF cannot carry {self.fps_explicit!r} fps; it takes {rates}")
        size = parse_size(self.resolution)
        if size is not None and (size[0] < codec.min_size[0] or size[1] < codec.min_size[1]):
            raise SpecError(f"ProxySpec: {self.codec} needs at least {codec.min_size[0]}x{codec.min_size[1]}, got {self.resolution}")

    def encoders_needed(self) -> tuple[str, ...]:
        needed = (VIDEO_CODECS[self.codec].encoder,)
        return needed + ((PROXY_AUDIO[self.container][0],) if self.audio else ())

    @property
    def extension(self) -> str:
        return PROXY_CONTAINERS[self.container].extension


def fps_value(value: int | float | str) -> float:
    """The frame rate a ``fps_explicit`` value means, as a float."""
    if isinstance(value, str):
        num, _, den = value.partition("/")
        return int(num) / int(den or 1)
    return float(value)


@attrs.frozen
class ThumbnailSpec(_Spec):
    """One still image of a clip.

    Exactly one of ``time_offset`` (seconds from the start of the clip) and
    ``time_fraction`` (of the video stream's own span, in [0, 1); needs a
    probed input, e.g. the output of ``media.probe``). ``size``: ``same``,
    ``half``, ``quarter``, ``WxH``, or a width ``W`` (height follows the
    display aspect ratio, rounded to even); posters have square pixels at the
    source's display aspect (``lenses.media.posters`` has the rules).
    ``image_format``: ``jpg`` or ``png``. In the naming template,
    ``{codec}`` is the image format and ``{resolution}`` the size.
    """

    _tokens: ClassVar[tuple[str, ...]] = ("source_name", "source_ext", "index", "codec", "resolution")

    naming_template: str = attrs.field()
    output_directory: str = attrs.field(validator=_directory)
    time_offset: int | float | None = attrs.field(default=None)
    time_fraction: int | float | None = attrs.field(default=None)
    size: str = attrs.field(default="same")
    image_format: str = attrs.field(default="jpg", validator=_one_of(IMAGE_FORMATS))
    ffmpeg: str | None = attrs.field(default=None, validator=_binary, kw_only=True)
    ffmpeg_version: str | None = attrs.field(default=None, validator=_optional_text, kw_only=True)

    @naming_template.validator
    def _check_naming(self, _attribute, value):
        check_template(value, self._tokens)

    @time_offset.validator
    def _check_offset(self, _attribute, value):
        if value is not None and (not (_is_int(value) or isinstance(value, float)) or not math.isfinite(value)
                                  or not 0 <= value <= 1e7):
            raise SpecError(f"ThumbnailSpec.time_offset must be seconds in [0, 1e7], got {value!r}")

    @time_fraction.validator
    def _check_fraction(self, _attribute, value):
        if value is not None and (not (_is_int(value) or isinstance(value, float)) or not 0 <= value < 1):
            raise SpecError(f"ThumbnailSpec.time_fraction must be in [0, 1), got {value!r}")

    @size.validator
    def _check_size(self, _attribute, value):
        if value in ("same", "half", "quarter"):
            return
        size = parse_size(value)
        if size is not None:
            if max(size) > _MAX_DIM:
                raise SpecError(f"ThumbnailSpec.size {value!r}: at most {_MAX_DIM} pixels a side")
            return
        if isinstance(value, str) and _WIDTH_RE.match(value) and int(value) % 2 == 0 and int(value) <= _MAX_DIM:
            return
        raise SpecError(
            f"ThumbnailSpec.size must be 'same', 'half', 'quarter', 'WxH' or an even width 'W' "
            f"(height follows the aspect ratio), got {value!r}"
        )

    def __attrs_post_init__(self):
        if (self.time_offset is None) == (self.time_fraction is None):
            raise SpecError(
                "ThumbnailSpec needs exactly one of time_offset (seconds) and time_fraction (of the duration), "
                f"got time_offset={self.time_offset!r}, time_fraction={self.time_fraction!r}"
            )

    def encoders_needed(self) -> tuple[str, ...]:
        return (IMAGE_FORMATS[self.image_format][0],)

    @property
    def extension(self) -> str:
        return self.image_format


@attrs.frozen
class AudioSpec(_Spec):
    """The audio of a clip (its first audio stream) as one audio file.

    ``codec``: pcm_s16le, pcm_s24le, flac, alac, aac, mp3, opus, vorbis;
    ``container``: wav, flac, m4a, mp3, ogg, webm, mka (see ``MATRIX``).
    ``sample_rate`` and ``channels``: an int, or ``"same"`` as the source
    (opus takes only 48000; mp3 at most 2 channels). Naming tokens: all but
    ``{resolution}``.
    """

    MATRIX: ClassVar[dict[str, tuple[str, ...]]] = {k: v.containers for k, v in AUDIO_CODECS.items()}
    _tokens: ClassVar[tuple[str, ...]] = ("source_name", "source_ext", "index", "codec")

    codec: str = attrs.field(validator=_one_of(AUDIO_CODECS))
    sample_rate: int | str = attrs.field(validator=_int_between(8000, 192000, allow_same=True))
    channels: int | str = attrs.field(validator=_int_between(1, 8, allow_same=True))
    container: str = attrs.field(validator=_one_of(AUDIO_CONTAINERS))
    naming_template: str = attrs.field()
    output_directory: str = attrs.field(validator=_directory)
    ffmpeg: str | None = attrs.field(default=None, validator=_binary, kw_only=True)
    ffmpeg_version: str | None = attrs.field(default=None, validator=_optional_text, kw_only=True)

    @naming_template.validator
    def _check_naming(self, _attribute, value):
        check_template(value, self._tokens)

    def __attrs_post_init__(self):
        codec = _check_container(self, AUDIO_CODECS)
        if self.sample_rate == "same" and not codec.same_rate_ok:
            raise SpecError(f"AudioSpec: {self.codec} needs an explicit sample_rate in {list(codec.sample_rates)}")
        if codec.sample_rates is not None and self.sample_rate != "same" and self.sample_rate not in codec.sample_rates:
            raise SpecError(f"AudioSpec: {self.codec} takes sample_rate in {list(codec.sample_rates)}, got {self.sample_rate!r}")
        if self.channels != "same" and self.channels > codec.max_channels:
            raise SpecError(f"AudioSpec: {self.codec} takes at most {codec.max_channels} channels, got {self.channels}")

    def encoders_needed(self) -> tuple[str, ...]:
        return (AUDIO_CODECS[self.codec].encoder,)

    @property
    def extension(self) -> str:
        return AUDIO_CONTAINERS[self.container].extension


@attrs.frozen
class ProbeSpec(_Spec):
    """Probe needs no spec; this only lets a user name another FFmpeg binary."""

    ffmpeg: str | None = attrs.field(default=None, validator=_binary)
    ffmpeg_version: str | None = attrs.field(default=None, validator=_optional_text)
