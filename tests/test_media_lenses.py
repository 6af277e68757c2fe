"""Media lenses against real files made by the bundled FFmpeg (see media_fixtures)."""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrsistent import thaw

from drafts import make_draft
from drafts.media import fingerprint_file, media_draft
from lenses import ParamsError, Registry
from lenses.lens import FrameContext
from lenses.media import (
    MEDIA_LENSES,
    AudioSpec,
    FFmpegEngine,
    ProbeSpec,
    ProxySpec,
    SpecError,
    ThumbnailSpec,
    audio,
    output_paths,
    probe,
    proxy,
    thumbnail,
)
from lenses.media.codecs import AUDIO_CODECS, VIDEO_CODECS
from lenses.media.engine import EngineError
from lenses.media.ledger import LEDGER_DIRECTORY
from lenses.params import resolve_params
from lenses.result import COMPLETED, FAILED

pytestmark = pytest.mark.ffmpeg


def probed(path: str):
    """The media.probe output draft of a file (a richer frame than media_draft)."""
    result = probe(media_draft(path))
    assert result.status == COMPLETED, result.message
    return make_draft(thaw(result.outputs[0]))


def no_leftovers(directory) -> list[str]:
    return [n for n in os.listdir(directory) if ".partial" in n]


def listed(directory) -> list[str]:
    """The directory's files, less draftlens's own record of them (``.draftlens/``)."""
    return sorted(n for n in os.listdir(directory) if n != LEDGER_DIRECTORY)


def assert_media_payload(payload, path=None):
    assert {"path", "size", "fingerprint", "container", "duration", "streams"} <= set(payload)
    if path is not None:
        assert payload["path"] == path
    assert (payload["size"], payload["fingerprint"]) == fingerprint_file(payload["path"])
    for stream in payload["streams"]:
        assert {"codec_type", "codec_name", "width", "height", "frame_rate", "sample_rate", "channels"} <= set(stream)


# ---------------------------------------------------------------- engine


def test_pinned_engine_names_its_binary_and_version():
    engine = FFmpegEngine.pinned()
    assert os.path.isabs(engine.path) and "imageio_ffmpeg" in engine.path
    assert engine.version and engine.identity == f"ffmpeg {engine.version} ({engine.path})"
    assert FFmpegEngine.at(engine.path) == engine
    engine.check()
    with pytest.raises(EngineError, match="not usable"):
        FFmpegEngine.at("/nonexistent/ffmpeg")


def test_the_engine_ignores_the_imageio_environment_variable(monkeypatch):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", "/usr/bin/false")
    assert "imageio_ffmpeg" in FFmpegEngine.pinned().path


@pytest.mark.parametrize("codec", sorted(VIDEO_CODECS))
def test_every_listed_video_codec_is_encodable_by_the_pinned_ffmpeg(codec):
    container = VIDEO_CODECS[codec].containers[0]
    ProxySpec(codec, container, "same", "{source_name}", "/out").validate()


@pytest.mark.parametrize("codec", sorted(AUDIO_CODECS))
def test_every_listed_audio_codec_is_encodable_by_the_pinned_ffmpeg(codec):
    info = AUDIO_CODECS[codec]
    AudioSpec(codec, (info.sample_rates or (48000,))[-1], 1, info.containers[0], "{source_name}", "/out").validate()


def test_another_binary_or_version_is_explicit_and_never_falls_back(media, tmp_path):
    draft = media_draft(media.small)
    missing = ProxySpec("h264", "mp4", "half", "{source_name}", str(tmp_path), ffmpeg="/nonexistent/ffmpeg")
    shown = proxy.describe(draft, missing, FrameContext("i", None, None))
    assert "error" in shown and "/nonexistent/ffmpeg" in shown["error"]
    result = proxy(draft, missing)
    assert (result.status, result.failure_class) == (FAILED, "validation")
    pinned = ProxySpec("h264", "mp4", "half", "{source_name}", str(tmp_path), ffmpeg_version="n0.0-other")
    result = proxy(draft, pinned)
    assert result.failure_class == "validation" and "no fallback" in result.message
    with pytest.raises(ParamsError, match="n0.0-other"):
        resolve_params(proxy, pinned)
    # a copy of the binary is another engine: recorded by its own path
    copy = tmp_path / "my-ffmpeg"
    os.symlink(FFmpegEngine.pinned().path, copy)
    other = ProxySpec("h264", "mp4", "half", "{source_name}", str(tmp_path), ffmpeg=str(copy))
    result = proxy(draft, other)
    assert result.status == COMPLETED and result.engine.endswith(f"({copy})") and result.command[0] == str(copy)


