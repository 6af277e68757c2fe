"""Media job specs, naming and argv: pure rules, no FFmpeg run."""

from __future__ import annotations

import ast
import json
import os
import pathlib
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lenses.media import AudioSpec, ProbeSpec, ProxySpec, SpecError, ThumbnailSpec
from lenses.media.argv import audio_argv, probe_argv, proxy_argv, thumbnail_argv
from lenses.media.codecs import AUDIO_CODECS, VIDEO_CODECS
from lenses.media.errors import NamingError
from lenses.media.jobs import output_paths
from lenses.media.naming import TOKENS, check_template, final_path, render_stem

ENGINE = "/opt/ffmpeg/bin/ffmpeg"
MEDIA_DIR = pathlib.Path(__file__).resolve().parent.parent / "lenses" / "media"

# ---------------------------------------------------------------- strategies

safe_text = st.text(alphabet="abcXYZ019_-. é", min_size=1, max_size=8)
abs_dirs = st.lists(safe_text.filter(lambda s: s not in (".", "..")), min_size=1, max_size=3).map(lambda p: "/" + "/".join(p))
templates = st.lists(
    st.one_of(st.sampled_from(["{source_name}", "{source_ext}", "{index}", "{index:04d}", "{codec}", "{resolution}"]),
              st.text(alphabet="abc_-. é", min_size=1, max_size=4)),
    min_size=1, max_size=4,
).map("".join)
fps_values = st.one_of(
    st.integers(1, 240),
    st.floats(0.5, 240, allow_nan=False),
    st.sampled_from(["30000/1001", "24000/1001", "25", "60000/1001"]),
)


