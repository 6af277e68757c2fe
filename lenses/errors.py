"""Errors of the lens layer; each also subclasses the matching builtin."""


class LensError(Exception):
    """Root of lens-layer errors."""


class LensDefinitionError(LensError, TypeError):
    """``@lens`` was given something it cannot turn into a lens."""


class DuplicateLensError(LensError, ValueError):
    """A registry already holds another lens with that id."""


class UnknownLensError(LensError, KeyError):
    """A registry holds no lens with that id.

    ``lens_id`` is the id asked for; ``suggestion`` the nearest known id, or None.
    """

    def __init__(self, message: str, *, lens_id: str | None = None, suggestion: str | None = None):
        super().__init__(message)
        self.lens_id = lens_id
        self.suggestion = suggestion

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ParamsError(LensError, ValueError):
    """Stored params do not fit the lens's params class.

    ``path`` is the key path inside the params (``("templat",)``, ``()`` for
    the params as a whole) and ``problem`` one readable line, so a caller can
    name its own location: ``lenses[1].params.templat: unknown param; ...``.
    """

    def __init__(self, message: str, *, lens_id: str | None = None, path: tuple = (), problem: str | None = None):
        super().__init__(message)
        self.lens_id = lens_id
        self.path = tuple(path)
        self.problem = problem if problem is not None else message