# ---------------------------------------------------------------- probe


def test_probe_reports_streams_duration_container_and_timecode(media):
    result = probe(media_draft(media.av))
    assert result.status == COMPLETED and result.exit_code == 0
    out = result.outputs[0]
    assert_media_payload(out, media.av)
    assert out["container"] == "mov,mp4,m4a,3gp,3g2,mj2" and out["duration"] == 1.0
    assert out["timecode"] == "01:00:00:00"
    video, sound = out["streams"][0], out["streams"][1]
    assert (video["codec_type"], video["codec_name"], video["width"], video["height"], video["frame_rate"]) == (
        "video", "h264", 160, 90, 25.0)
    assert (sound["codec_type"], sound["codec_name"], sound["sample_rate"], sound["channels"]) == ("audio", "aac", 48000, 2)
    assert video["sample_rate"] is None and sound["width"] is None
    assert probe.describe(media_draft(media.av), None, FrameContext("p", None, None))["outputs"] == []


@pytest.mark.parametrize(
    "name, container, kinds",
    [
        ("audio_only", "wav", ["audio"]),
        ("video_only", "matroska,webm", ["video"]),
        ("odd", "matroska,webm", ["video"]),
        ("big", "matroska,webm", ["video", "audio"]),
    ],
)
def test_probe_of_audio_only_video_only_and_odd_files(media, name, container, kinds):
    out = probe(media_draft(getattr(media, name))).outputs[0]
    assert out["container"] == container and [s["codec_type"] for s in out["streams"]] == kinds
    if name == "odd":
        assert (out["streams"][0]["width"], out["streams"][0]["height"]) == (161, 91)
    if name == "audio_only":
        assert (out["streams"][0]["sample_rate"], out["streams"][0]["channels"]) == (44100, 1)


def test_probe_reports_rotation_and_variable_frame_rate(media):
    rotated = probe(media_draft(media.rotated)).outputs[0]["streams"][0]
    assert (rotated["width"], rotated["height"], rotated["rotation"]) == (160, 90, 90.0)
    vfr = probe(media_draft(media.vfr)).outputs[0]["streams"][0]
    assert vfr["r_frame_rate"] == 25.0 and vfr["frame_rate"] < 20


def test_probe_failures_are_classified(media, tmp_path):
    corrupt = probe(media_draft(media.corrupt))
    assert (corrupt.status, corrupt.failure_class) == (FAILED, "execution")
    assert corrupt.exit_code not in (0, None) and "Invalid data" in corrupt.message
    zero = probe(media_draft(media.zero))
    assert zero.failure_class == "validation" and "empty" in zero.message and zero.exit_code is None
    gone = tmp_path / "gone.mov"
    shutil.copyfile(media.small, gone)
    draft = media_draft(gone)
    os.unlink(gone)
    vanished = probe(draft)
    assert vanished.failure_class == "validation" and "vanished" in vanished.message
    shutil.copyfile(media.av, gone)
    changed = probe(draft)
    assert changed.failure_class == "validation" and "changed since it was ingested" in changed.message
    not_media = probe(make_draft({"text": "hello"}))
    assert not_media.failure_class == "validation" and "not a media draft" in not_media.message
    assert probe(None).failure_class == "validation"


# ---------------------------------------------------------------- proxy


MATRIX = [(codec, container) for codec, info in sorted(VIDEO_CODECS.items()) for container in info.containers]


