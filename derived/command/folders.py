"""Output folders of a run: checked and made before any job runs, and held by one run at a time.

``prepare_folders`` makes the pipeline's output folder and every media
output directory, or says in one line why it cannot (a file in the way, a
read-only or full file system), before anything runs. ``hold_folders`` then
takes an advisory lock in each (``<folder>/.draftlens/run.lock``, an
``flock``, so the kernel drops it when its holder dies, SIGKILL included): a
second ``draftlens run`` on a folder in use is refused at once with a message
naming the run that holds it, instead of racing it for ``run.json`` and the
outputs. Locks are taken in sorted order, so two runs never deadlock.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

try:
    import fcntl
except ImportError:  # pragma: no cover - POSIX only
    fcntl = None

__all__ = ["FolderError", "FolderInUse", "prepare_folders", "hold_folders"]

_LOCK_DIR = ".draftlens"
_LOCK_NAME = "run.lock"
_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class FolderError(OSError):
    """An output folder cannot be used; the message is one line naming it and why."""


class FolderInUse(FolderError):
    """Another run holds the folder; ``holder`` says who (pid, host, since, pipeline)."""

    def __init__(self, message: str, holder: dict):
        super().__init__(message)
        self.holder = holder


def prepare_folders(folders: Iterable[Path]) -> None:
    """Make each folder (and its parents) or raise FolderError saying why, before anything runs."""
    for folder in folders:
        text = str(folder)
        if any(ord(c) < 32 or ord(c) == 127 for c in text):
            raise FolderError(f"output folder {text!r} holds a control character; rename it")
        try:
            st = os.stat(folder)
        except FileNotFoundError:
            st = None
        except NotADirectoryError:
            raise FolderError(f"output folder {folder} lies under a file, not a folder") from None
        except OSError as exc:
            raise FolderError(f"output folder {folder} cannot be checked: {exc.strerror or exc}") from None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise FolderError(f"output folder {folder} is a file, not a folder")
        if st is None:
            try:
                os.makedirs(folder, exist_ok=True)
            except NotADirectoryError:
                raise FolderError(f"output folder {folder} lies under a file, not a folder") from None
            except OSError as exc:
                raise FolderError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None


def _lock_one(folder: Path, who: dict) -> int:
    directory = folder / _LOCK_DIR
    try:
        os.mkdir(directory)
    except FileExistsError:
        pass
    except OSError as exc:
        raise FolderError(f"cannot use output folder {folder}: {exc.strerror or exc}") from None
    if os.path.islink(directory) or not directory.is_dir():
        raise FolderError(f"{directory} should be draftlens's folder but is a link or a file; move it away")
    try:
        fd = os.open(directory / _LOCK_NAME, _FLAGS, 0o644)
    except OSError as exc:
        raise FolderError(f"cannot lock output folder {folder}: {exc.strerror or exc}") from None
    if fcntl is None:  # pragma: no cover
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _read_holder(fd)
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            shown = ", ".join(f"{k} {holder[k]}" for k in ("pipeline", "pid", "host", "since") if k in holder)
            raise FolderInUse(f"output folder {folder} is in use by another draftlens run ({shown or 'unknown'}); "
                              "wait for it to finish, or use another output folder", holder) from None
        raise FolderError(f"cannot lock output folder {folder}: {exc.strerror or exc}") from None
    try:  # who holds it, for a refused second run's message; the lock holds without it (a full disk)
        os.ftruncate(fd, 0)
        os.pwrite(fd, orjson.dumps(who), 0)
    except OSError:
        pass
    return fd


def _read_holder(fd: int) -> dict:
    try:
        data = os.pread(fd, 4096, 0)
        holder = orjson.loads(data) if data else {}
    except (OSError, orjson.JSONDecodeError):
        return {}
    return holder if isinstance(holder, dict) else {}


@contextlib.contextmanager
def hold_folders(folders: Iterable[Path], pipeline: str = "") -> Iterator[None]:
    """Hold every folder for this run (FolderInUse at once if another run holds one)."""
    who = {"pipeline": pipeline, "pid": os.getpid(), "host": socket.gethostname(),
           "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    held: list[int] = []
    try:
        for folder in sorted({Path(os.path.realpath(f)) for f in folders}):
            held.append(_lock_one(folder, who))
        yield
    finally:
        for fd in held:
            os.close(fd)  # releases the flock
