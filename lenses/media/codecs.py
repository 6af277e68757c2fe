"""Profile tables: what each spec name means as FFmpeg encoder options.

This is the "profile resolution" of the execution invariants: every option a
job uses comes from a spec field or from these tables, and shows in the argv.
Only encoders the pinned FFmpeg has are listed (a test checks each one).
"""

from __future__ import annotations

import attrs

__all__ = [
    "VideoCodec", "AudioCodec", "Container",
    "VIDEO_CODECS", "PROXY_CONTAINERS", "PROXY_AUDIO",
    "AUDIO_CODECS", "AUDIO_CONTAINERS", "IMAGE_FORMATS",
    "THREADED_ENCODERS", "OPUS_LAYOUTS", "MXF_FRAME_RATES", "PROXY_AUDIO_FILTERS", "PROXY_AUDIO_MAX_CHANNELS",
]


@attrs.frozen
class VideoCodec:
    encoder: str
    codec_name: str  # what a probe of the output reports
    pix_fmt: str
    options: tuple[tuple[str, str], ...]
    containers: tuple[str, ...]
    min_size: tuple[int, int] = (2, 2)
    mov_tag: str | None = None  # -tag:v in mov/mp4


@attrs.frozen
class AudioCodec:
    encoder: str
    codec_name: str
    options: tuple[tuple[str, str], ...]
    containers: tuple[str, ...]
    sample_rates: tuple[int, ...] | None = None  # None: any rate the encoder takes
    max_channels: int = 8
    same_rate_ok: bool = True  # False: the stream always decodes at a fixed rate (Opus: 48 kHz)


@attrs.frozen
class Container:
    muxer: str  # -f
    extension: str


def _prores(profile: int, pix_fmt: str = "yuv422p10le") -> VideoCodec:
    return VideoCodec("prores_ks", "prores", pix_fmt, (("profile:v", str(profile)), ("vendor", "apl0")),
                      ("mov", "mkv", "mxf"))


def _dnxhr(profile: str) -> VideoCodec:
    # DNxHR takes 8-bit 4:2:2 and refuses frames under 256x120 (measured).
    return VideoCodec("dnxhd", "dnxhd", "yuv422p", (("profile:v", profile),), ("mov", "mkv", "mxf"), (256, 120))


VIDEO_CODECS: dict[str, VideoCodec] = {
    "prores_proxy": _prores(0),
    "prores_lt": _prores(1),
    "prores_standard": _prores(2),
    "prores_hq": _prores(3),
    "prores_4444": _prores(4, "yuv444p10le"),
    "dnxhr_lb": _dnxhr("dnxhr_lb"),
    "dnxhr_sq": _dnxhr("dnxhr_sq"),
    "dnxhr_hq": _dnxhr("dnxhr_hq"),
    "h264": VideoCodec("libx264", "h264", "yuv420p", (("preset", "veryfast"), ("crf", "23")), ("mov", "mp4", "mkv")),
    "hevc": VideoCodec("libx265", "hevc", "yuv420p", (("preset", "ultrafast"), ("crf", "28")), ("mov", "mp4", "mkv"),
                       mov_tag="hvc1"),
    "vp9": VideoCodec("libvpx-vp9", "vp9", "yuv420p",
                      (("deadline", "realtime"), ("cpu-used", "8"), ("crf", "35"), ("b:v", "0"), ("row-mt", "0")),
                      ("webm", "mkv", "mp4")),
    "av1": VideoCodec("libsvtav1", "av1", "yuv420p", (("preset", "12"), ("crf", "40")), ("webm", "mkv", "mp4")),
}

# Encoders whose bytes depend on their thread count: the spec's ``threads``
# is passed to them (and to x265 as pools/frame-threads, which it ignores
# -threads for). See DETERMINISM.md.
THREADED_ENCODERS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1")

PROXY_CONTAINERS: dict[str, Container] = {
    "mov": Container("mov", "mov"),
    "mp4": Container("mp4", "mp4"),
    "mkv": Container("matroska", "mkv"),
    "mxf": Container("mxf", "mxf"),
    "webm": Container("webm", "webm"),
}