@st.composite
def proxy_specs(draw):
    codec, container = draw(st.sampled_from([(c, k) for c, v in VIDEO_CODECS.items() for k in v.containers]))
    low_w, low_h = VIDEO_CODECS[codec].min_size
    resolution = draw(st.one_of(
        st.sampled_from(["same", "half", "quarter"]),
        st.tuples(st.integers(max(1, low_w // 2), 2000), st.integers(max(1, low_h // 2), 2000)).map(
            lambda wh: f"{wh[0] * 2}x{wh[1] * 2}"),
    ))
    explicit = draw(st.booleans())
    mxf_rates = st.sampled_from([25, 24, 30, "30000/1001", "24000/1001", 50, 60])  # all MXF takes
    return ProxySpec(
        codec, container, resolution, draw(templates), draw(abs_dirs),
        fps_mode="explicit" if explicit else "same-as-source",
        fps_explicit=draw(mxf_rates if container == "mxf" else fps_values) if explicit else None,
        audio=draw(st.booleans()), threads=draw(st.integers(1, 16)),
        ffmpeg=draw(st.one_of(st.none(), abs_dirs)), ffmpeg_version=draw(st.one_of(st.none(), safe_text)),
    )


thumbnail_specs = st.builds(
    lambda tpl, out, at, size, fmt: ThumbnailSpec(
        tpl.replace("{resolution}", "{codec}"), out, time_offset=at[1] if at[0] else None,
        time_fraction=None if at[0] else at[1], size=size, image_format=fmt),
    templates, abs_dirs,
    st.one_of(st.tuples(st.just(True), st.floats(0, 1e6)), st.tuples(st.just(False), st.floats(0, 0.999))),
    st.sampled_from(["same", "half", "quarter", "320", "64x48", "1920x1080"]),
    st.sampled_from(["jpg", "png"]),
)


@st.composite
def audio_specs(draw):
    codec, container = draw(st.sampled_from([(c, k) for c, v in AUDIO_CODECS.items() for k in v.containers]))
    info = AUDIO_CODECS[codec]
    rates = list(info.sample_rates or (8000, 22050, 44100, 48000, 96000))
    rate = draw(st.sampled_from(rates + (["same"] if info.same_rate_ok else [])))
    channels = draw(st.one_of(st.just("same"), st.integers(1, info.max_channels)))
    template = draw(templates).replace("{resolution}", "{codec}")
    return AudioSpec(codec, rate, channels, container, template, draw(abs_dirs))


any_spec = st.one_of(proxy_specs(), thumbnail_specs, audio_specs(), st.builds(ProbeSpec, st.one_of(st.none(), abs_dirs)))
source_paths = st.lists(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\x00"), min_size=1,
            max_size=12).filter(lambda s: s not in (".", "..")),
    min_size=1, max_size=3,
).map(lambda parts: "/" + "/".join(parts))

# ---------------------------------------------------------------- specs


@given(any_spec)
def test_spec_json_round_trip_is_exact_and_keys_are_sorted(spec):
    text = spec.to_json()
    again = type(spec).from_json(text)
    assert again == spec and again.to_json() == text
    keys = list(json.loads(text))
    assert keys == sorted(keys)


def test_from_json_refuses_unknown_and_missing_fields_naming_the_allowed_ones():
    good = json.loads(ProxySpec("h264", "mp4", "half", "{source_name}", "/out").to_json())
    with pytest.raises(SpecError, match=r"unknown fields \['bitrate'\]; allowed: \['audio', 'codec'"):
        ProxySpec.from_json(json.dumps({**good, "bitrate": 5}))
    del good["codec"]
    with pytest.raises(SpecError, match=r"missing required fields \['codec'\]"):
        ProxySpec.from_json(json.dumps(good))
    with pytest.raises(SpecError, match="not valid JSON"):
        AudioSpec.from_json("{")
    with pytest.raises(SpecError, match="expected an object"):
        ThumbnailSpec.from_json("[1]")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(codec="h264", container="webm"), r"codec 'h264' cannot go in container 'webm'; h264 goes in \['mov', 'mp4', 'mkv'\]"),
        (dict(codec="prores_proxy", container="mp4"), "cannot go in container 'mp4'"),
        (dict(codec="dnxhr"), r"codec must be one of \[.*'dnxhr_lb'"),
        (dict(container="avi"), "container must be one of"),
        (dict(resolution="641x360"), "must be even"),
        (dict(resolution="big"), "'same', 'half', 'quarter' or 'WxH'"),
        (dict(codec="dnxhr_lb", container="mxf", resolution="128x64"), "dnxhr_lb needs at least 256x120"),
        (dict(fps_mode="explicit"), "needs fps_explicit"),
        (dict(fps_explicit=25), "needs fps_mode='explicit'"),
        (dict(fps_mode="explicit", fps_explicit=0), r"fps_explicit must be a number in \(0, 1000\]"),
        (dict(fps_mode="explicit", fps_explicit="30000/0"), "ratio"),
        (dict(fps_mode="explicit", fps_explicit=True), "fps_explicit must be a number"),
        (dict(fps_mode="variable"), "fps_mode must be one of"),
        (dict(output_directory="relative/dir"), "must be an absolute directory path"),
        (dict(naming_template="../{source_name}"), "never a directory or a path"),
        (dict(naming_template="{date}"), r"unknown token \{date\}"),
        (dict(naming_template="{source_name!r}"), "takes no !r conversion"),
        (dict(naming_template="{codec:>10}"), "only {index} takes one"),
        (dict(naming_template="{source_name"), "not a valid template"),
        (dict(threads=0), r"threads must be an int in \[1, 64\]"),
        (dict(ffmpeg="ffmpeg"), "absolute path to an FFmpeg binary"),
    ],
)
def test_proxy_spec_refuses_what_it_cannot_do(kwargs, message):
    base = dict(codec="h264", container="mp4", resolution="half", naming_template="{source_name}", output_directory="/out")
    with pytest.raises(SpecError, match=message):
        ProxySpec(**{**base, **kwargs})


def test_thumbnail_and_audio_specs_check_their_fields():
    with pytest.raises(SpecError, match="exactly one of time_offset"):
        ThumbnailSpec("{source_name}", "/out")
    with pytest.raises(SpecError, match="exactly one of time_offset"):
        ThumbnailSpec("{source_name}", "/out", time_offset=1, time_fraction=0.5)
    with pytest.raises(SpecError, match=r"time_fraction must be in \[0, 1\)"):
        ThumbnailSpec("{source_name}", "/out", time_fraction=1.0)
    with pytest.raises(SpecError, match="even width"):
        ThumbnailSpec("{source_name}", "/out", time_offset=0, size="321")
    with pytest.raises(SpecError, match="image_format must be one of"):
        ThumbnailSpec("{source_name}", "/out", time_offset=0, image_format="gif")
    with pytest.raises(SpecError, match=r"opus needs an explicit sample_rate in \[48000\]"):
        AudioSpec("opus", "same", 2, "ogg", "{source_name}", "/out")
    with pytest.raises(SpecError, match="mp3 takes at most 2 channels"):
        AudioSpec("mp3", 44100, 6, "mp3", "{source_name}", "/out")
    with pytest.raises(SpecError, match="cannot go in container 'wav'"):
        AudioSpec("aac", 44100, 2, "wav", "{source_name}", "/out")
    with pytest.raises(SpecError, match=r"unknown token \{resolution\}"):
        AudioSpec("aac", 44100, 2, "m4a", "{source_name}_{resolution}", "/out")
    with pytest.raises(SpecError, match=r"channels must be \"same\" or an int"):
        AudioSpec("aac", 44100, True, "m4a", "{source_name}", "/out")


