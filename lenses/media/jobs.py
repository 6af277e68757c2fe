"""Job plans: everything a media job will do, computed purely from its frame.

``plan_job(kind, draft, spec, frame_index)`` gives a ``JobPlan`` — engine,
exact argv, final and temporary output paths, or the validation error that
stops the job before it starts. ``describe`` shows it; the lens runs exactly
it (``execute.run_plan``), so the argv in the plan is the argv that runs.
Nothing here touches the file system except to ask the engine binary for its
version (cached per binary).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import attrs
from pyrsistent import PMap, thaw

from .argv import (
    UNINDEXED_CONTAINERS,
    audio_argv,
    probe_argv,
    proxy_argv,
    scaled_size,
    thumbnail_argv,
)
from .codecs import (
    AUDIO_CODECS,
    MXF_FRAME_RATES,
    OPUS_LAYOUTS,
    PROXY_AUDIO,
    PROXY_AUDIO_MAX_CHANNELS,
    VIDEO_CODECS,
)
from .errors import MediaLensError, SpecError
from .mediainfo import audio_streams_with_sound, display_size, first_stream, is_vfr, looks_unindexed
from .naming import final_path, render_stem, source_tokens
from .posters import hold_last_for, poster_time, video_span
from .specs import AudioSpec, ProbeSpec, ProxySpec, ThumbnailSpec

__all__ = ["JobPlan", "plan_job", "output_paths", "source_index", "SPEC_CLASSES"]

SPEC_CLASSES = {"probe": ProbeSpec, "proxy": ProxySpec, "thumbnail": ThumbnailSpec, "audio": AudioSpec}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@attrs.frozen
class JobPlan:
    """One job, fully decided. ``error`` set means it fails validation and never runs."""

    kind: str
    spec: Any = None
    engine: str = ""
    engine_path: str = ""
    argv: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    source: Any = None  # the frame's payload as a plain dict
    error: str | None = None
    index: int = 0  # the clip's position in the carrier it was ingested from ({index}, payload "source_index")

    def describe(self) -> dict[str, Any]:
        """The plan as shown before anything runs (JSON-like)."""
        if self.error is not None:
            shown: dict[str, Any] = {"error": self.error}
            if self.engine:
                shown["engine"] = self.engine
            if self.argv:
                shown["argv"] = list(self.argv)
            return shown
        return {"engine": self.engine, "argv": list(self.argv), "outputs": list(self.outputs)}


def output_paths(described: Mapping[str, Any]) -> tuple[str, ...]:
    """The final output paths a ``describe`` result names (none for an error)."""
    if not described or "error" in described:
        return ()
    return tuple(described.get("outputs", ()))


def _coerce_spec(kind: str, params: Any) -> Any:
    cls = SPEC_CLASSES[kind]
    if params is None and kind == "probe":
        return ProbeSpec()
    if isinstance(params, cls):
        return params
    if isinstance(params, Mapping):
        return cls.from_dict(thaw(params) if isinstance(params, PMap) else params)
    raise SpecError(f"media.{kind} needs a {cls.__name__} (or a mapping of its fields), got {type(params).__name__}")


def _frame_source(draft: Any) -> dict[str, Any]:
    """The frame's payload as a plain dict, checked to describe one media file."""
    payload = getattr(draft, "payload", None)
    if draft is None or not isinstance(payload, PMap):
        got = "no draft" if draft is None else f"a draft whose payload is {type(payload).__name__}"
        raise SpecError(f"a media job needs a media draft (drafts.media_draft(path) or a media.probe output), got {got}")
    missing = [k for k in ("path", "size", "fingerprint") if k not in payload]
    if missing:
        raise SpecError(
            f"the frame draft is not a media draft: payload has no {missing} (keys: {sorted(payload)}); "
            "make frames with drafts.media_draft(path)"
        )
    path, size = payload["path"], payload["size"]
    if not isinstance(path, str) or not os.path.isabs(path) or os.path.normpath(path) != path:
        raise SpecError(f"payload['path'] must be an absolute, normalized path, got {path!r}")
    if _CONTROL.search(path):
        raise SpecError(f"payload['path'] {path!r} holds control characters; rename the file")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise SpecError(f"payload['size'] must be a byte count, got {size!r}")
    if size == 0:
        raise SpecError(f"{path}: the file is empty (0 bytes), so it holds no media")
    return thaw(payload)


