"""Work sessions: start and end events, one active session per user.

The manager makes every boundary event itself (UTC millisecond timestamp,
fresh UUIDv4 record id, ``source="session_manager"``) and hands it to the
recorder: it creates session directories but never opens a journal file
(``drafts.journal`` reads and writes them). Which sessions are active is read
back from the journals (a start event and no end event), so it survives
restarts and there is no second record to disagree with. A per-user file lock
(``<root>/users/<user_id>/.lock``) makes check-then-append atomic across the
threads and processes that share the root; state changes only when the
append succeeded, because the append *is* the state.

>>> import tempfile
>>> tmp = tempfile.TemporaryDirectory()
>>> manager = SessionManager(tmp.name)
>>> started = manager.start("ana", "ana@desk")
>>> manager.active_session("ana") == started.session_id
True
>>> manager.end("ana", started.session_id, "ana@desk").event
'end'
>>> manager.active_session("ana") is None
True
>>> tmp.cleanup()
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import attrs
from filelock import FileLock

from .errors import (
    ActiveSessionExists,
    InvalidSessionArgument,
    SessionAlreadyClosed,
    SessionNotFound,
    SessionUserMismatch,
)
from .journal import (
    SESSION_SOURCE,
    Recorder,
    _record_problem,
    check_name,
    check_performer,
    ensure_directory,
    journal_path,
    new_record_id,
    read_boundaries,
    utc_timestamp,
)

__all__ = ["SYSTEM", "SessionEvent", "SessionInfo", "SessionManager"]

SYSTEM = "system"
SESSION_ID_PREFIX = "sess_"


@attrs.frozen
class SessionEvent:
    """A session boundary, exactly as journaled; checked when made, so a bad one is never recorded."""

    source: str
    event: str
    user_id: str
    session_id: str
    timestamp: str
    record_id: str
    performer_id: str

    def __attrs_post_init__(self) -> None:
        problem = _record_problem(self.to_record())
        if problem is not None:
            raise InvalidSessionArgument(f"invalid session event: {problem}")

    def to_record(self) -> dict:
        """The journal record (``kind="session"`` plus every attribute)."""
        return {"kind": "session", **attrs.asdict(self)}

    @classmethod
    def from_record(cls, record: dict) -> SessionEvent:
        fields = {k: v for k, v in record.items() if k != "kind"}
        if record.get("kind") != "session":
            raise InvalidSessionArgument(f"not a session record: kind {record.get('kind')!r}")
        return cls(**fields)


@attrs.frozen
class SessionInfo:
    """One session of a user, as its journal tells it."""

    session_id: str
    user_id: str
    started: SessionEvent
    ended: SessionEvent | None

    @property
    def status(self) -> str:
        return "active" if self.ended is None else "closed"


class SessionManager:
    """``start`` / ``end`` / ``close_by_system`` for work sessions under ``<root>/users/``.

    ``recorder`` (default ``Recorder(root)``) does every write; pass another
    to test what happens when an append fails.
    """

    def __init__(self, root: str | os.PathLike = "logs", recorder: Any = None):
        self.root = Path(root)
        self.recorder = Recorder(self.root) if recorder is None else recorder

    def __repr__(self) -> str:
        return f"SessionManager(root={str(self.root)!r})"

    # -- reading -----------------------------------------------------------------------
    def journal(self, user_id: str, session_id: str) -> Path:
        """Where the session's journal is (whether or not it exists)."""
        return journal_path(self.root, user_id, session_id)

    def _sessions_dir(self, user_id: str) -> Path:
        return self.root / "users" / check_name(user_id, "user_id") / "sessions"

    def _info(self, user_id: str, session_id: str) -> SessionInfo | None:
        bounds = read_boundaries(self.journal(user_id, session_id))
        if bounds.start is None:
            return None  # no committed start: never issued (or its start was torn by a crash)
        ended = SessionEvent.from_record(bounds.end) if bounds.end is not None else None
        return SessionInfo(session_id, user_id, SessionEvent.from_record(bounds.start), ended)

    def sessions(self, user_id: str) -> tuple[SessionInfo, ...]:
        """Every started session of a user, oldest first."""
        directory = self._sessions_dir(user_id)
        if not directory.is_dir():
            return ()
        found = []
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".jsonl") or not _name_ok(name[: -len(".jsonl")]):
                continue
            info = self._info(user_id, name[: -len(".jsonl")])
            if info is not None:
                found.append(info)
        return tuple(sorted(found, key=lambda i: (i.started.timestamp, i.session_id)))

    def active_session(self, user_id: str) -> str | None:
        """The user's active session id, or None."""
        active = [i.session_id for i in self.sessions(user_id) if i.ended is None]
        return active[-1] if active else None

    def owner_of(self, session_id: str) -> str:
        """The user a session was started for (SessionNotFound if it never was)."""
        check_name(session_id, "session_id")
        users = self.root / "users"
        if users.is_dir():
            for user_id in sorted(os.listdir(users)):
                if _name_ok(user_id) and self._info(user_id, session_id) is not None:
                    return user_id
        raise SessionNotFound(f"no session {session_id!r} was started under {self.root}")

    # -- changes ----------------------------------------------------------------------------
    def _lock(self, user_id: str) -> FileLock:
        directory = ensure_directory(self.root / "users" / user_id)
        return FileLock(str(directory / ".lock"))

    def _event(self, event: str, user_id: str, session_id: str, performer_id: str) -> SessionEvent:
        return SessionEvent(SESSION_SOURCE, event, user_id, session_id, utc_timestamp(), new_record_id(), performer_id)

    def start(self, user_id: str, performer_id: str | None = None) -> SessionEvent:
        """Start a session for ``user_id``; ActiveSessionExists if the user has one.

        ``performer_id`` (who starts it) is required: its default only makes
        a missing one an InvalidSessionArgument rather than a TypeError.
        """
        check_name(user_id, "user_id")
        check_performer(performer_id)
        with self._lock(user_id):
            active = self.active_session(user_id)
            if active is not None:
                raise ActiveSessionExists(
                    f"user {user_id!r} already has active session {active!r} under {self.root}; end it first"
                )
            session_id = SESSION_ID_PREFIX + uuid.uuid4().hex
            ensure_directory(self._sessions_dir(user_id))
            event = self._event("start", user_id, session_id, performer_id)
            self.recorder.append(user_id, session_id, event.to_record())
            return event

    def end(self, user_id: str, session_id: str, performer_id: str | None = None) -> SessionEvent:
        """End ``session_id``, which must be ``user_id``'s and still active."""
        check_name(user_id, "user_id")
        check_name(session_id, "session_id")
        check_performer(performer_id)
        if self._info(user_id, session_id) is None:
            self.owner_of(session_id)  # SessionNotFound if nobody has it
            raise SessionUserMismatch(f"session {session_id!r} belongs to another user, not to {user_id!r}")
        with self._lock(user_id):
            info = self._info(user_id, session_id)
            if info.ended is not None:
                raise SessionAlreadyClosed(
                    f"session {session_id!r} of user {user_id!r} already ended at {info.ended.timestamp} "
                    f"(by {info.ended.performer_id!r})"
                )
            event = self._event("end", user_id, session_id, performer_id)
            self.recorder.append(user_id, session_id, event.to_record())
            return event

    def close_by_system(self, session_id: str) -> SessionEvent:
        """End a session on the system's behalf (``performer_id="system"``), e.g. after a timeout."""
        return self.end(self.owner_of(session_id), session_id, SYSTEM)


def _name_ok(name: str) -> bool:
    try:
        check_name(name, "user_id")
    except InvalidSessionArgument:
        return False
    return True