@pytest.mark.parametrize("codec, container", MATRIX)
def test_proxy_codec_container_matrix(media, tmp_path, codec, container):
    dnx = codec.startswith("dnxhr")
    source = media.big if dnx else media.av
    spec = ProxySpec(codec, container, "256x144" if dnx else "half", "{source_name}_{codec}_{index}", str(tmp_path))
    draft = media_draft(source)
    context = FrameContext("inst", "batch", 3)
    shown = proxy.describe(draft, spec, context)
    result = proxy(draft, spec, context)
    assert result.status == COMPLETED, result.message
    final = str(tmp_path / f"{os.path.splitext(os.path.basename(source))[0]}_{codec}_3.{container}")
    assert shown["outputs"] == [final] and output_paths(shown) == (final,)
    assert list(result.command) == shown["argv"] and result.engine == shown["engine"]
    assert result.exit_code == 0 and result.message.startswith(f"verified {final}")
    out = result.outputs[0]
    assert_media_payload(out, final)
    video = [s for s in out["streams"] if s["codec_type"] == "video"]
    assert len(video) == 1 and video[0]["codec_name"] == VIDEO_CODECS[codec].codec_name
    assert (video[0]["width"], video[0]["height"]) == ((256, 144) if dnx else (80, 44))
    assert [s["codec_type"] for s in out["streams"]].count("audio") == 1
    assert no_leftovers(tmp_path) == [] and listed(tmp_path) == [os.path.basename(final)]


def test_proxy_keeps_the_source_timecode(media, tmp_path):
    for container in ("mov", "mxf"):
        spec = ProxySpec("prores_proxy", container, "half", "{source_name}", str(tmp_path))
        result = proxy(media_draft(media.av), spec)
        assert result.status == COMPLETED and result.outputs[0]["timecode"] == "01:00:00:00", container


@pytest.mark.parametrize("fps, shown", [(12, 12.0), ("30000/1001", 29.97), (50.0, 50.0)])
def test_proxy_explicit_frame_rate(media, tmp_path, fps, shown):
    spec = ProxySpec("h264", "mp4", "same", "{source_name}", str(tmp_path), "explicit", fps)
    result = proxy(media_draft(media.small), spec)
    assert result.status == COMPLETED, result.message
    assert result.outputs[0]["streams"][0]["frame_rate"] == shown


@pytest.mark.parametrize("resolution, size", [("same", (64, 48)), ("half", (32, 24)), ("quarter", (16, 12)),
                                              ("96x54", (96, 54))])
def test_proxy_resolutions(media, tmp_path, resolution, size):
    spec = ProxySpec("h264", "mkv", resolution, "{source_name}_{resolution}", str(tmp_path))
    result = proxy(media_draft(media.small), spec)
    assert result.status == COMPLETED, result.message
    assert result.outputs[0]["path"].endswith(f"small_{resolution}.mkv")
    stream = result.outputs[0]["streams"][0]
    assert (stream["width"], stream["height"]) == size


def test_proxy_of_odd_dimensions_rounds_down_to_even(media, tmp_path):
    for codec, container in (("h264", "mp4"), ("prores_proxy", "mov"), ("vp9", "webm")):
        result = proxy(media_draft(media.odd), ProxySpec(codec, container, "same", "{codec}", str(tmp_path)))
        assert result.status == COMPLETED, result.message
        assert (result.outputs[0]["streams"][0]["width"], result.outputs[0]["streams"][0]["height"]) == (160, 90)


def test_proxy_of_a_rotated_clip_is_upright(media, tmp_path):
    result = proxy(media_draft(media.rotated), ProxySpec("h264", "mp4", "half", "{source_name}", str(tmp_path)))
    assert result.status == COMPLETED, result.message
    assert (result.outputs[0]["streams"][0]["width"], result.outputs[0]["streams"][0]["height"]) == (44, 80)


@pytest.mark.parametrize("container", ["mp4", "mov", "mxf", "webm"])
def test_proxy_of_variable_frame_rate(media, tmp_path, container):
    codec = "vp9" if container == "webm" else "h264" if container == "mp4" else "prores_proxy"
    result = proxy(media_draft(media.vfr), ProxySpec(codec, container, "same", "{source_name}", str(tmp_path)))
    assert result.status == COMPLETED, result.message


