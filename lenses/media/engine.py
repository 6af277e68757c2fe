"""FFmpegEngine: which binary runs a job, and which version it is.

The default is the binary pinned by the ``imageio-ffmpeg`` dependency, found
inside that package: the ``IMAGEIO_FFMPEG_EXE`` variable, conda and ``PATH``
are never consulted (no environment-driven engine switch, no fallback). Any
other binary is named explicitly by path. The version comes from the binary
itself (``-version``) and is cached per binary file (path, inode, size,
mtime), so a replaced binary is noticed.
"""

from __future__ import annotations

import os
import re
import threading

import attrs

from .errors import EngineError
from .run import query_ffmpeg

__all__ = ["FFmpegEngine", "pinned_binary", "engine_for"]

_VERSION_RE = re.compile(r"^ffmpeg version (\S+)", re.MULTILINE)
_ENCODER_RE = re.compile(r"^ [VAS][.A-Z]{5} (\S+)", re.MULTILINE)
_lock = threading.Lock()
_versions: dict[tuple, str] = {}
_encoders: dict[tuple, frozenset[str]] = {}


_pinned: list[str] = []  # the path, once found: the package does not move while the process runs


def pinned_binary() -> str:
    """Absolute path of the FFmpeg binary shipped inside ``imageio_ffmpeg`` (looked up once per process;
    the binary file itself is checked on every use, ``_file_key``)."""
    if _pinned:
        return _pinned[0]
    try:
        from imageio_ffmpeg._definitions import FNAME_PER_PLATFORM, get_platform
        from imageio_ffmpeg._utils import _get_bin_dir
    except ImportError as exc:  # pragma: no cover - a broken install
        raise EngineError(f"imageio-ffmpeg is not importable ({exc}); pass ffmpeg=<path> explicitly") from None
    name = FNAME_PER_PLATFORM.get(get_platform())
    path = os.path.join(_get_bin_dir(), name) if name else ""
    if not name or not os.path.isfile(path):
        raise EngineError(
            f"imageio-ffmpeg ships no FFmpeg binary for platform {get_platform()!r}; "
            "pass ffmpeg=<absolute path> in the spec (there is no fallback to another FFmpeg)"
        )
    _pinned[:] = [path]
    return path


def _file_key(path: str) -> tuple:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise EngineError(f"FFmpeg binary {path!r} is not usable: {exc.strerror or exc}") from None
    return (path, st.st_ino, st.st_size, st.st_mtime_ns)


def _learn_version(path: str) -> str:
    key = _file_key(path)
    with _lock:
        known = _versions.get(key)
    if known is not None:
        return known
    code, out = query_ffmpeg(path, "-version")
    match = _VERSION_RE.search(out) if code == 0 else None
    if match is None:
        raise EngineError(f"{path!r} does not run as FFmpeg (-version gave exit code {code}): {out.strip()[:200]}")
    with _lock:
        _versions[key] = match.group(1)
    return match.group(1)


def _check_path(_inst, _attr, value) -> None:
    if not isinstance(value, str) or not os.path.isabs(value):
        raise EngineError(f"FFmpegEngine.path must be an absolute path str, got {value!r}")


@attrs.frozen
class FFmpegEngine:
    """An FFmpeg binary and the version it reports.

    Make one with ``FFmpegEngine.pinned()`` or ``FFmpegEngine.at(path)``;
    both ask the binary for its version. ``identity`` is the string recorded
    in every plan and ExecutionResult.
    """

    path: str = attrs.field(validator=_check_path)
    version: str = attrs.field(validator=attrs.validators.instance_of(str))

    @classmethod
    def pinned(cls) -> FFmpegEngine:
        """The binary pinned by the imageio-ffmpeg dependency."""
        return cls.at(pinned_binary())

    @classmethod
    def at(cls, path: str | os.PathLike) -> FFmpegEngine:
        """The binary at ``path`` (made absolute), with the version it reports."""
        path = os.path.abspath(os.fspath(path))
        return cls(path, _learn_version(path))

    @property
    def identity(self) -> str:
        return f"ffmpeg {self.version} ({self.path})"

    def check(self) -> None:
        """Raise EngineError unless the binary still reports ``version``."""
        now = _learn_version(self.path)
        if now != self.version:
            raise EngineError(f"{self.path} now reports version {now!r}, not {self.version!r}")

    def encoders(self) -> frozenset[str]:
        """Names of the encoders this binary has (``-encoders``), cached per binary file."""
        key = _file_key(self.path)
        with _lock:
            known = _encoders.get(key)
        if known is not None:
            return known
        code, out = query_ffmpeg(self.path, "-encoders")
        if code != 0:
            raise EngineError(f"{self.path} -encoders failed with exit code {code}")
        names = frozenset(_ENCODER_RE.findall(out.split("------", 1)[-1]))
        with _lock:
            _encoders[key] = names
        return names


def engine_for(ffmpeg: str | None, expected_version: str | None = None) -> FFmpegEngine:
    """The engine a spec names: ``None`` is the pinned binary; a version pin is checked."""
    if ffmpeg is not None and not os.path.isabs(ffmpeg):
        raise EngineError(f"ffmpeg must be an absolute path or None (the pinned binary), got {ffmpeg!r}")
    engine = FFmpegEngine.pinned() if ffmpeg is None else FFmpegEngine.at(ffmpeg)
    if expected_version is not None and engine.version != expected_version:
        raise EngineError(
            f"the spec asks for FFmpeg {expected_version!r} but {engine.path} is {engine.version!r} "
            "(there is no fallback: point ffmpeg at that version, or change ffmpeg_version)"
        )
    return engine
