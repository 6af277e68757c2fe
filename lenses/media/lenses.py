"""The four media lenses. Each runs one job per frame and returns its ExecutionResult.

``describe`` (pure: no FFmpeg run except the cached version query, no file
touched) gives ``{"engine", "argv", "outputs"}`` or ``{"error"}``; the lens
runs exactly that plan. A lens never raises for a media problem: a bad frame
or spec is a FAILED/validation result, FFmpeg failing is FAILED/execution,
an output that does not hold what the source promised is
FAILED/verification. On success ``result.outputs`` holds one payload with
``path``, ``size``, ``fingerprint`` and the probe of the file (``container``,
``duration``, ``start_time``, ``streams``, ``timecode``).
"""

from __future__ import annotations

from typing import Any

from drafts.media import MediaError, fingerprint_file

from ..lens import FrameContext, lens
from ..result import ExecutionResult
from .execute import run_plan
from .jobs import plan_job
from .specs import AudioSpec, ProbeSpec, ProxySpec, ThumbnailSpec

__all__ = [
    "probe", "proxy", "thumbnail", "audio", "MEDIA_LENSES",
    "describe_probe", "describe_proxy", "describe_thumbnail", "describe_audio",
]


def _index(context: FrameContext | None) -> int:
    return context.frame_index if context is not None and context.frame_index is not None else 0


def describe_probe(draft: Any, params: Any, context: FrameContext | None = None) -> dict[str, Any]:
    return plan_job("probe", draft, params, _index(context)).describe()


def describe_proxy(draft: Any, params: Any, context: FrameContext | None = None) -> dict[str, Any]:
    return plan_job("proxy", draft, params, _index(context)).describe()


def describe_thumbnail(draft: Any, params: Any, context: FrameContext | None = None) -> dict[str, Any]:
    return plan_job("thumbnail", draft, params, _index(context)).describe()


def describe_audio(draft: Any, params: Any, context: FrameContext | None = None) -> dict[str, Any]:
    return plan_job("audio", draft, params, _index(context)).describe()


def outputs_still_verify(result: ExecutionResult) -> bool:
    """May an earlier COMPLETED result stand in for a run? Only if every file it
    produced is still there with the same bytes (size and fingerprint).

    The plan asks this before reusing a memoized media job, so a proxy that was
    deleted, truncated or re-encoded by hand is made again.
    """
    for payload in result.outputs:
        try:
            size, fingerprint = fingerprint_file(payload["path"])
        except (KeyError, MediaError):
            return False
        if (size, fingerprint) != (payload.get("size"), payload.get("fingerprint")):
            return False
    return True


def _reusable_when_outputs_verify(fn):
    fn.still_valid = outputs_still_verify
    return fn


# version 2: each stream carries start_time and sample_aspect_ratio
@lens("media.probe", version="2", params=ProbeSpec, job_type="Meta", describe=describe_probe)
def probe(draft: Any, params: ProbeSpec | None, context: FrameContext | None = None) -> ExecutionResult:
    """Streams, duration and container of one media file (one FFmpeg run, nothing written)."""
    return run_plan(plan_job("probe", draft, params, _index(context)))


@lens("media.proxy", version="1", params=ProxySpec, job_type="Video", describe=describe_proxy)
@_reusable_when_outputs_verify
def proxy(draft: Any, params: ProxySpec, context: FrameContext | None = None) -> ExecutionResult:
    """An editing proxy of one clip, verified against its source and published atomically."""
    return run_plan(plan_job("proxy", draft, params, _index(context)))


# version 2: times on the video's own span, the last frame held; display aspect, square pixels
@lens("media.thumbnail", version="2", params=ThumbnailSpec, job_type="Video", describe=describe_thumbnail)
@_reusable_when_outputs_verify
def thumbnail(draft: Any, params: ThumbnailSpec, context: FrameContext | None = None) -> ExecutionResult:
    """One still image of a clip, at a time offset or a fraction of its (probed) duration."""
    return run_plan(plan_job("thumbnail", draft, params, _index(context)))


@lens("media.audio", version="1", params=AudioSpec, job_type="Audio", describe=describe_audio)
@_reusable_when_outputs_verify
def audio(draft: Any, params: AudioSpec, context: FrameContext | None = None) -> ExecutionResult:
    """The first audio stream of a clip as one audio file."""
    return run_plan(plan_job("audio", draft, params, _index(context)))


MEDIA_LENSES = (probe, proxy, thumbnail, audio)