def test_proxy_of_video_only_and_without_audio(media, tmp_path):
    result = proxy(media_draft(media.video_only), ProxySpec("h264", "mp4", "same", "a", str(tmp_path)))
    assert result.status == COMPLETED and [s["codec_type"] for s in result.outputs[0]["streams"]] == ["video"]
    muted = proxy(media_draft(media.av), ProxySpec("h264", "mp4", "same", "b", str(tmp_path), audio=False))
    assert muted.status == COMPLETED
    assert [s["codec_type"] for s in muted.outputs[0]["streams"]] == ["video", "data"]  # data: the timecode track


def test_proxy_of_audio_only_fails_validation_at_run_time_or_at_plan_time_when_probed(media, tmp_path):
    spec = ProxySpec("h264", "mp4", "same", "{source_name}", str(tmp_path))
    bare = proxy(media_draft(media.audio_only), spec)  # the same fault gets the same class (issue 12, input 10)
    assert (bare.status, bare.failure_class) == (FAILED, "validation") and bare.exit_code not in (0, None)
    assert "the source has no video stream (streams: ['audio'])" in bare.message
    shown = proxy.describe(probed(media.audio_only), spec, FrameContext("i", None, None))
    assert "no video stream" in shown["error"]
    early = proxy(probed(media.audio_only), spec)
    assert early.failure_class == "validation" and early.exit_code is None
    assert os.listdir(tmp_path) == []


def test_dnxhr_minimum_size_is_checked_before_running_when_probed(media, tmp_path):
    spec = ProxySpec("dnxhr_lb", "mov", "half", "{source_name}", str(tmp_path))
    result = proxy(probed(media.small), spec)
    assert result.failure_class == "validation" and "needs at least 256x120" in result.message
    bare = proxy(media_draft(media.small), spec)
    assert bare.failure_class == "execution" and "256x120" in bare.message


def test_a_truncated_source_fails_verification_and_leaves_nothing(media, tmp_path):
    result = proxy(media_draft(media.truncated), ProxySpec("prores_proxy", "mov", "same", "{source_name}", str(tmp_path)))
    assert (result.status, result.failure_class, result.exit_code) == (FAILED, "verification", 0)
    assert "source promises 4.000 s" in result.message and len(result.outputs) == 0
    assert os.listdir(tmp_path) == []


def test_a_file_draftlens_did_not_write_is_never_replaced(media, tmp_path):
    final = tmp_path / "small.mp4"
    final.write_bytes(b"someone else's file")
    result = proxy(media_draft(media.small), ProxySpec("h264", "mp4", "same", "{source_name}", str(tmp_path)))
    assert (result.status, result.failure_class, result.exit_code) == (FAILED, "validation", None)
    assert f"{final} already exists and draftlens did not write it" in result.message
    assert final.read_bytes() == b"someone else's file" and os.listdir(tmp_path) == ["small.mp4"]


def test_a_corrupt_source_fails_execution_and_leaves_nothing(media, tmp_path):
    result = proxy(media_draft(media.corrupt), ProxySpec("h264", "mp4", "same", "{source_name}", str(tmp_path)))
    assert (result.status, result.failure_class) == (FAILED, "execution")
    assert result.exit_code not in (0, None) and "ffmpeg stderr" in result.message
    assert os.listdir(tmp_path) == []


def test_zero_byte_and_vanished_sources_fail_validation_without_running(media, tmp_path):
    spec = ProxySpec("h264", "mp4", "same", "{source_name}", str(tmp_path))
    zero = media_draft(media.zero)
    assert "empty" in proxy.describe(zero, spec, None)["error"]
    assert proxy(zero, spec).failure_class == "validation"
    gone = tmp_path / "gone.mp4"
    shutil.copyfile(media.small, gone)
    draft = media_draft(gone)
    os.unlink(gone)
    result = proxy(draft, spec)
    assert (result.failure_class, result.exit_code) == ("validation", None) and "vanished" in result.message
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("label", ["spaces", "quotes", "unicode", "dash", "percent", "colon"])
def test_awkward_file_names(media, tmp_path, label):
    source = media.weird[label]
    name = os.path.splitext(os.path.basename(source))[0]
    result = proxy(media_draft(source), ProxySpec("h264", "mp4", "half", "{source_name}.{source_ext}", str(tmp_path)))
    assert result.status == COMPLETED, result.message
    assert result.outputs[0]["path"] == str(tmp_path / f"{name}.mp4.mp4")
    shot = thumbnail(media_draft(source), ThumbnailSpec("{source_name}", str(tmp_path), time_offset=0.5))
    assert shot.status == COMPLETED and shot.outputs[0]["path"] == str(tmp_path / f"{name}.jpg")
    assert probe(media_draft(source)).status == COMPLETED