def _mxf_rate_ok(fps: float) -> bool:
    return any(abs(fps - num / den) <= 0.001 * num / den for num, den in MXF_FRAME_RATES)


def _rates_text() -> str:
    return ", ".join(f"{num / den:.3f}".rstrip("0").rstrip(".") for num, den in MXF_FRAME_RATES)


def _probed_check(kind: str, spec: Any, source: dict[str, Any]) -> None:
    """What FFmpeg would refuse and the source's probe already shows fails validation here, before any run.

    Only frames that carry probe results (media.probe outputs) can be checked;
    a plain media draft is checked by FFmpeg's own run.
    """
    if not isinstance(source.get("streams"), list):
        return
    video = first_stream(source, "video")
    sound = audio_streams_with_sound(source)
    name = source["path"]
    if kind in ("proxy", "thumbnail") and video is None:
        raise SpecError(f"{name}: the source has no video stream (probed streams: "
                        f"{[s.get('codec_type') for s in source['streams']]}); use media.audio for its sound")
    if kind == "audio" and not sound:
        raise SpecError(f"{name}: the source has no audio stream with sound (probed streams: "
                        f"{[s.get('codec_type') for s in source['streams']]})")
    if kind == "proxy":
        _probed_proxy(spec, source, video, sound, name)
    if kind == "audio":
        _probed_audio(spec, sound[0], name)
    if kind == "thumbnail":
        poster_time(spec, source)  # a time_offset at or past the video's end: SpecError


def mxf_rate_problem(video: dict | None, name: str) -> str | None:
    """Why MXF cannot carry this video stream's frame rate (same-as-source), or None."""
    if not video:
        return None
    fps = video.get("r_frame_rate") if is_vfr(video) else video.get("frame_rate")
    if fps and not _mxf_rate_ok(fps):
        return (f"{name}: the source runs at {fps:g} fps, which MXF cannot carry (it takes {_rates_text()} fps); "
                "use fps_mode='explicit' with one of those, or container mov/mkv")
    return None


def _probed_proxy(spec: ProxySpec, source: dict, video: dict, sound: list[dict], name: str) -> None:
    if display_size(video) is not None:
        width, height = scaled_size(spec.resolution, *display_size(video))
        low_w, low_h = VIDEO_CODECS[spec.codec].min_size
        if width < low_w or height < low_h:
            raise SpecError(f"{name}: resolution {spec.resolution!r} gives {width}x{height}; "
                            f"{spec.codec} needs at least {low_w}x{low_h}")
    if spec.container == "mxf" and spec.fps_mode == "same-as-source":
        problem = mxf_rate_problem(video, name)
        if problem is not None:
            raise SpecError(problem)
    if spec.audio and spec.container == "mp4":  # its audio is AAC at the source's rate
        for stream in sound:
            problem = _rate_problem("aac", stream, name, "use container mov or mkv (PCM), or audio=False")
            if problem is not None:
                raise SpecError(problem)
    most = PROXY_AUDIO_MAX_CHANNELS.get(spec.container)
    if spec.audio and most is not None:
        for stream in sound:
            if stream.get("channels") and stream["channels"] > most:
                raise SpecError(f"{name}: audio stream {stream['index']} has {stream['channels']} channels; "
                                f"{PROXY_AUDIO[spec.container][1]} in {spec.container} takes at most {most} "
                                "(channel layout): use container mov or mkv (PCM), or audio=False")


def _rate_problem(codec_name: str, stream: dict, name: str, fix: str) -> str | None:
    """A source rate the codec cannot carry: FFmpeg would resample it unasked and the output would not match."""
    rates = AUDIO_CODECS[codec_name].sample_rates
    rate = stream.get("sample_rate")
    if rates is None or not rate or rate in rates:
        return None
    return (f"{name}: audio stream {stream['index']} is {rate} Hz; {codec_name} takes only "
            f"{', '.join(str(r) for r in rates)} Hz: {fix}")


def _probed_audio(spec: AudioSpec, stream: dict, name: str) -> None:
    codec = AUDIO_CODECS[spec.codec]
    if spec.sample_rate == "same" and codec.same_rate_ok:
        problem = _rate_problem(spec.codec, stream, name, "set sample_rate to one of them, or use codec flac/pcm")
        if problem is not None:
            raise SpecError(problem)
    if spec.channels != "same":
        return
    channels, layout = stream.get("channels"), stream.get("channel_layout")
    if channels and channels > codec.max_channels:
        raise SpecError(f"{name}: the audio has {channels} channels ({layout}); {spec.codec} takes at most "
                        f"{codec.max_channels}: set channels = {codec.max_channels} (a downmix)")
    if spec.codec == "opus" and layout and channels and layout not in OPUS_LAYOUTS:
        raise SpecError(f"{name}: Opus cannot carry the channel layout {layout!r} (it takes {', '.join(OPUS_LAYOUTS)}):"
                        f" set channels = {channels} (written as the standard layout) or 2, or use codec flac/pcm")


