"""Errors of the lens layer; each also subclasses the matching builtin."""


class LensError(Exception):
    """Root of lens-layer errors."""


class LensDefinitionError(LensError, TypeError):
    """``@lens`` was given something it cannot turn into a lens."""


class DuplicateLensError(LensError, ValueError):
    """A registry already holds another lens with that id."""


class UnknownLensError(LensError, KeyError):
    """A registry holds no lens with that id."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ParamsError(LensError, ValueError):
    """Stored params do not fit the lens's params class."""
