"""Errors of the authoritative side. Each is also the matching builtin, so a
caller may catch ``ValueError`` without importing draftlens."""


class DraftError(ValueError):
    """A value cannot become (part of) a draft.

    ``path`` says where the bad value sits, e.g. ``payload['clips'][2]``.
    """

    def __init__(self, message: str, path: str = ""):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


class StoreError(ValueError):
    """A store operation was refused; the store it was called on is unchanged."""


class JournalError(ValueError):
    """Root of journal errors: a record that cannot be written, or a journal that cannot be read."""


class RecordTooLarge(JournalError):
    """A record is larger than the recorder's per-record limit; nothing was written."""

    def __init__(self, size: int, limit: int, what: str = "record"):
        super().__init__(
            f"{what} is {size} bytes, over the journal's limit of {limit} bytes per record; nothing was written "
            "(store big content in a file, e.g. with media_draft, or raise Recorder(max_record_bytes=...))"
        )
        self.size, self.limit, self.what = size, limit, what

    def __reduce__(self):
        return type(self), (self.size, self.limit, self.what)


class JournalCorrupt(JournalError):
    """A journal holds damage other than a torn last line; ``path`` and 1-based ``line`` say where."""

    def __init__(self, path: str, line: int, problem: str):
        super().__init__(f"{path}:{line}: {problem}")
        self.path, self.line, self.problem = str(path), line, problem

    def __reduce__(self):
        return type(self), (self.path, self.line, self.problem)


class JournalSchemeError(JournalError):
    """A journal's drafts were named with another id scheme than this draftlens uses.

    Its ids cannot be checked here, so it is refused as a whole; it is not
    damaged. ``path``, ``scheme`` (the journal's) and ``expected`` (ours).
    """

    def __init__(self, path: str, scheme: object, expected: str):
        super().__init__(
            f"{path}: its drafts were named with id scheme {scheme!r}, and this draftlens makes ids with "
            f"{expected!r}; the journal is not damaged, but its ids cannot be checked here: open it with a "
            f"draftlens that uses {scheme!r}"
        )
        self.path, self.scheme, self.expected = str(path), scheme, expected

    def __reduce__(self):
        return type(self), (self.path, self.scheme, self.expected)


class SessionError(Exception):
    """Root of work-session errors."""


class InvalidSessionArgument(SessionError, ValueError):
    """A user id, session id or performer id that cannot be used (empty, a path escape...)."""


class SessionNotFound(SessionError, LookupError):
    """No session with that id was ever started under this root."""


class SessionUserMismatch(SessionError, PermissionError):
    """The session belongs to another user."""


class SessionAlreadyClosed(SessionError):
    """The session has already ended; nothing more can be recorded in it."""


class ActiveSessionExists(SessionError):
    """The user already has an active session (one at a time; end it first)."""


class UnsafeJournalPath(JournalError):
    """Something under ``<root>/users`` is a symbolic link, or not the kind of file expected.

    Nothing there is followed as a link (a link could send one user's records
    into another user's journal, or anywhere else); ``path`` names the entry.
    """

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}; nothing under <root>/users is followed as a link, move it away")
        self.path, self.problem = str(path), problem

    def __reduce__(self):
        return type(self), (self.path, self.problem)


class SessionInUse(SessionError):
    """Another workspace is writing to this session (one writer per active session).

    ``holder`` is what the writer recorded when it took the session:
    ``performer_id``, ``host``, ``pid`` and ``since`` (UTC timestamp).
    """

    def __init__(self, user_id: str, session_id: str, holder: dict):
        who = (f"performer {holder.get('performer_id')!r} on host {holder.get('host')!r}, pid {holder.get('pid')}, "
               f"since {holder.get('since')}")
        super().__init__(
            f"session {session_id!r} of user {user_id!r} is in use by another workspace ({who}); "
            "one writer per session: close() or detach() that workspace (or end its process) and open again"
        )
        self.user_id, self.session_id, self.holder = user_id, session_id, dict(holder)

    def __reduce__(self):
        return type(self), (self.user_id, self.session_id, self.holder)


class SessionDamaged(SessionError):
    """The user's active session has a damaged journal; new work for that user waits until it is set aside.

    ``path``, ``line`` and ``problem`` say where and what (as JournalCorrupt
    does). A damaged *closed* session never raises this: it is only listed.
    """

    def __init__(self, user_id: str, session_id: str, path: str, line: int | None, problem: str):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(
            f"{where}: the active session {session_id!r} of user {user_id!r} has a damaged journal: {problem}. "
            f"Set it aside (the file is renamed to {session_id}.jsonl.damaged and kept) with "
            f"`draftlens sessions set-aside {session_id} --user {user_id} --root <root>` or "
            f"SessionManager(root).set_aside({user_id!r}, {session_id!r}); then new work can start"
        )
        self.user_id, self.session_id, self.path, self.line, self.problem = user_id, session_id, str(path), line, problem

    def __reduce__(self):
        return type(self), (self.user_id, self.session_id, self.path, self.line, self.problem)