def test_an_output_directory_that_is_not_a_directory_fails_validation(media, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    spec = ProxySpec("h264", "mp4", "same", "{source_name}", str(blocker / "out"))
    result = proxy(media_draft(media.small), spec)
    assert result.failure_class == "validation" and "does not exist or is not a directory" in result.message


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_an_unwritable_output_directory_fails_execution(media):
    # /proc/self is a directory no one, not even root, can create files in
    result = proxy(media_draft(media.small), ProxySpec("h264", "mp4", "same", "{source_name}", "/proc/self"))
    assert (result.status, result.failure_class, result.exit_code) == (FAILED, "execution", None)
    assert "cannot create a temporary file in /proc/self" in result.message
    assert not os.path.exists("/proc/self/small.mp4")


def test_naming_templates_cannot_escape_the_output_directory(media, tmp_path):
    with pytest.raises(SpecError, match="never a directory or a path"):
        ProxySpec("h264", "mp4", "same", "../{source_name}", str(tmp_path))
    data = {"codec": "h264", "container": "mp4", "resolution": "same", "naming_template": "../../etc/{source_name}",
            "output_directory": str(tmp_path)}
    with pytest.raises(ParamsError, match="never a directory or a path"):
        resolve_params(proxy, data)
    result = proxy(media_draft(media.small), data)  # a REPL call with a bad mapping: still a result
    assert result.failure_class == "validation"


def test_the_output_may_never_be_the_source(media, tmp_path):
    source = tmp_path / "clip.mp4"
    shutil.copyfile(media.small, source)
    spec = ProxySpec("h264", "mp4", "same", "{source_name}", str(tmp_path))
    result = proxy(media_draft(source), spec)
    assert result.failure_class == "validation" and "overwrite its own source" in result.message
    link_dir = tmp_path / "links"
    link_dir.mkdir()
    os.symlink(source, link_dir / "clip.mp4")
    sneaky = proxy(media_draft(source), ProxySpec("h264", "mp4", "same", "{source_name}", str(link_dir)))
    assert sneaky.failure_class == "validation" and "is the source file itself" in sneaky.message
    assert os.path.getsize(source) == os.path.getsize(media.small)


def test_describe_is_pure_and_names_exactly_what_runs(media, tmp_path):
    draft = media_draft(media.av)
    spec = ProxySpec("prores_proxy", "mov", "half", "{source_name}_{index}", str(tmp_path))
    shown = [proxy.describe(draft, spec, FrameContext("i", "b", 5)) for _ in range(3)]
    assert shown[0] == shown[1] == shown[2] and os.listdir(tmp_path) == []
    assert set(shown[0]) == {"engine", "argv", "outputs"}
    # FFmpeg writes to the job's own temporary file, handed over as its stdout: no output path in argv
    argv = shown[0]["argv"]
    assert argv[argv.index("-fd") + 1] == "1" and argv.count("fd:") == 1 and "-y" not in argv
    assert not any(str(tmp_path) in arg for arg in argv)
    no_index = proxy.describe(draft, spec, FrameContext("i", None, None))
    assert no_index["outputs"] == [str(tmp_path / "av_0.mov")]
    result = proxy(draft, spec, FrameContext("i", "b", 5))
    assert list(result.command) == shown[0]["argv"] and [result.outputs[0]["path"]] == shown[0]["outputs"]


def test_equal_jobs_give_equal_results(media, tmp_path):
    spec = ProxySpec("prores_proxy", "mov", "half", "{source_name}", str(tmp_path))
    first, second = proxy(media_draft(media.av), spec), proxy(media_draft(media.av), spec)
    assert first == second and first.outputs[0]["fingerprint"] == second.outputs[0]["fingerprint"]
    bad = ProxySpec("h264", "mp4", "same", "{source_name}", str(tmp_path))
    assert proxy(media_draft(media.corrupt), bad) == proxy(media_draft(media.corrupt), bad)  # no pointers in messages


# ---------------------------------------------------------------- thumbnail


@pytest.mark.parametrize("fmt, codec", [("jpg", "mjpeg"), ("png", "png")])
def test_thumbnail_formats_and_sizes(media, tmp_path, fmt, codec):
    for size, want in (("same", (161, 91)), ("half", (80, 44)), ("64x36", (64, 36)), ("80", (80, 46))):
        spec = ThumbnailSpec("{source_name}_{resolution}", str(tmp_path), time_offset=0.5, size=size, image_format=fmt)
        result = thumbnail(media_draft(media.odd), spec)
        assert result.status == COMPLETED, result.message
        stream = result.outputs[0]["streams"][0]
        assert stream["codec_name"] == codec and (stream["width"], stream["height"]) == want, size
        assert result.outputs[0]["path"] == str(tmp_path / f"odd_{size}.{fmt}")
    assert no_leftovers(tmp_path) == []


def test_thumbnail_at_a_fraction_needs_a_probed_input(media, tmp_path):
    spec = ThumbnailSpec("{source_name}", str(tmp_path), time_fraction=0.5)
    bare = thumbnail(media_draft(media.av), spec)
    assert bare.failure_class == "validation" and "media.probe" in bare.message
    shown = thumbnail.describe(probed(media.av), spec, None)
    # half of 1 s is 0.5 s, where frame 12 (0.48-0.52 s at 25 fps) is on screen: seek half a frame before
    # its start (timestamps off the grid by rounding still find it: lenses/media/posters.py)
    assert shown["argv"][shown["argv"].index("-ss") + 1] == "0.460000"
    assert thumbnail(probed(media.av), spec).status == COMPLETED


def test_thumbnail_past_the_end(media, tmp_path):
    spec = ThumbnailSpec("{source_name}", str(tmp_path), time_offset=5)
    late = thumbnail(media_draft(media.av), spec)
    # FFmpeg's own read of the source says where the video ends: the same class as a probed frame's (review 30)
    assert (late.failure_class, late.exit_code) == ("validation", 0) and "not before the end" in late.message
    assert "not before the end" in thumbnail(probed(media.av), spec).message
    assert os.listdir(tmp_path) == []


def test_thumbnail_of_audio_only_fails(media, tmp_path):
    spec = ThumbnailSpec("{source_name}", str(tmp_path), time_offset=0)
    assert thumbnail(media_draft(media.audio_only), spec).failure_class == "validation"
    assert thumbnail(probed(media.audio_only), spec).failure_class == "validation"


# ---------------------------------------------------------------- audio

AUDIO_MATRIX = [(codec, container) for codec, info in sorted(AUDIO_CODECS.items()) for container in info.containers]


@pytest.mark.parametrize("codec, container", AUDIO_MATRIX)
def test_audio_codec_container_matrix(media, tmp_path, codec, container):
    info = AUDIO_CODECS[codec]
    rate = 48000 if not info.same_rate_ok else "same"
    spec = AudioSpec(codec, rate, "same", container, "{source_name}_{codec}", str(tmp_path))
    result = audio(media_draft(media.av), spec)
    assert result.status == COMPLETED, result.message
    out = result.outputs[0]
    assert_media_payload(out, str(tmp_path / f"av_{codec}.{info and spec.extension}"))
    assert [(s["codec_type"], s["codec_name"], s["sample_rate"], s["channels"]) for s in out["streams"]] == [
        ("audio", info.codec_name, 48000, 2)]


def test_audio_resamples_and_downmixes_as_asked(media, tmp_path):
    spec = AudioSpec("pcm_s16le", 22050, 1, "wav", "{source_name}", str(tmp_path))
    result = audio(media_draft(media.av), spec)
    assert result.status == COMPLETED
    stream = result.outputs[0]["streams"][0]
    assert (stream["sample_rate"], stream["channels"]) == (22050, 1)
    only = audio(media_draft(media.audio_only), AudioSpec("flac", "same", "same", "flac", "x", str(tmp_path)))
    assert only.status == COMPLETED and only.outputs[0]["streams"][0]["sample_rate"] == 44100


def test_audio_of_video_only_fails(media, tmp_path):
    spec = AudioSpec("aac", 48000, 2, "m4a", "{source_name}", str(tmp_path))
    bare = audio(media_draft(media.video_only), spec)
    assert bare.failure_class == "validation" and "no audio stream with sound" in bare.message
    assert "no audio stream" in audio(probed(media.video_only), spec).message
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- property: naming through describe


@settings(max_examples=25)
@given(name=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1,
                    max_size=10).filter(lambda s: s not in (".", "..")),
       template=st.sampled_from(["{source_name}", "{source_name}{source_ext}", "{source_ext}", "x{index}",
                                 "{source_name}_{codec}_{resolution}"]),
       index=st.integers(0, 10**6))