def test_specs_are_frozen_and_hashable():
    spec = ProxySpec("h264", "mp4", "half", "{source_name}", "/out")
    with pytest.raises(AttributeError):
        spec.codec = "hevc"
    assert hash(spec) == hash(ProxySpec.from_json(spec.to_json()))


# ---------------------------------------------------------------- naming


@given(
    template=st.text(alphabet="ab./\\{}_:%\x00\n", max_size=16) | templates | st.sampled_from(
        ["../{source_name}", "{source_name}/..", "..", ".", "{source_ext}", "/etc/{codec}", "{index:99}"]),
    name=st.text(max_size=12) | st.sampled_from(["..", ".", "../x", "a/b", "-rf", "x.partial", ""]),
    ext=st.text(max_size=4) | st.sampled_from(["", "..", "/"]),
    index=st.integers(0, 10**6),
)
def test_naming_template_never_names_a_path_outside_the_output_directory(template, name, ext, index):
    out = "/media/proxies"
    try:
        check_template(template)
        stem = render_stem(template, {"source_name": name, "source_ext": ext, "index": index,
                                      "codec": "h264", "resolution": "half"})
        path = final_path(out, stem, "mov")
    except (SpecError, NamingError):
        return
    assert os.path.dirname(path) == out and os.path.normpath(path) == path
    assert not stem.endswith(".partial")


def test_naming_renders_tokens_into_a_stem_and_appends_the_extension():
    tokens = {"source_name": "A001_C002", "source_ext": "mov", "index": 7, "codec": "prores_hq", "resolution": "half"}
    stem = render_stem("{source_name}.{source_ext}_{index:03d}_{codec}_{resolution}", tokens)
    assert final_path("/out/", stem, "mxf") == "/out/A001_C002.mov_007_prores_hq_half.mxf"
    assert set(TOKENS) == {"source_name", "source_ext", "index", "codec", "resolution"}
    for name in ("..", ".", "", "x.partial", "a/b", "a\nb", "x" * 300):
        with pytest.raises(NamingError):
            render_stem("{source_name}", {"source_name": name})


# ---------------------------------------------------------------- argv

