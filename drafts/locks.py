"""Advisory locks under ``<root>/users``: the per-user lock, and one writer per session.

Both are ``flock`` locks on small files opened by ``drafts.journal`` (so never
through a link). ``flock`` conflicts between two descriptors of one file even
in one process, so the same lock holds across threads and processes, and the
kernel drops it when its holder dies, SIGKILL included: a crashed writer can
never lock a user out.

- ``<root>/users/<user_id>/.lock`` — held briefly around every check-then-act
  of the session manager (start, end, resume-or-start, set aside).
- ``<root>/users/<user_id>/sessions/<session_id>.writer`` — held for as long
  as a Workspace writes to that session. The holder writes who it is
  (performer, host, pid, since) into the file, under the user lock, so a
  refused second writer can name it.
"""

from __future__ import annotations

import os
import socket
import threading
import weakref
from typing import Any

import orjson

from .errors import SessionInUse
from .journal import check_name, open_user_file, utc_timestamp

try:
    import fcntl
except ImportError:  # pragma: no cover - POSIX only: flock is what makes the locks cross-process
    fcntl = None

__all__ = ["UserLock", "WriterLease"]


class UserLock:
    """``with UserLock(root, user_id):`` — exclusive, blocking, across threads and processes."""

    def __init__(self, root: str | os.PathLike, user_id: str):
        self.root = root
        self.user_id = check_name(user_id, "user_id")
        self._fd: int | None = None

    def __enter__(self) -> UserLock:
        fd, _ = open_user_file(self.root, (self.user_id,), ".lock", os.O_RDWR, create=True)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(self, *exc: Any) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # releases the flock


class WriterLease:
    """The right to write to one active session, held until ``release()`` (or the process ends).

    Take it with ``WriterLease.acquire`` under the user's ``UserLock``; a
    second writer gets SessionInUse naming this one. Releasing twice is
    harmless; a lease that is garbage-collected releases itself.
    """

    def __init__(self, root: str | os.PathLike, user_id: str, session_id: str, performer_id: str, fd: int,
                 holder: dict):
        self.root = root
        self.user_id = user_id
        self.session_id = session_id
        self.performer_id = performer_id
        self.holder = holder
        self.started = False  # set by SessionManager.resume_or_start: was the session started for this lease?
        self._fd = fd
        self._guard = threading.Lock()
        self._finalizer = weakref.finalize(self, os.close, fd)

    @classmethod
    def acquire(cls, root: str | os.PathLike, user_id: str, session_id: str, performer_id: str) -> WriterLease:
        """Take the session's writer lock without waiting: SessionInUse if someone holds it."""
        name = f"{check_name(session_id, 'session_id')}.writer"
        fd, _ = open_user_file(root, (check_name(user_id, "user_id"), "sessions"), name, os.O_RDWR, create=True)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise SessionInUse(user_id, session_id, _read_holder(fd)) from None
            holder = {"performer_id": performer_id, "host": socket.gethostname(), "pid": os.getpid(),
                      "since": utc_timestamp()}
            data = orjson.dumps(holder, option=orjson.OPT_SORT_KEYS)
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(root, user_id, session_id, performer_id, fd, holder)

    @property
    def held(self) -> bool:
        return self._finalizer.alive

    def release(self) -> None:
        """Give up the session: the next ``Workspace.open`` for this user may write to it."""
        with self._guard:
            if not self._finalizer.alive:
                return
            if fcntl is not None:
                # Explicit unlock: a forked child (a process pool) may share this descriptor.
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._finalizer()

    def __repr__(self) -> str:
        state = "held" if self.held else "released"
        return f"WriterLease(user_id={self.user_id!r}, session_id={self.session_id!r}, {state})"


def _read_holder(fd: int) -> dict:
    try:
        holder = orjson.loads(os.pread(fd, 4096, 0) or b"{}")
    except orjson.JSONDecodeError:
        holder = {}
    return holder if isinstance(holder, dict) else {}