def _sound(source: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The source's audio streams with sound, in stream order, when a probe says; None if unknown."""
    if not isinstance(source.get("streams"), list):
        return None
    return audio_streams_with_sound(source)


def _indexes(sound: list[dict[str, Any]] | None) -> tuple[int, ...] | None:
    return None if sound is None else tuple(s["index"] for s in sound)


def _tokens(kind: str, spec: Any, source: dict[str, Any], index: int) -> dict[str, Any]:
    tokens: dict[str, Any] = {**source_tokens(source["path"]), "index": index}
    if kind == "proxy":
        tokens.update(codec=spec.codec, resolution=spec.resolution)
    elif kind == "thumbnail":
        tokens.update(codec=spec.image_format, resolution=spec.size)
    else:
        tokens["codec"] = spec.codec
    return tokens


def _thumbnail_argv(spec: ThumbnailSpec, engine_path: str, source: dict[str, Any]) -> list[str]:
    """The poster's argv: the time ``posters.poster_time`` gives, on the timeline FFmpeg seeks on.

    An input seek counts from the clip's start; a seek by decoding (containers
    without an index) from the first frame of the video, the only stream the
    run reads (FFmpeg starts a run's timeline at the earliest stream it uses).
    A plain media draft names no container: its first bytes say whether it
    has an index (``mediainfo.looks_unindexed``), and without a probe the
    video's start is not known, so such a poster counts from its first frame.
    """
    when = poster_time(spec, source)
    container = source.get("container")
    by_decoding = container in UNINDEXED_CONTAINERS if container else looks_unindexed(source["path"])
    offset = round(when - video_span(source).start, 6) if by_decoding else when
    return thumbnail_argv(spec, engine_path, source["path"], offset, seek_by_decoding=by_decoding,
                          hold_last=hold_last_for(source, offset))


def source_index(source: dict[str, Any], frame_index: int | None) -> int:
    """``{index}``: the clip's position in the carrier it was ingested from.

    A frame that is itself a media lens output (a probe of the clip, say)
    carries that position as ``source_index``; a plain media draft is at its
    own frame's position. So a failed probe never renumbers later posters.
    """
    carried = source.get("source_index")
    if isinstance(carried, int) and not isinstance(carried, bool) and carried >= 0:
        return carried
    return frame_index or 0


def plan_job(kind: str, draft: Any, params: Any, frame_index: int | None) -> JobPlan:
    """The plan of one media job; never raises for a bad frame or spec (``error`` says why)."""
    spec = engine = None
    try:
        spec = _coerce_spec(kind, params)
        engine = spec.engine()
        if kind != "probe":
            spec.validate()
        source = _frame_source(draft)
        index = source_index(source, frame_index)
        _probed_check(kind, spec, source)
        path = source["path"]
        if kind == "probe":
            return JobPlan(kind, spec, engine.identity, engine.path, tuple(probe_argv(engine.path, path)),
                           source=source, index=index)
        stem = render_stem(spec.naming_template, _tokens(kind, spec, source, index))
        final = final_path(spec.output_directory, stem, spec.extension)
        if final == path:
            raise SpecError(f"the output {final} would overwrite its own source; change naming_template or output_directory")
        if kind == "proxy":
            argv = proxy_argv(spec, engine.path, path, _indexes(_sound(source)))
        elif kind == "thumbnail":
            argv = _thumbnail_argv(spec, engine.path, source)
        else:
            sound = _sound(source)  # an audio job reads the first; its rate decides FLAC's block size
            argv = audio_argv(spec, engine.path, path, _indexes(sound), sound[0].get("sample_rate") if sound else None)
        return JobPlan(kind, spec, engine.identity, engine.path, tuple(argv), (final,), source, index=index)
    except MediaLensError as exc:  # a bad spec, engine or name: the job fails validation
        return JobPlan(kind, spec, engine.identity if engine else "", engine.path if engine else "", error=str(exc))