GOLDEN_PROXY = [
    ENGINE, "-i", "file:/media/A001 'take' 2.mov",
    "-filter_complex",
    "[0:V:0]scale=flags=bicubic+accurate_rnd+full_chroma_int+bitexact:h=trunc(ih/4)*2:w=trunc(iw/4)*2[s0];"
    "[s0]format=yuv422p10le[s1]",
    "-map", "[s1]", "-map", "0:a?", "-f", "mov", "-c:a", "pcm_s16le", "-c:v", "prores_ks", "-fd", "1",
    "-fflags", "+bitexact", "-flags:a", "+bitexact", "-flags:v", "+bitexact", "-fps_mode", "passthrough",
    "-map_metadata:s:v:0", "0:s:V:0", "-profile:v", "0", "-threads", "1", "-vendor", "apl0",
    "fd:",
    "-hide_banner", "-nostdin", "-nostats", "-filter_complex_threads", "1",
]
GOLDEN_H264 = [
    ENGINE, "-i", "file:/media/-clip.mp4",
    "-filter_complex",
    "[0:V:0]fps=fps=30000/1001[s0];[s0]scale=flags=bicubic+accurate_rnd+full_chroma_int+bitexact:h=720:w=1280[s1];"
    "[s1]format=yuv420p[s2]",
    "-map", "[s2]", "-f", "mp4", "-c:v", "libx264", "-crf", "23", "-fd", "1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
    "-fps_mode", "cfr", "-map_metadata:s:v:0", "0:s:V:0", "-preset", "veryfast",
    "-threads", "4", "fd:",
    "-hide_banner", "-nostdin", "-nostats", "-filter_complex_threads", "4",
]
GOLDEN_THUMB = [
    ENGINE, "-ss", "1.250000", "-i", "file:/media/a.mov",
    "-filter_complex",
    "[0:V:0]scale=flags=bicubic+accurate_rnd+full_chroma_int+bitexact:h=max(2\\,round(320/dar/2)*2):w=320[s0];"
    "[s0]setsar=1[s1];[s1]format=rgb24[s2]",
    "-map", "[s2]", "-f", "image2pipe", "-c:v", "png", "-fd", "1", "-fflags", "+bitexact",
    "-flags:v", "+bitexact", "-frames:v", "1", "-threads", "1", "fd:",
    "-hide_banner", "-nostdin", "-nostats", "-filter_complex_threads", "1", "-max_error_rate", "1",
]
# A probed source whose video end is known: the last frame is held (tpad) and the seek keeps every frame.
GOLDEN_THUMB_HELD = [
    ENGINE, "-noaccurate_seek", "-ss", "1.250000", "-i", "file:/media/a.mov",
    "-filter_complex",
    "[0:V:0]tpad=stop_duration=2.250000:stop_mode=clone[s0];[s0]trim=start=0[s1];"
    "[s1]scale=flags=bicubic+accurate_rnd+full_chroma_int+bitexact:h=max(2\\,round(320/dar/2)*2):w=320[s2];"
    "[s2]setsar=1[s3];[s3]format=rgb24[s4]",
    "-map", "[s4]", "-f", "image2pipe", "-c:v", "png", "-fd", "1", "-fflags", "+bitexact",
    "-flags:v", "+bitexact", "-frames:v", "1", "-threads", "1", "fd:",
    "-hide_banner", "-nostdin", "-nostats", "-filter_complex_threads", "1", "-max_error_rate", "1",
]
# A container without an index: decoded from the start, frames before the time dropped by trim.
GOLDEN_THUMB_DECODED = [
    ENGINE, "-i", "file:/media/a.ts",
    "-filter_complex",
    "[0:V:0]tpad=stop_duration=2.250000:stop_mode=clone[s0];[s0]trim=start=1.250000[s1];"
    "[s1]scale=flags=bicubic+accurate_rnd+full_chroma_int+bitexact:h=max(2\\,round(320/dar/2)*2):w=320[s2];"
    "[s2]setsar=1[s3];[s3]format=rgb24[s4]",
    "-map", "[s4]", "-f", "image2pipe", "-c:v", "png", "-fd", "1", "-fflags", "+bitexact",
    "-flags:v", "+bitexact", "-frames:v", "1", "-threads", "1", "fd:",
    "-hide_banner", "-nostdin", "-nostats", "-filter_complex_threads", "1", "-max_error_rate", "1",
]
GOLDEN_AUDIO = [
    ENGINE, "-i", "file:/media/a.mov", "-map", "0:a:0", "-f", "ogg", "-ac", "2", "-ar", "48000", "-b:a", "128k",
    "-c:a", "libopus", "-fd", "1", "-fflags", "+bitexact", "-flags:a", "+bitexact", "-threads", "1",
    "fd:", "-hide_banner", "-nostdin", "-nostats",
]
GOLDEN_PROBE = [
    ENGINE, "-hide_banner", "-nostdin", "-nostats", "-i", "file:/media/a.mov", "-f", "lavfi", "-i",
    "nullsrc=s=2x2:d=0", "-map", "1:v", "-c:v", "rawvideo", "-f", "null", "-",
]


def golden_argvs() -> dict[str, list[str]]:
    return {
        "proxy": proxy_argv(ProxySpec("prores_proxy", "mov", "half", "{source_name}_proxy", "/out"), ENGINE,
                            "/media/A001 'take' 2.mov"),
        "h264": proxy_argv(ProxySpec("h264", "mp4", "1280x720", "x", "/out", "explicit", "30000/1001", audio=False,
                                     threads=4), ENGINE, "/media/-clip.mp4"),
        "thumb": thumbnail_argv(ThumbnailSpec("a", "/out", time_fraction=0.25, size="320", image_format="png"),
                                ENGINE, "/media/a.mov", 1.25),
        "thumb_held": thumbnail_argv(ThumbnailSpec("a", "/out", time_fraction=0.25, size="320", image_format="png"),
                                     ENGINE, "/media/a.mov", 1.25, hold_last=2.25),
        "thumb_decoded": thumbnail_argv(ThumbnailSpec("a", "/out", time_fraction=0.25, size="320",
                                                      image_format="png"),
                                        ENGINE, "/media/a.ts", 1.25, seek_by_decoding=True, hold_last=2.25),
        "audio": audio_argv(AudioSpec("opus", 48000, 2, "ogg", "a", "/out"), ENGINE, "/media/a.mov"),
        "probe": probe_argv(ENGINE, "/media/a.mov"),
    }


