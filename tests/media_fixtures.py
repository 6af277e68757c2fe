"""Tiny media generated once per test session with the bundled FFmpeg (lavfi sources).

Import the fixtures into a test module (``from tests.media_fixtures import
media  # noqa: F401``). The files are made once per session whichever
modules import them (a module-level cache), in a session temp directory.
"""

from __future__ import annotations

import os
import shutil
from types import SimpleNamespace

import pytest

from lenses.media.engine import FFmpegEngine
from lenses.media.run import run_ffmpeg

__all__ = ["media", "generate_media", "MEDIA_FILES"]

_TESTSRC = "{source}=size={size}:rate={rate}:duration={duration}"
_SINE = "sine=frequency=440:sample_rate={rate}:duration={duration}"

# name -> extra argv after the lavfi inputs (inputs: 0 = video, 1 = audio when asked)
MEDIA_FILES = {
    # 160x90 h264 + stereo AAC 48 kHz, with a timecode track
    "av.mov": dict(video="160x90", audio=48000,
                   args=["-ac", "2", "-c:v", "libx264", "-threads", "1", "-c:a", "aac", "-timecode", "01:00:00:00"]),
    # 64x48 h264 + mono AAC 44.1 kHz
    "small.mp4": dict(video="64x48", audio=44100, args=["-c:v", "libx264", "-threads", "1", "-c:a", "aac"]),
    # large enough for DNxHR (>= 256x120)
    "big.mkv": dict(video="320x180", audio=48000, duration=0.5,
                    args=["-ac", "2", "-c:v", "ffv1", "-c:a", "pcm_s16le"]),
    "video_only.mkv": dict(video="64x48", args=["-c:v", "ffv1"]),
    "audio_only.wav": dict(audio=44100, args=["-c:a", "pcm_s16le"]),
    # testsrc2 rounds sizes to even; testsrc in 4:4:4 keeps 161x91
    "odd.mkv": dict(video="161x91", source="testsrc", args=["-c:v", "ffv1", "-pix_fmt", "yuv444p"]),
    # variable frame rate: 10 frames at 25 fps, then 15 at 12.5 fps
    "vfr.mp4": dict(video="160x90", args=["-vf", "setpts='if(lt(N,10),N*0.04,0.4+(N-10)*0.08)/TB'",
                                           "-fps_mode", "vfr", "-c:v", "libx264", "-threads", "1"]),
    # a 4 s clip whose second half is cut off below (header still says 4 s)
    "long.mkv": dict(video="64x48", audio=48000, duration=4, args=["-c:v", "ffv1", "-c:a", "pcm_s16le"]),
    # a phone-style clip: 160x90 coded, displayed rotated by 90 degrees
    "rotated.mp4": dict(video="160x90", pre=["-display_rotation:v:0", "90"], two_step=True,
                        args=["-c:v", "libx264", "-threads", "1"]),
}


def _make(binary: str, directory: str, name: str, recipe: dict) -> str:
    path = os.path.join(directory, name)
    duration = recipe.get("duration", 1)
    argv = [binary, "-hide_banner", "-nostdin", "-v", "error", "-y"]
    if recipe.get("video"):
        argv += ["-f", "lavfi", "-i", _TESTSRC.format(source=recipe.get("source", "testsrc2"), size=recipe["video"], rate=25,
                                                  duration=duration)]
    if recipe.get("audio"):
        argv += ["-f", "lavfi", "-i", _SINE.format(rate=recipe["audio"], duration=duration)]
    if recipe.get("two_step"):
        plain = path + ".plain.mp4"
        result = run_ffmpeg(argv + recipe["args"] + [plain])
        assert result.exit_code == 0, result.stderr
        argv = [binary, "-hide_banner", "-nostdin", "-v", "error", "-y", *recipe["pre"], "-i", plain, "-c", "copy"]
        result = run_ffmpeg(argv + [path])
        os.unlink(plain)
    else:
        result = run_ffmpeg(argv + recipe["args"] + [path])
    assert result.exit_code == 0, f"generating {name}: {result.stderr}"
    return path


def generate_media(directory: str) -> SimpleNamespace:
    """Write every test file into ``directory``; return their paths by short name."""
    binary = FFmpegEngine.pinned().path
    paths = {name: _make(binary, directory, name, recipe) for name, recipe in MEDIA_FILES.items()}
    out = SimpleNamespace(dir=directory, binary=binary)
    for name, path in paths.items():
        setattr(out, name.split(".")[0], path)
    # damaged and odd files
    with open(out.long, "rb") as f:
        data = f.read()
    out.truncated = os.path.join(directory, "truncated.mkv")
    with open(out.truncated, "wb") as f:
        f.write(data[: len(data) // 2])
    out.corrupt = os.path.join(directory, "corrupt.mp4")
    with open(out.corrupt, "wb") as f:
        f.write(bytes((i * 7919 + 13) % 251 for i in range(20000)))
    out.zero = os.path.join(directory, "zero.mov")
    open(out.zero, "wb").close()
    out.weird = {}
    for label, name in {
        "spaces": "my clip with spaces.mp4",
        "quotes": "it's \"quoted\".mp4",
        "unicode": "clip-é-日本-🎬.mp4",
        "dash": "-leading-dash.mp4",
        "percent": "100%_clip %d.mp4",
        "colon": "scheme:like.mp4",
    }.items():
        target = os.path.join(directory, name)
        shutil.copyfile(out.small, target)
        out.weird[label] = target
    return out


_cache: dict[str, SimpleNamespace] = {}


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> SimpleNamespace:
    """Paths of the generated test media (session-wide, made once)."""
    if "media" not in _cache:
        _cache["media"] = generate_media(str(tmp_path_factory.mktemp("media")))
    return _cache["media"]
