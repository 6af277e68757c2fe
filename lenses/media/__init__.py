"""Media lenses: FFmpeg once per frame, from immutable job specs, verified.

``probe`` (Meta), ``proxy`` (Video), ``thumbnail`` (Video) and ``audio``
(Audio) take a media draft (``drafts.media.media_draft``) or a probe output as
their frame and return an ExecutionResult. Argv is a pure function of spec,
engine and source (``describe`` shows it); ``run`` is the only module that
starts processes. See DETERMINISM.md for which outputs are byte-identical.
"""

from .engine import FFmpegEngine
from .errors import EngineError, MediaLensError, NamingError, SpecError
from .jobs import output_paths
from .lenses import MEDIA_LENSES, audio, probe, proxy, thumbnail
from .specs import AudioSpec, ProbeSpec, ProxySpec, ThumbnailSpec

__all__ = [
    "MEDIA_LENSES",
    "AudioSpec",
    "EngineError",
    "FFmpegEngine",
    "MediaLensError",
    "NamingError",
    "ProbeSpec",
    "ProxySpec",
    "SpecError",
    "ThumbnailSpec",
    "audio",
    "output_paths",
    "probe",
    "proxy",
    "thumbnail",
]