def test_golden_argv():
    got = golden_argvs()
    assert got["proxy"] == GOLDEN_PROXY
    assert got["h264"] == GOLDEN_H264
    assert got["thumb"] == GOLDEN_THUMB
    assert got["thumb_held"] == GOLDEN_THUMB_HELD
    assert got["thumb_decoded"] == GOLDEN_THUMB_DECODED
    assert got["audio"] == GOLDEN_AUDIO
    assert got["probe"] == GOLDEN_PROBE


def test_mxf_refuses_frame_rates_its_muxer_cannot_carry():
    with pytest.raises(SpecError, match="MXF cannot carry 15 fps"):
        ProxySpec("prores_proxy", "mxf", "same", "x", "/out", "explicit", 15)
    assert ProxySpec("prores_proxy", "mxf", "same", "x", "/out", "explicit", "30000/1001").fps_explicit == "30000/1001"
    assert ProxySpec("prores_proxy", "mov", "same", "x", "/out", "explicit", 15).fps_explicit == 15


def test_hevc_pins_x265_threads_and_tags_hvc1():
    argv = proxy_argv(ProxySpec("hevc", "mov", "same", "x", "/out", threads=3), ENGINE, "/a.mov")
    assert argv[argv.index("-x265-params") + 1] == "log-level=error:pools=3:frame-threads=3"
    assert argv[argv.index("-tag:v") + 1] == "hvc1"
    mkv = proxy_argv(ProxySpec("hevc", "mkv", "same", "x", "/out"), ENGINE, "/a.mov")
    assert "-tag:v" not in mkv
    mxf = proxy_argv(ProxySpec("prores_hq", "mxf", "same", "x", "/out"), ENGINE, "/a.mov")
    assert mxf[mxf.index("-ar") + 1] == "48000" and mxf[mxf.index("-fps_mode") + 1] == "cfr"


def _check_argv_shape(argv: list[str]) -> None:
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    assert argv[0] == ENGINE and len(argv) > 4
    assert not any(a in ("sh", "bash", "/bin/sh", "-c") for a in argv)  # never a shell
    inputs = [argv[i + 1] for i, a in enumerate(argv) if a == "-i"]
    assert inputs and all(p.startswith("file:/") and os.path.isabs(p[5:]) for p in inputs)
    files = [a for a in argv if a.startswith("file:")]
    assert files == inputs  # the output is the job's own temporary file, handed over as stdout
    assert argv.count("fd:") == 1 and argv[argv.index("-fd") + 1] == "1"
    assert "-y" not in argv and "-nostdin" in argv


@given(spec=proxy_specs(), source=source_paths)
def test_proxy_argv_is_a_pure_function_and_every_path_is_file_prefixed_absolute(spec, source):
    argv = proxy_argv(spec, ENGINE, source)
    assert argv == proxy_argv(ProxySpec.from_json(spec.to_json()), ENGINE, source)
    _check_argv_shape(argv)


@given(spec=thumbnail_specs, source=source_paths, offset=st.floats(0, 1e6))
def test_thumbnail_argv_is_a_pure_function(spec, source, offset):
    argv = thumbnail_argv(spec, ENGINE, source, offset)
    assert argv == thumbnail_argv(ThumbnailSpec.from_json(spec.to_json()), ENGINE, source, offset)
    _check_argv_shape(argv)


@given(spec=audio_specs(), source=source_paths)
def test_audio_argv_is_a_pure_function(spec, source):
    argv = audio_argv(spec, ENGINE, source)
    assert argv == audio_argv(AudioSpec.from_json(spec.to_json()), ENGINE, source)
    _check_argv_shape(argv)


def test_argv_is_the_same_in_every_process():
    """ffmpeg-python hashes its graph nodes: the argv must not depend on PYTHONHASHSEED."""
    code = "import json, tests.test_media_specs as t; print(json.dumps(t.golden_argvs(), sort_keys=True))"
    root = pathlib.Path(__file__).resolve().parent.parent
    outs = set()
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
        outs.add(proc.stdout)
    assert outs == {json.dumps(golden_argvs(), sort_keys=True) + "\n"}


