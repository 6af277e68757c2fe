"""Errors of the media lenses; each also subclasses the matching builtin.

A media *job* never raises for a media problem: it returns a FAILED
ExecutionResult. These errors are for specs and engines, before any job.
"""

from __future__ import annotations

from ..errors import LensError

__all__ = ["MediaLensError", "SpecError", "EngineError", "NamingError"]


class MediaLensError(LensError):
    """Root of media-lens errors."""


class SpecError(MediaLensError, ValueError):
    """A job spec is malformed or asks for something the engine cannot do."""


class EngineError(MediaLensError, ValueError):
    """The FFmpeg binary is missing, not runnable, or not the version asked for."""


class NamingError(MediaLensError, ValueError):
    """A naming template gives no usable file name inside the output directory."""
