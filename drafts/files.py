"""The one way draftlens creates and publishes files it writes.

Every file draftlens writes (media outputs, ``run.json``, ``report.html``) is
first written to a temporary file that this module creates *exclusively*
(``O_CREAT | O_EXCL | O_NOFOLLOW``) under an unpredictable name beside the
target, so a link or file planted at a guessable name is never written
through, and two writers never share a temporary file. Publication moves the
finished file onto its final name in one step:

- ``publish(temp, final)`` — the temporary file's bytes are fsync'd, then it
  replaces ``final`` atomically, and the directory entry is fsync'd;
- ``publish(temp, final, replace=False)`` — the same, but refuses
  (``FileExistsError``) if ``final`` exists: a hard link makes the check and
  the move one step on file systems that support links, and on those that do
  not (FAT/exFAT camera cards) an ``lstat`` just before the rename stands in.

A reader therefore sees the old file or the whole new one, never half of one.

>>> import tempfile, os
>>> with tempfile.TemporaryDirectory() as d:
...     fd, temp = create_temporary(d, "run.json")
...     _ = os.write(fd, b"{}")
...     os.close(fd)
...     publish(temp, os.path.join(d, "run.json"))
...     sorted(os.listdir(d))
['run.json']
"""

from __future__ import annotations

import errno
import os
import secrets

__all__ = ["create_temporary", "publish", "remove_temporary", "write_file_atomically", "TEMPORARY_MARK"]

TEMPORARY_MARK = ".partial"
_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS, errno.EXDEV}


def create_temporary(directory: str | os.PathLike, name: str) -> tuple[int, str]:
    """``(fd, path)`` of a new, empty file ``.<stem>.<random>.partial<.ext>`` in ``directory``.

    The name holds 64 random bits; the file is created exclusively and never
    through a link, with the usual permissions (``0o666`` less the umask).
    Raises OSError if it cannot be created (no such directory, read-only, …).
    """
    directory = os.fspath(directory)
    stem, ext = os.path.splitext(name)
    for _ in range(16):
        path = os.path.join(directory, f".{stem}.{secrets.token_hex(8)}{TEMPORARY_MARK}{ext}")
        try:
            return os.open(path, _FLAGS, 0o666), path
        except FileExistsError:  # 1 in 2**64; try another name rather than touch that one
            continue
    raise FileExistsError(errno.EEXIST, "could not find a free temporary name", directory)


def remove_temporary(path: str) -> None:
    """Delete a temporary file this process created; a file already gone is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # some file systems do not open directories; the rename still happened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish(temp: str, final: str, *, replace: bool = True) -> None:
    """Make ``temp`` (made by ``create_temporary``) the file at ``final``, atomically.

    ``replace=False`` raises FileExistsError instead of replacing an existing
    ``final`` (of any kind, a dangling link included). On any error ``temp``
    is left for the caller to remove.
    """
    fd = os.open(temp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        os.fsync(fd)  # the bytes are durable before a name points at them
    finally:
        os.close(fd)
    if replace:
        os.replace(temp, final)
    else:
        try:
            os.link(temp, final, follow_symlinks=False)
        except OSError as exc:
            if exc.errno == errno.EEXIST or exc.errno not in _NO_LINKS:
                raise
            if os.path.lexists(final):
                raise FileExistsError(errno.EEXIST, "a file appeared at the final path", final) from None
            os.replace(temp, final)
        else:
            os.unlink(temp)
    _fsync_directory(os.path.dirname(os.path.abspath(final)))


def write_file_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through an exclusive temporary file and ``publish``.

    Two writers of one path never corrupt each other: each has its own
    temporary file and the last rename wins whole. Raises OSError (the
    temporary file is removed first).
    """
    path = os.fspath(path)
    fd, temp = create_temporary(os.path.dirname(os.path.abspath(path)), os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        publish(temp, path)
    except BaseException:
        remove_temporary(temp)
        raise