def test_relative_paths_never_reach_an_argv():
    with pytest.raises(ValueError, match="must be absolute"):
        probe_argv(ENGINE, "clip.mov")


def test_output_paths_reads_a_describe_result():
    assert output_paths({"engine": "e", "argv": ["x"], "outputs": ["/o/a.mov"]}) == ("/o/a.mov",)
    assert output_paths({"error": "bad"}) == ()
    assert output_paths({}) == ()


# ---------------------------------------------------------------- module boundaries


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_run_starts_processes_and_only_argv_imports_ffmpeg_python():
    modules = sorted(MEDIA_DIR.glob("*.py"))
    assert {m.name for m in modules} >= {"run.py", "argv.py", "engine.py", "specs.py", "lenses.py"}
    for module in modules:
        names = _imports(module)
        text = module.read_text()
        if module.name != "run.py":
            assert not names & {"subprocess", "multiprocessing", "pty"}, module.name
            assert "os.system" not in text and "os.popen" not in text and "os.spawn" not in text, module.name
        if module.name != "argv.py":
            assert "ffmpeg" not in names, module.name
        assert "shell=True" not in text, module.name


# ---------------------------------------------------------------- parsing FFmpeg's header dump

DUMP = """[mpegts @ 0x5555] some warning before the dump
Input #0, mpegts, from 'file:/media/a: b.ts':
  Duration: N/A, start: 1.400000, bitrate: N/A
  Program 1
    Metadata:
      service_name    : Stream #0:9: Video: fake, 1x1, 1 fps
                      : Stream #0:8: Audio: fake, 1 Hz, mono
    Stream #0:0[0x100]: Video: h264 (High) ([27][0][0][0] / 0x001B), yuv420p(tv, bt709, progressive), 1920x1080 [SAR 1:1 DAR 16:9], 29.97 fps, 29.97 tbr, 90k tbn
[h264 @ 0x5556] a log line from another thread in the middle
    Stream #0:1[0x101](eng): Audio: ac3 ([129][0][0][0] / 0x0081), 48000 Hz, 5.1(side), fltp, 448 kb/s
    Stream #0:2[0x102]: Audio: pcm_s24le, 96000 Hz, FL+FR+LFE, s32 (24 bit)
    Stream #0:3[0x103]: Audio: aac, 44100 Hz, 6 channels, fltp
  No Program
    Stream #0:0[0x100]: Video: h264, yuv420p, 2x2, 1 fps
    Stream #0:4: Video: mjpeg (Baseline), yuvj420p(pc), 600x600, 90k tbr, 90k tbn (attached pic)
    Stream #0:5: Video: mjpeg, yuvj420p(pc), 64x64, 1k fps, 1k tbr
Input #1, lavfi, from 'nullsrc=s=2x2:d=0':
  Duration: N/A, start: 0.000000, bitrate: N/A
  Stream #1:0: Video: wrapped_avframe, yuv420p, 2x2, 25 tbr, 25 tbn
Stream mapping:
"""


def test_the_header_dump_parser_reads_only_input_0_and_each_stream_once():
    from lenses.media.mediainfo import first_stream, is_vfr, parse_input_dump

    info = parse_input_dump(DUMP)
    assert (info["container"], info["duration"], info["start_time"]) == ("mpegts", None, 1.4)
    streams = info["streams"]
    assert [s["index"] for s in streams] == [0, 1, 2, 3, 4, 5]
    video = streams[0]
    assert (video["codec_name"], video["pix_fmt"], video["width"], video["height"], video["frame_rate"]) == (
        "h264", "yuv420p", 1920, 1080, 29.97)
    assert [(s["sample_rate"], s["channels"], s["channel_layout"]) for s in streams[1:4]] == [
        (48000, 6, "5.1(side)"), (96000, 3, "FL+FR+LFE"), (44100, 6, "6 channels")]
    assert streams[4]["attached_pic"] and first_stream(info, "video") is video
    assert streams[5]["frame_rate"] == 1000.0 and not is_vfr(streams[5])
    assert parse_input_dump(DUMP, index=1)["container"] == "lavfi"
    assert parse_input_dump("Error opening input file file:/x.mp4.\n") is None