def test_describe_never_names_an_output_outside_the_output_directory(name, template, index):
    draft = make_draft({"path": "/media/" + name + ".mov", "size": 10, "fingerprint": "blake3:00"})
    spec = ProxySpec("h264", "mp4", "half", template, "/out/dir")
    shown = proxy.describe(draft, spec, FrameContext("i", "b", index))
    if "error" in shown:
        return
    (path,) = shown["outputs"]
    assert os.path.dirname(path) == "/out/dir" and os.path.normpath(path) == path
    inputs = [shown["argv"][i + 1] for i, a in enumerate(shown["argv"]) if a == "-i"]
    assert inputs == ["file:/media/" + name + ".mov"]


# ---------------------------------------------------------------- through the engine


def test_media_lenses_through_recompute_derived(media, tmp_path):
    from derived import recompute_derived
    from drafts import Store, pack_drafts

    registry = Registry(MEDIA_LENSES)
    frames = pack_drafts([media_draft(media.av), media_draft(media.corrupt), media_draft(media.small)])
    spec = ProxySpec("prores_proxy", "mov", "quarter", "{source_name}_{index}", str(tmp_path))
    store = (Store.empty().add_draft(frames)
             .add_lens_instance("probe", "media.probe", frames.id)
             .add_lens_instance("proxy", "media.proxy", frames.id, spec))
    state = recompute_derived(store, registry=registry)
    assert [d.payload["container"] for d in state.outputs("probe")] == ["mov,mp4,m4a,3gp,3g2,mj2"] * 2
    proxies = state.outputs("proxy")
    assert [os.path.basename(d.payload["path"]) for d in proxies] == ["av_0.mov", "small_2.mov"]
    statuses = sorted((r.status, r.failure_class) for r in state.results.values())
    assert statuses.count((FAILED, "execution")) == 2 and statuses.count((COMPLETED, None)) == 4
    assert sum(w.code == "executionFailed" for w in state.warnings) == 2
    # two frames that would write one path both fail validation, and nothing runs for them
    clash = ProxySpec("prores_proxy", "mov", "quarter", "same_name", str(tmp_path / "clash"))
    os.mkdir(tmp_path / "clash")
    state = recompute_derived(store.add_lens_instance("clash", "media.proxy", frames.id, clash), registry=registry)
    assert list(state.outputs("clash")) == [] and os.listdir(tmp_path / "clash") == []
    failures = [r for r in state.results.values() if r.failure_class == "validation"]
    assert len(failures) == 3 and all("would also be written by" in r.message for r in failures)


