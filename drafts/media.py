"""Media drafts: one file named by its absolute path, size and content fingerprint.

The fingerprint is streamed BLAKE3 (``blake3:<64 hex>``): cryptographic, so two
different files never share an id by accident or by design, and ~3.4 GB/s on
one core of the reference VM (BLAKE2b: 0.7 GB/s, xxh3-128: 6.6 GB/s but not
collision resistant; see benchmarks/bench_media.py). A file of
``THREADED_FROM`` bytes or more is hashed on every core (BLAKE3's tree lets
its multithreaded update give the very digest of one thread), in reads of
``_BIG_CHUNK`` bytes, small enough to stay in the L3 cache between the read
and the hash; smaller files on one thread in 1 MiB reads. No mmap: a file
truncated while it is read gives an error, never a SIGBUS.

>>> import tempfile, os
>>> with tempfile.TemporaryDirectory() as d:
...     p = os.path.join(d, "clip.mov")
...     _ = open(p, "wb").write(b"abc")
...     m = media_draft(p)
...     (m.payload["size"], m.payload["fingerprint"][:15])
(3, 'blake3:6437b3ac')
"""

from __future__ import annotations

import os
import stat
import time
from typing import Any

import blake3

from .draft import Draft, make_draft
from .errors import DraftError

__all__ = [
    "media_draft", "fingerprint_file", "MediaError", "FINGERPRINT_ALGORITHM", "MEDIA_KEYS", "file_status_key",
    "source_change", "use_fingerprint_cache",
]

FINGERPRINT_ALGORITHM = "blake3"
MEDIA_KEYS = ("path", "size", "fingerprint")
_CHUNK = 1 << 20  # 1 MiB: past this, larger reads buy nothing on one thread (measured)
_BIG_CHUNK = 4 << 20  # each read of a big file: split across threads, still in L3 when hashed
THREADED_FROM = 16 << 20
"""Files of at least this many bytes are hashed with ``max_threads=blake3.AUTO`` (same digest)."""
_KNOWN_LIMIT = 65536

# File status -> fingerprint of the files this process has fingerprinted. A file
# whose status (path, device, inode, size, mtime_ns, ctime_ns) is unchanged is
# not read again to be recognised; any write changes mtime/ctime, a swapped
# file its inode.
_known: dict[tuple, str] = {}

# A cache that outlives the process (``derived.durable.DurableStore``): the same
# status key -> fingerprint, installed by the command and by Workspace.open.
_durable: Any = None


def use_fingerprint_cache(cache: Any) -> Any:
    """Install ``cache`` (``get_fingerprint(key)`` / ``put_fingerprint(key, fp)``, or None); returns the previous one.

    With one installed, a file whose status key is in it is not read again by
    ``media_draft``, ``fingerprint_file`` or ``source_change`` — in any process
    that shares the cache. Installing one hands it the settled fingerprints
    this process already knows.
    """
    global _durable
    previous, _durable = _durable, cache
    if cache is not None:  # what this process already read (e.g. before the cache could be made) goes in too
        for key, fingerprint in list(_known.items()):
            if _settled(key):
                cache.put_fingerprint(key, fingerprint)
    return previous


RACY_WINDOW_NS = 2_000_000_000
"""A file whose status changed less than this long ago is read, not recognised by its status.

File times tick coarsely (ext4: one jiffy), so a file rewritten with the
same size within one tick keeps its status key. Git calls such files "racily
clean" and gives the same answer: trust the status only of older files.
"""


def _settled(key: tuple) -> bool:
    return time.time_ns() - max(key[4], key[5]) >= RACY_WINDOW_NS


def _recall(key: tuple, settled_only: bool = True) -> str | None:
    """The fingerprint remembered for a status key (this process, then the durable cache), or None."""
    if settled_only and not _settled(key):
        return None
    fingerprint = _known.get(key)
    if fingerprint is None and _durable is not None:
        fingerprint = _durable.get_fingerprint(key)
        if fingerprint is not None:
            _remember(key, fingerprint, durable=False)
    return fingerprint


class MediaError(DraftError):
    """A media file cannot be read into a draft; ``file_path`` names it."""

    def __init__(self, file_path: str, reason: str):
        DraftError.__init__(self, f"{file_path}: {reason}")
        self.file_path = file_path
        self.reason = reason

    def __reduce__(self):
        return type(self), (self.file_path, self.reason)


