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