def test_probe_spec_is_optional():
    assert resolve_params(probe, None) == (ProbeSpec(), {"ffmpeg": None, "ffmpeg_version": None})


def test_media_lenses_and_results_pickle_for_worker_processes(media, tmp_path):
    import pickle

    for media_lens in MEDIA_LENSES:
        assert pickle.loads(pickle.dumps(media_lens)) is media_lens
    result = proxy(media_draft(media.small), ProxySpec("h264", "mp4", "half", "{source_name}", str(tmp_path)))
    assert pickle.loads(pickle.dumps(result)) == result


def test_the_plan_shows_each_jobs_argv_and_outputs_before_anything_runs(media, tmp_path):
    from derived import plan_session
    from drafts import Store, pack_drafts

    frames = pack_drafts([media_draft(media.av), media_draft(media.small)])
    spec = ProxySpec("h264", "mkv", "half", "{source_name}_{index}", str(tmp_path))
    store = Store.empty().add_draft(frames).add_lens_instance("proxy", "media.proxy", frames.id, spec)
    session = plan_session(store, registry=Registry(MEDIA_LENSES))
    jobs = [session.job(j) for j in session.job_ids]
    assert [job.job_type for job in jobs] == ["Video", "Video"]
    assert [job.outputs for job in jobs] == [(str(tmp_path / "av_0.mkv"),), (str(tmp_path / "small_1.mkv"),)]
    for index, job in enumerate(jobs):
        shown = proxy.describe(frames.payload["values"][index], spec, FrameContext("proxy", None, index))
        assert list(job.command) == shown["argv"]
    assert os.listdir(tmp_path) == []