def _open_regular(path: str) -> tuple[int, os.stat_result]:
    """An fd on a regular file (O_NONBLOCK: a FIFO must not hang us) and its stat."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise MediaError(path, "no such file") from None
    except IsADirectoryError:
        raise MediaError(path, "is a directory, not a media file") from None
    except OSError as exc:
        raise MediaError(path, f"cannot be opened ({exc.strerror or exc})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise MediaError(path, "is a directory, not a media file")
        raise MediaError(path, "is not a regular file (a device, FIFO or socket cannot be a media draft)")
    return fd, st


def _changed(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ino) != (b.st_size, b.st_mtime_ns, b.st_ino)


def file_status_key(path: str, st: os.stat_result) -> tuple:
    """``(path, device, inode, size, mtime_ns, ctime_ns)``: equal keys mean the same bytes."""
    return (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _remember(key: tuple, fingerprint: str, durable: bool = True) -> None:
    if len(_known) >= _KNOWN_LIMIT:
        _known.pop(next(iter(_known)))  # oldest first
    _known[key] = fingerprint
    if durable and _durable is not None and _settled(key):
        _durable.put_fingerprint(key, fingerprint)


def fingerprint_file(path: str | os.PathLike) -> tuple[int, str]:
    """``(size, "blake3:<hex>")`` of a regular file, streamed (big files hashed on every core).

    Raises MediaError if the file is missing, unreadable, not a regular file,
    or changes while it is read. A file whose status key (``file_status_key``)
    this process or the installed durable cache already fingerprinted is not
    read again.
    """
    path = os.fspath(path)
    fd, before = _open_regular(path)
    known = _recall(file_status_key(path, before))
    if known is not None:
        os.close(fd)
        return before.st_size, known
    threaded = before.st_size >= THREADED_FROM
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO) if threaded else blake3.blake3()
    buf = bytearray(_BIG_CHUNK if threaded else _CHUNK)
    view = memoryview(buf)
    size = 0
    try:
        with os.fdopen(fd, "rb", buffering=0) as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                hasher.update(view[:n])
                size += n
    except OSError as exc:
        raise MediaError(path, f"read failed ({exc.strerror or exc})") from None
    try:
        after = os.stat(path)
    except OSError:
        raise MediaError(path, "vanished while it was being fingerprinted") from None
    if _changed(before, after) or size != before.st_size:
        raise MediaError(path, "changed while it was being fingerprinted; try again once it is complete")
    fingerprint = f"{FINGERPRINT_ALGORITHM}:{hasher.hexdigest()}"
    _remember(file_status_key(path, after), fingerprint)
    return size, fingerprint


def source_change(path: str, size: int, fingerprint: str) -> str | None:
    """Why the file at ``path`` no longer holds the bytes a media draft recorded, or None.

    The file's status is compared first: a file this process fingerprinted
    and whose status is unchanged is not read again. Otherwise it is
    fingerprinted anew, so a file swapped for another of the same size is
    caught. The reason names the path and says what to do.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"{path}: the source is offline or has vanished since it was ingested"
    except OSError as exc:
        return f"{path}: the source cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        return f"{path}: the source is no longer a regular file"
    if st.st_size != size:
        return (f"{path}: the source changed since it was ingested (now {st.st_size} bytes, the draft says "
                f"{size}); make a new media_draft")
    if _recall(file_status_key(path, st), settled_only=False) == fingerprint:
        return None
    try:
        _, now = fingerprint_file(path)
    except MediaError as exc:
        return f"{path}: the source cannot be read ({exc.reason})"
    if now != fingerprint:
        return (f"{path}: the source changed since it was ingested (same size, different bytes: {now[:19]}… "
                f"where the draft says {fingerprint[:19]}…); make a new media_draft")
    return None


def media_draft(path: str | os.PathLike, meta: dict[str, Any] | None = None) -> Draft:
    """A draft for one media file: ``{"path", "size", "fingerprint"}``.

    ``path`` is made absolute (not resolved: a symlink keeps the name you
    gave). The id changes when the bytes change, and not otherwise (for the
    same path). Raises MediaError naming the path if it cannot be read.
    """
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise MediaError(repr(path), "a media path must be a str or os.PathLike (not bytes)")
    absolute = os.path.abspath(os.fspath(path))
    if isinstance(absolute, bytes):
        raise MediaError(repr(path), "a media path must be a str or os.PathLike (not bytes)")
    size, fingerprint = fingerprint_file(absolute)
    try:
        return make_draft({"path": absolute, "size": size, "fingerprint": fingerprint}, meta)
    except DraftError as exc:
        if exc.path.startswith("payload"):
            raise MediaError(ascii(absolute), "the file name is not valid Unicode") from None
        raise
