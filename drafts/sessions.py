"""Work sessions: start and end events, one active session per user.

The manager makes every boundary event itself (UTC millisecond timestamp,
fresh UUIDv4 record id, ``source="session_manager"``) and hands it to the
recorder: it creates session directories but never opens a journal file
(``drafts.journal`` reads and writes them). Which sessions are active is read
back from the journals (a start event and no end event), so it survives
restarts and there is no second record to disagree with. A per-user file lock
(``<root>/users/<user_id>/.lock``, ``drafts.locks``) makes check-then-append
atomic across the threads and processes that share the root; state changes
only when the append succeeded, because the append *is* the state.

One writer per active session: ``resume_or_start`` hands out a
``WriterLease`` (a lock the kernel drops if its holder dies); a second writer
is refused with SessionInUse naming the first. A damaged journal never locks
a user out: a damaged *closed* session is listed (``SessionInfo.damage``),
and a damaged *active* one raises SessionDamaged, which says how to set it
aside (``set_aside``). The session errors are importable from here.

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

from .errors import (
    ActiveSessionExists,
    InvalidSessionArgument,
    JournalCorrupt,
    JournalError,
    SessionAlreadyClosed,
    SessionDamaged,
    SessionError,
    SessionInUse,
    SessionNotFound,
    SessionUserMismatch,
    UnsafeJournalPath,
)
from .journal import (
    SESSION_SOURCE,
    Recorder,
    _record_problem,
    check_name,
    check_performer,
    journal_path,
    list_user_dir,
    new_record_id,
    read_session,
    rename_user_file,
    replay_session,
    session_boundaries,
    session_end_despite_damage,
    users_dir,
    utc_timestamp,
)
from .locks import UserLock, WriterLease

__all__ = [
    "SYSTEM",
    "ActiveSessionExists",
    "InvalidSessionArgument",
    "SessionAlreadyClosed",
    "SessionDamaged",
    "SessionError",
    "SessionEvent",
    "SessionInUse",
    "SessionInfo",
    "SessionManager",
    "SessionNotFound",
    "SessionUserMismatch",
    "WriterLease",
]

SYSTEM = "system"
SESSION_ID_PREFIX = "sess_"
SET_ASIDE_SUFFIX = ".damaged"


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
    """One session of a user, as its journal tells it.

    ``damage`` is the JournalError met reading its boundaries (then
    ``started`` may be None); such a session is ``closed`` when its last line
    is still a valid end event, else it counts as active (and damaged).
    """

    session_id: str
    user_id: str
    started: SessionEvent | None
    ended: SessionEvent | None
    damage: JournalError | None = None

    @property
    def status(self) -> str:
        """``"active"``, ``"closed"`` or ``"damaged"`` (see ``closed`` for a damaged one)."""
        if self.damage is not None:
            return "damaged"
        return "active" if self.ended is None else "closed"

    @property
    def closed(self) -> bool:
        return self.ended is not None

    @property
    def damage_line(self) -> int | None:
        return getattr(self.damage, "line", None)


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

    def _info(self, user_id: str, session_id: str, is_file: bool = True) -> SessionInfo | None:
        """The session, damaged or not; None if it has no committed start and no damage."""
        try:
            if not is_file:
                raise UnsafeJournalPath(str(self.journal(user_id, session_id)), "is not a regular file")
            bounds = session_boundaries(self.root, user_id, session_id)
        except (JournalCorrupt, UnsafeJournalPath) as damage:
            end = session_end_despite_damage(self.root, user_id, session_id) if is_file else None
            ended = SessionEvent.from_record(end) if end is not None else None
            return SessionInfo(session_id, user_id, None, ended, damage)
        if bounds.start is None:
            return None  # no committed start: never issued (or its start was torn by a crash)
        ended = SessionEvent.from_record(bounds.end) if bounds.end is not None else None
        return SessionInfo(session_id, user_id, SessionEvent.from_record(bounds.start), ended)

    def sessions(self, user_id: str) -> tuple[SessionInfo, ...]:
        """Every session of a user, oldest first; damaged ones (``status == "damaged"``) last.

        Never raises for a damaged journal: that is what ``SessionInfo.damage`` is for.
        """
        check_name(user_id, "user_id")
        found = []
        for name, is_file in list_user_dir(self.root, (user_id, "sessions")):
            if not name.endswith(".jsonl") or not _name_ok(name[: -len(".jsonl")]):
                continue
            info = self._info(user_id, name[: -len(".jsonl")], is_file)
            if info is not None:
                found.append(info)
        return tuple(sorted(found, key=lambda i: (i.started is None, i.started.timestamp if i.started else "",
                                                  i.session_id)))

    def active_session(self, user_id: str) -> str | None:
        """The user's active session id, or None.

        SessionDamaged if the user's active session has a damaged journal
        (damaged closed sessions do not count).
        """
        sessions = self.sessions(user_id)
        for info in sessions:
            if info.damage is not None and not info.closed:
                raise SessionDamaged(user_id, info.session_id, getattr(info.damage, "path", ""),
                                     info.damage_line, getattr(info.damage, "problem", str(info.damage)))
        active = [i.session_id for i in sessions if i.ended is None]
        return active[-1] if active else None

    def owner_of(self, session_id: str) -> str:
        """The user a session was started for (SessionNotFound if it never was)."""
        check_name(session_id, "session_id")
        try:
            fd = users_dir(self.root, ())
        except (FileNotFoundError, UnsafeJournalPath):
            fd = None
        if fd is not None:
            os.close(fd)
            for user_id, _ in list_user_dir(self.root, ()):
                if not _name_ok(user_id):
                    continue
                try:
                    os.close(users_dir(self.root, (user_id, "sessions")))
                except (FileNotFoundError, UnsafeJournalPath):
                    continue  # no sessions, or not a real directory (a link is never followed)
                if self._info(user_id, session_id) is not None:
                    return user_id
        raise SessionNotFound(f"no session {session_id!r} was started under {self.root}")

    # -- changes ----------------------------------------------------------------------------
    def _lock(self, user_id: str) -> UserLock:
        return UserLock(self.root, user_id)

    def _event(self, event: str, user_id: str, session_id: str, performer_id: str) -> SessionEvent:
        return SessionEvent(SESSION_SOURCE, event, user_id, session_id, utc_timestamp(), new_record_id(), performer_id)

    def start(self, user_id: str, performer_id: str | None = None) -> SessionEvent:
        """Start a session for ``user_id``; ActiveSessionExists if the user has one.

        ``performer_id`` (who starts it) is required: its default only makes
        a missing one an InvalidSessionArgument rather than a TypeError.
        SessionDamaged if the user's active session's journal is damaged.
        """
        check_name(user_id, "user_id")
        check_performer(performer_id)
        with self._lock(user_id):
            active = self.active_session(user_id)
            if active is not None:
                raise ActiveSessionExists(
                    f"user {user_id!r} already has active session {active!r} under {self.root}; end it first"
                )
            return self._start_locked(user_id, performer_id)

    def _start_locked(self, user_id: str, performer_id: str) -> SessionEvent:
        session_id = SESSION_ID_PREFIX + uuid.uuid4().hex
        os.close(users_dir(self.root, (user_id, "sessions"), create=True))
        event = self._event("start", user_id, session_id, performer_id)
        self.recorder.append(user_id, session_id, event.to_record())
        return event

    def resume_or_start(self, user_id: str, performer_id: str | None = None) -> WriterLease:
        """The user's active session (a new one if none), with its writer lease — atomically.

        Across threads and processes, one caller at a time resumes or starts;
        a second writer of an active session gets SessionInUse naming the
        holder (performer, host, pid), never ActiveSessionExists. The lease's
        ``started`` says whether the session was started here.
        """
        check_name(user_id, "user_id")
        check_performer(performer_id)
        with self._lock(user_id):
            session_id = self.active_session(user_id)
            started = session_id is None
            if started:
                session_id = self._start_locked(user_id, performer_id).session_id
            lease = WriterLease.acquire(self.root, user_id, session_id, performer_id)
        lease.started = started
        return lease

    def end(self, user_id: str, session_id: str, performer_id: str | None = None) -> SessionEvent:
        """End ``session_id``, which must be ``user_id``'s and still active.

        SessionDamaged if its journal is damaged (set it aside instead).
        """
        check_name(user_id, "user_id")
        check_name(session_id, "session_id")
        check_performer(performer_id)
        if self._info(user_id, session_id) is None:
            raise self._not_theirs(user_id, session_id)
        with self._lock(user_id):
            info = self._info(user_id, session_id)
            if info.ended is not None:
                raise SessionAlreadyClosed(
                    f"session {session_id!r} of user {user_id!r} already ended at {info.ended.timestamp} "
                    f"(by {info.ended.performer_id!r})"
                )
            if info.damage is not None:
                raise SessionDamaged(user_id, session_id, getattr(info.damage, "path", ""), info.damage_line,
                                     getattr(info.damage, "problem", str(info.damage)))
            event = self._event("end", user_id, session_id, performer_id)
            self.recorder.append(user_id, session_id, event.to_record())
            return event

    def close_by_system(self, session_id: str) -> SessionEvent:
        """End a session on the system's behalf (``performer_id="system"``), e.g. after a timeout."""
        return self.end(self.owner_of(session_id), session_id, SYSTEM)

    def set_aside(self, user_id: str, session_id: str) -> str:
        """Move a damaged session's journal out of the way: ``<id>.jsonl`` becomes ``<id>.jsonl.damaged``.

        Nothing is deleted or changed inside the file; the user can start new
        work. Refused (SessionError) for a journal that reads and replays
        cleanly: end that session instead. Returns the new file name.
        """
        check_name(user_id, "user_id")
        check_name(session_id, "session_id")
        with self._lock(user_id):
            info = self._info(user_id, session_id)
            if info is None:
                raise SessionNotFound(f"no session {session_id!r} for user {user_id!r} under {self.root}")
            if info.damage is None:
                try:
                    replay_session(self.root, user_id, session_id)
                except JournalCorrupt:
                    pass  # damaged after line 1: may be set aside
                else:
                    raise SessionError(
                        f"session {session_id!r} of user {user_id!r} is not damaged; end it instead of setting it aside"
                    )
            new_name = self._free_name(user_id, f"{session_id}.jsonl{SET_ASIDE_SUFFIX}")
            rename_user_file(self.root, (user_id, "sessions"), f"{session_id}.jsonl", new_name)
            return new_name

    def _free_name(self, user_id: str, wanted: str) -> str:
        taken = {name for name, _ in list_user_dir(self.root, (user_id, "sessions"))}
        name, n = wanted, 1
        while name in taken:
            name, n = f"{wanted}.{n}", n + 1
        return name

    def read(self, user_id: str, session_id: str):
        """Every committed record of one session's journal (``drafts.journal.JournalReadout``).

        SessionNotFound if nobody started ``session_id``, SessionUserMismatch if
        another user did; JournalError if its journal cannot be read.
        """
        try:
            return read_session(self.root, user_id, session_id)
        except FileNotFoundError:
            raise self._not_theirs(user_id, session_id) from None

    def _not_theirs(self, user_id: str, session_id: str) -> SessionError:
        """Why ``user_id`` has no session ``session_id``: the error to raise (it raises SessionNotFound itself
        if nobody ever started that session)."""
        if self.owner_of(session_id) == user_id:  # theirs a moment ago: set aside since
            return SessionNotFound(f"no session {session_id!r} for user {user_id!r} under {self.root}")
        return SessionUserMismatch(f"session {session_id!r} belongs to another user, not to {user_id!r}")


def _name_ok(name: str) -> bool:
    try:
        check_name(name, "user_id")
    except InvalidSessionArgument:
        return False
    return True