# The audio a proxy carries (every source audio stream, when spec.audio):
# PCM where the container takes it (MXF: PCM at 48 kHz only), AAC in MP4,
# Opus (48 kHz) in WebM.
PROXY_AUDIO: dict[str, tuple[str, str, tuple[tuple[str, str], ...], int | None]] = {
    # container: (encoder, codec_name, options, forced sample rate)
    "mov": ("pcm_s16le", "pcm_s16le", (), None),
    "mkv": ("pcm_s16le", "pcm_s16le", (), None),
    "mxf": ("pcm_s16le", "pcm_s16le", (), 48000),
    "mp4": ("aac", "aac", (("b:a", "192k"),), None),
    "webm": ("libopus", "opus", (("b:a", "128k"),), 48000),
}

# libopus writes only the layouts of Opus's channel mapping family 1 (RFC 7845 §5.1.1.2); FFmpeg
# refuses the rest ("Invalid channel layout 5.1(side)"), which AC3/E-AC3/DTS sources decode to (measured).
OPUS_LAYOUTS = ("mono", "stereo", "3.0", "quad", "5.0", "5.1", "6.1", "7.1")

# Frame rates the MXF muxer accepts (measured on the pinned FFmpeg: 12 and 15 fps are refused,
# "Unsupported frame rate"); as (numerator, denominator).
MXF_FRAME_RATES = ((24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (48, 1), (50, 1), (60000, 1001),
                   (60, 1), (100, 1), (120, 1))

# Filters a proxy's audio goes through, per container, so that every source layout is writable:
# Opus in WebM takes the nearest layout it can carry (5.1(side) -> 5.1). (MXF's audio is made to
# end with the video in the filter graph instead: argv._mxf_padded.)
PROXY_AUDIO_FILTERS: dict[str, str] = {
    "webm": "aformat=channel_layouts=" + "|".join(OPUS_LAYOUTS),
}

# Most channels a proxy's audio codec takes (PCM: no limit that matters here).
PROXY_AUDIO_MAX_CHANNELS = {"mp4": 8, "webm": 8}

AUDIO_CODECS: dict[str, AudioCodec] = {
    "pcm_s16le": AudioCodec("pcm_s16le", "pcm_s16le", (), ("wav", "mka")),
    "pcm_s24le": AudioCodec("pcm_s24le", "pcm_s24le", (), ("wav", "mka")),
    "flac": AudioCodec("flac", "flac", (), ("flac", "mka")),
    "alac": AudioCodec("alac", "alac", (), ("m4a", "mka")),
    # AAC's sampling-frequency table (ISO/IEC 14496-3, 1.6.3.4; 7350 is below what a spec may ask):
    # FFmpeg resamples anything else unasked.
    "aac": AudioCodec("aac", "aac", (("b:a", "192k"),), ("m4a", "mka"),
                      (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)),
    "mp3": AudioCodec("libmp3lame", "mp3", (("b:a", "192k"),), ("mp3", "mka"),
                      (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000), 2),
    "opus": AudioCodec("libopus", "opus", (("b:a", "128k"),), ("ogg", "webm", "mka"), (48000,),
                       same_rate_ok=False),
    # Quality, not a bitrate: libvorbis has no setup for 160 kb/s at 22.05 kHz mono or 96 kHz stereo
    # (exit 234, measured); -q:a 5 (about 160 kb/s at 44.1 kHz stereo) sets up at every rate and layout.
    "vorbis": AudioCodec("libvorbis", "vorbis", (("q:a", "5"),), ("ogg", "webm", "mka")),
}

AUDIO_CONTAINERS: dict[str, Container] = {
    "wav": Container("wav", "wav"),
    "flac": Container("flac", "flac"),
    "m4a": Container("ipod", "m4a"),
    "mp3": Container("mp3", "mp3"),
    "ogg": Container("ogg", "ogg"),
    "webm": Container("webm", "webm"),
    "mka": Container("matroska", "mka"),
}

# Thumbnails: image format -> (encoder, codec_name, pix_fmt, options)
IMAGE_FORMATS: dict[str, tuple[str, str, str, tuple[tuple[str, str], ...]]] = {
    "jpg": ("mjpeg", "mjpeg", "yuvj420p", (("q:v", "2"),)),
    "png": ("png", "png", "rgb24", ()),
}