def test_process_executor_gives_the_same_results_as_serial(media, tmp_path):
    from derived import ProcessExecutor, SerialExecutor, recompute_derived
    from drafts import Store, pack_drafts

    frames = pack_drafts([media_draft(media.av), media_draft(media.small), media_draft(media.odd)])
    spec = ProxySpec("prores_proxy", "mov", "half", "{source_name}", str(tmp_path))
    store = Store.empty().add_draft(frames).add_lens_instance("proxy", "media.proxy", frames.id, spec)
    registry = Registry(MEDIA_LENSES)
    serial = recompute_derived(store, registry=registry, executor=SerialExecutor())
    with ProcessExecutor(2) as executor:
        parallel = recompute_derived(store, registry=registry, executor=executor)
    assert [d.id for d in parallel.outputs("proxy")] == [d.id for d in serial.outputs("proxy")]
    assert dict(parallel.results) == dict(serial.results)


def test_media_jobs_are_reused_only_while_their_outputs_still_verify(media, tmp_path):
    from derived import Memo, plan_session, recompute_derived
    from drafts import Store, pack_drafts

    frames = pack_drafts([media_draft(media.av), media_draft(media.small)])
    spec = ProxySpec("h264", "mp4", "half", "{source_name}_{index}", str(tmp_path))
    store = Store.empty().add_draft(frames).add_lens_instance("proxy", "media.proxy", frames.id, spec)
    memo = Memo()

    def decisions():
        plan = plan_session(store, memo=memo)
        return [plan.job(j).decision for j in plan.job_ids]

    assert decisions() == ["run", "run"]
    first = recompute_derived(store, memo=memo)  # default_registry holds the media lenses
    paths = [d.payload["path"] for d in first.outputs("proxy")]
    assert decisions() == ["reused", "reused"]
    assert recompute_derived(store, memo=memo) == first
    os.unlink(paths[0])  # deleted by hand: made again
    assert decisions() == ["run", "reused"]
    again = recompute_derived(store, memo=memo)
    assert again == first and all(os.path.getsize(p) > 0 for p in paths)
    assert decisions() == ["reused", "reused"]
    with open(paths[1], "r+b") as f:  # edited by hand (same size, other bytes): no longer ours to replace
        f.seek(100)
        f.write(b"\x00" * 8)
    edited = open(paths[1], "rb").read()
    assert decisions() == ["reused", "run"]
    state = recompute_derived(store, memo=memo)
    (failure,) = [r for r in state.results.values() if r.status == FAILED]
    assert failure.failure_class == "validation" and "has been changed since" in failure.message
    assert open(paths[1], "rb").read() == edited
    assert [plan_session(store, memo=memo, force=True).job(j).decision for j in plan_session(store).job_ids] == [
        "run", "run"]


def test_a_failed_media_job_is_never_reused(media, tmp_path):
    from derived import Memo, plan_session, recompute_derived
    from drafts import Store, pack_drafts

    frames = pack_drafts([media_draft(media.corrupt)])
    spec = ProxySpec("h264", "mp4", "half", "{source_name}", str(tmp_path))
    store = Store.empty().add_draft(frames).add_lens_instance("proxy", "media.proxy", frames.id, spec)
    memo = Memo()
    state = recompute_derived(store, memo=memo)
    assert [w.code for w in state.warnings] == ["executionFailed"]
    plan = plan_session(store, memo=memo)
    assert [plan.job(j).decision for j in plan.job_ids] == ["run"]
