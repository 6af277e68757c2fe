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
