"""Errors of the media lenses; each also subclasses the matching builtin.

A media *job* never raises for a media problem: it returns a FAILED
ExecutionResult. These errors are for specs and engines, before any job.
"""

from __future__ import annotations

from ..errors import LensError

__all__ = ["MediaLensError", "SpecError", "EngineError", "NamingError", "NotWhole", "NotReadHere"]


class MediaLensError(LensError):
    """Root of media-lens errors."""


class SpecError(MediaLensError, ValueError):
    """A job spec is malformed or asks for something the engine cannot do."""


class EngineError(MediaLensError, ValueError):
    """The FFmpeg binary is missing, not runnable, or not the version asked for."""


class NamingError(MediaLensError, ValueError):
    """A naming template gives no usable file name inside the output directory."""


class NotWhole(MediaLensError, ValueError):
    """A file draftlens wrote is not a whole file of its format (cut, empty, malformed).

    Raised by the in-process readers of written outputs (``lenses.media.written``);
    the job turns it into a ``verification`` failure. ``str()`` says what is
    wrong and where (box, element or chunk, byte offset).
    """


class NotReadHere(Exception):
    """An in-process reader does not read this file (a format or feature it leaves to FFmpeg).

    Not an error: the job falls back to FFmpeg's own header read of the file,
    the deliberate, documented case of ``lenses.media.written``.
    """
