"""In-process verification of written outputs (lenses.media.written and its readers).

Issue 18: verification stays (exit code 0 is not success) but costs no second
FFmpeg process for the formats draftlens writes. These tests fail if the
verification read were removed or weakened: every cut of a real output is
refused by its reader and, through a job, is a ``verification`` failure that
publishes nothing; a whole file of the wrong content (a stream missing, a
shorter clip) is refused by the checks fed by the reader; and what the readers
report agrees with FFmpeg's own reading of the same file.
"""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drafts.media import media_draft
from lenses.lens import FrameContext
from lenses.media import AudioSpec, ProxySpec, ThumbnailSpec, audio, proxy, thumbnail
from lenses.media import execute as execute_module
from lenses.media.argv import header_argv
from lenses.media.errors import NotReadHere, NotWhole
from lenses.media.isobmff import read_movie
from lenses.media.matroska import read_matroska
from lenses.media.mediainfo import parse_input_dump, parse_output_dump
from lenses.media.mpegaudio import read_mp3
from lenses.media.mxf import read_mxf
from lenses.media.riff import read_wav
from lenses.media.run import run_ffmpeg
from lenses.media.stills import read_jpeg, read_png
from lenses.media.written import READERS, as_dumped, read_written
from lenses.media.xiph import read_flac, read_ogg
from lenses.result import COMPLETED, FAILED
from tests.media_fixtures import media  # noqa: F401

pytestmark = pytest.mark.ffmpeg

# label -> (lens, spec factory(directory), source attribute of the media fixture, reader)
CASES = {
    "mov": (proxy, lambda d: ProxySpec("prores_proxy", "mov", "same", "{source_name}", d), "av", read_movie),
    "mp4": (proxy, lambda d: ProxySpec("h264", "mp4", "half", "{source_name}", d), "av", read_movie),
    "mkv": (proxy, lambda d: ProxySpec("prores_proxy", "mkv", "same", "{source_name}", d), "av", read_matroska),
    "webm": (proxy, lambda d: ProxySpec("vp9", "webm", "half", "{source_name}", d), "av", read_matroska),
    "jpg": (thumbnail, lambda d: ThumbnailSpec("{source_name}", d, time_offset=0.5), "av", read_jpeg),
    "png": (thumbnail, lambda d: ThumbnailSpec("{source_name}", d, time_offset=0.5, image_format="png"), "av",
            read_png),
    "wav": (audio, lambda d: AudioSpec("pcm_s16le", "same", "same", "wav", "{source_name}", d), "av", read_wav),
    "m4a": (audio, lambda d: AudioSpec("aac", "same", "same", "m4a", "{source_name}", d), "av", read_movie),
    "mka": (audio, lambda d: AudioSpec("flac", "same", "same", "mka", "{source_name}", d), "av", read_matroska),
    "flac": (audio, lambda d: AudioSpec("flac", "same", "same", "flac", "{source_name}", d), "av", read_flac),
    "opus": (audio, lambda d: AudioSpec("opus", 48000, "same", "ogg", "{source_name}", d), "av", read_ogg),
    "vorbis": (audio, lambda d: AudioSpec("vorbis", "same", "same", "ogg", "{source_name}", d), "av", read_ogg),
    "mp3": (audio, lambda d: AudioSpec("mp3", "same", "same", "mp3", "{source_name}", d), "av", read_mp3),
    "mxf": (proxy, lambda d: ProxySpec("prores_proxy", "mxf", "same", "{source_name}", d), "av", read_mxf),
    "mxf-dnxhr": (proxy, lambda d: ProxySpec("dnxhr_lb", "mxf", "same", "{source_name}", d), "big", read_mxf),
    "mxf-silent": (proxy, lambda d: ProxySpec("prores_lt", "mxf", "same", "{source_name}", d, audio=False), "av",
                   read_mxf),
}
_made: dict[str, str] = {}


def _run(lens, source: str, spec):
    return lens(media_draft(source), spec, FrameContext("written", "written", 0))


def written(media, tmp_path_factory, label: str) -> str:  # noqa: F811
    """A verified output of case ``label`` (made once per session)."""
    if label not in _made:
        lens, spec, source, _reader = CASES[label]
        result = _run(lens, getattr(media, source), spec(str(tmp_path_factory.mktemp(f"written-{label}"))))
        assert result.status == COMPLETED, result.message
        _made[label] = result.outputs[0]["path"]
    return _made[label]


def _cut(source: str, directory, length: int) -> str:
    path = os.path.join(str(directory), "cut" + os.path.splitext(source)[1])
    with open(source, "rb") as fh:
        data = fh.read(length)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


# --- the readers agree with FFmpeg --------------------------------------------------------------


@pytest.mark.parametrize("label", sorted(CASES))
def test_what_a_reader_reports_is_what_ffmpeg_reads(media, tmp_path_factory, label):  # noqa: F811
    path = written(media, tmp_path_factory, label)
    ffmpeg = parse_input_dump(run_ffmpeg(header_argv(media.binary, path)).stderr)
    mine = CASES[label][3](path)
    assert [s["codec_type"] for s in mine["streams"]] == [s["codec_type"] for s in ffmpeg["streams"]]
    for ours, theirs in zip(mine["streams"], ffmpeg["streams"], strict=True):
        for key in ("codec_name", "width", "height", "sample_rate", "channels"):
            assert ours[key] == theirs[key], (label, key)
        if theirs["frame_rate"] is not None and ours["frame_rate"] is not None:
            assert abs(ours["frame_rate"] - theirs["frame_rate"]) < 0.01
        if theirs["duration"] is not None:  # Matroska DURATION tags
            assert abs(ours["duration"] - theirs["duration"]) < 0.001
    if label == "opus":  # FFmpeg counts Opus's pre-skip (RFC 7845 §4.2) into the duration; it is not played
        assert abs(mine["duration"] + 312 / 48000 - ffmpeg["duration"]) <= 0.005 + 1e-9
    elif ffmpeg["duration"] is not None and label not in ("jpg", "png"):
        assert as_dumped(mine["duration"]) == ffmpeg["duration"]
    assert mine["container"] == ffmpeg["container"] or label in ("jpg", "png")


def test_the_encoder_fields_come_from_the_runs_own_output_dump(media, tmp_path_factory):  # noqa: F811
    path = written(media, tmp_path_factory, "mov")
    spec = CASES["mov"][1](os.path.dirname(path))
    stderr = ("Output #0, mov, to 'fd:':\n"
              "  Stream #0:0: Video: prores (Proxy) (apco / 0x6F637061), yuv422p10le(tv, progressive), 160x90, 25 fps\n"
              "  Stream #0:1: Audio: pcm_s16le (sowt / 0x74776F73), 48000 Hz, stereo, s16, 1536 kb/s\n")
    info, fallback = read_written("proxy", spec, path, stderr)
    assert fallback is None
    assert (info["streams"][0]["pix_fmt"], info["streams"][1]["channel_layout"]) == ("yuv422p10le", "stereo")
    assert [s["codec_type"] for s in parse_output_dump(stderr)] == ["video", "audio"]
    # a layout whose channel count disagrees with the file is not taken
    liar = stderr.replace("stereo", "5.1")
    assert read_written("proxy", spec, path, liar)[0]["streams"][1]["channel_layout"] is None


# --- every cut is refused -----------------------------------------------------------------------


@pytest.mark.parametrize("label", sorted(CASES))
def test_zero_bytes_header_only_and_a_body_cut_are_not_whole(media, tmp_path_factory, tmp_path, label):  # noqa: F811
    path = written(media, tmp_path_factory, label)
    size = os.path.getsize(path)
    reader = CASES[label][3]
    for length in (0, 1, 16, 100, size // 2, size - 1):
        with pytest.raises(NotWhole) as caught:
            reader(_cut(path, tmp_path, length))
        assert str(caught.value), (label, length)
    with pytest.raises(NotWhole, match="empty"):
        reader(_cut(path, tmp_path, 0))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(label=st.sampled_from(sorted(CASES)), fraction=st.floats(0, 1, exclude_max=True))
def test_every_strict_prefix_of_an_output_is_refused(media, tmp_path_factory, label, fraction):  # noqa: F811
    path = written(media, tmp_path_factory, label)
    size = os.path.getsize(path)
    directory = tmp_path_factory.mktemp("prefix")
    with pytest.raises(NotWhole):
        CASES[label][3](_cut(path, directory, int(size * fraction)))


@pytest.mark.parametrize("label", ["mov", "mkv", "png", "wav"])
def test_bytes_after_the_end_are_refused(media, tmp_path_factory, tmp_path, label):  # noqa: F811
    path = written(media, tmp_path_factory, label)
    grown = str(tmp_path / os.path.basename(path))
    shutil.copyfile(path, grown)
    with open(grown, "ab") as fh:
        fh.write(b"\0" * 40)
    with pytest.raises(NotWhole):
        CASES[label][3](grown)


def test_the_messages_say_what_is_cut_and_where(media, tmp_path_factory, tmp_path):  # noqa: F811
    mov = written(media, tmp_path_factory, "mov")
    with pytest.raises(NotWhole, match=r"box b'mdat' at offset \d+ declares \d+ bytes, but only \d+ are left"):
        read_movie(_cut(mov, tmp_path, os.path.getsize(mov) // 2))
    mkv = written(media, tmp_path_factory, "mkv")
    with pytest.raises(NotWhole, match=r"the Segment declares \d+ bytes from offset \d+, but the file holds \d+"):
        read_matroska(_cut(mkv, tmp_path, os.path.getsize(mkv) - 1))
    wav = written(media, tmp_path_factory, "wav")
    with pytest.raises(NotWhole, match=r"the RIFF header declares \d+ bytes, but the file holds \d+"):
        read_wav(_cut(wav, tmp_path, os.path.getsize(wav) - 2))
    png = written(media, tmp_path_factory, "png")
    damaged = str(tmp_path / "damaged.png")
    data = bytearray(open(png, "rb").read())
    data[40] ^= 0xFF  # inside the first IDAT
    open(damaged, "wb").write(bytes(data))
    with pytest.raises(NotWhole, match=r"fails its CRC"):
        read_png(damaged)
    with pytest.raises(NotWhole, match="not a JPEG"):
        read_jpeg(png)


def test_a_sample_table_pointing_past_the_media_data_is_refused(media, tmp_path_factory, tmp_path):  # noqa: F811
    """Header OK, body cut: mdat shortened to fit the file while moov still points into the lost bytes."""
    import struct

    mov = written(media, tmp_path_factory, "mov")
    data = bytearray(open(mov, "rb").read())
    pos = 0
    while data[pos + 4:pos + 8] != b"mdat":
        pos += struct.unpack_from(">I", data, pos)[0]
    header = 16 if struct.unpack_from(">I", data, pos)[0] == 1 else 8
    size = struct.unpack_from(">Q", data, pos + 8)[0] if header == 16 else struct.unpack_from(">I", data, pos)[0]
    keep = size // 2
    if header == 16:
        struct.pack_into(">Q", data, pos + 8, keep)
    else:
        struct.pack_into(">I", data, pos, keep)
    cut = data[:pos + keep] + data[pos + size:]  # the moov after a half mdat, offsets unchanged
    path = str(tmp_path / "halfbody.mov")
    open(path, "wb").write(bytes(cut))
    with pytest.raises(NotWhole, match="outside the media data"):
        read_movie(path)


# --- through a job: the failure class, nothing published, one process ----------------------------


def _cutting_run(keep):
    """run_ffmpeg that lets FFmpeg write the output, exit 0, then cuts the output to ``keep(size)`` bytes."""
    real = execute_module.run_ffmpeg

    def run(argv, stdout=None, **options):
        outcome = real(argv, stdout=stdout, **options)
        if stdout is not None:
            os.ftruncate(stdout, keep(os.fstat(stdout).st_size))
        return outcome

    return run


@pytest.mark.parametrize("label", sorted(CASES))
@pytest.mark.parametrize("keep", [lambda n: n // 2, lambda n: n - 1, lambda n: min(n, 64)],
                         ids=["half", "all-but-one", "header-only"])
def test_a_job_whose_output_is_cut_fails_verification_and_publishes_nothing(
        media, tmp_path, monkeypatch, label, keep):  # noqa: F811
    lens, spec, source, _reader = CASES[label]
    monkeypatch.setattr(execute_module, "run_ffmpeg", _cutting_run(keep))
    result = _run(lens, getattr(media, source), spec(str(tmp_path)))
    assert (result.status, result.failure_class, result.exit_code) == (FAILED, "verification", 0), result.message
    assert "is not a whole" in result.message and len(result.outputs) == 0
    assert [n for n in os.listdir(tmp_path) if not n.startswith(".")] == []


def test_a_job_whose_output_is_emptied_fails_verification(media, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(execute_module, "run_ffmpeg", _cutting_run(lambda n: 0))
    result = _run(proxy, media.av, CASES["mov"][1](str(tmp_path)))
    assert (result.status, result.failure_class) == (FAILED, "verification") and "wrote nothing" in result.message


def _swapped_source_run(other: str):
    """run_ffmpeg that encodes ``other`` instead of the job's source: a whole file of the wrong content."""
    real = execute_module.run_ffmpeg

    def run(argv, stdout=None, **options):
        if stdout is None:
            return real(argv, **options)
        ours = real(argv, stdout=stdout)  # the source's header dump is the job's own
        os.ftruncate(stdout, 0)
        os.lseek(stdout, 0, os.SEEK_SET)
        source = argv[argv.index("-i") + 1]
        theirs = real([other if a == source else a for a in argv], stdout=stdout)
        assert theirs.exit_code == 0, theirs.stderr
        return ours

    return run


@pytest.mark.parametrize("label", ["mov", "mkv", "mp4"])
def test_a_whole_output_missing_a_stream_fails_verification(media, tmp_path, monkeypatch, label):  # noqa: F811
    lens, spec, _source, _reader = CASES[label]
    monkeypatch.setattr(execute_module, "run_ffmpeg", _swapped_source_run("file:" + media.video_only))
    result = _run(lens, media.av, spec(str(tmp_path)))
    assert (result.status, result.failure_class) == (FAILED, "verification"), result.message
    assert "expected 1 audio stream(s), the output has 0" in result.message


@pytest.mark.parametrize("label", ["mov", "mkv", "wav", "m4a"])
def test_a_whole_output_shorter_than_the_source_fails_verification(media, tmp_path, monkeypatch, label):  # noqa: F811
    lens, spec, _source, _reader = CASES[label]
    # the 4 s clip's job, given the 1 s clip's output: whole, but 3 s short
    monkeypatch.setattr(execute_module, "run_ffmpeg", _swapped_source_run("file:" + media.av))
    result = _run(lens, media.long, spec(str(tmp_path)))
    assert (result.status, result.failure_class) == (FAILED, "verification"), result.message
    assert "but the source promises 4.000 s" in result.message


def _counting_run(calls: list):
    real = execute_module.run_ffmpeg

    def run(argv, stdout=None, **options):
        calls.append(list(argv))
        return real(argv, stdout=stdout, **options)

    return run


@pytest.mark.parametrize("label", sorted(CASES))
def test_a_verified_job_starts_ffmpeg_once(media, tmp_path, monkeypatch, label):  # noqa: F811
    lens, spec, source, _reader = CASES[label]
    calls: list = []
    monkeypatch.setattr(execute_module, "run_ffmpeg", _counting_run(calls))
    result = _run(lens, getattr(media, source), spec(str(tmp_path)))
    assert result.status == COMPLETED, result.message
    assert len(calls) == 1 and "read by FFmpeg" not in result.message


def test_every_format_draftlens_writes_has_a_reader():
    from lenses.media.codecs import AUDIO_CONTAINERS, IMAGE_FORMATS, PROXY_CONTAINERS

    writable = ({("proxy", c) for c in PROXY_CONTAINERS} | {("audio", c) for c in AUDIO_CONTAINERS}
                | {("thumbnail", f) for f in IMAGE_FORMATS})
    assert writable == set(READERS)


def test_a_drop_frame_timecode_is_read_by_ffmpeg_and_says_so(media, tmp_path, monkeypatch):  # noqa: F811
    """The natural fallback: the MOV reader leaves drop-frame timecodes to FFmpeg; one more process, said."""
    source = str(tmp_path / "df.mov")
    made = run_ffmpeg([media.binary, "-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                       "testsrc2=size=64x48:rate=30000/1001:duration=0.5", "-c:v", "libx264", "-threads", "1",
                       "-timecode", "01:00:00;00", source])
    assert made.exit_code == 0, made.stderr
    calls: list = []
    monkeypatch.setattr(execute_module, "run_ffmpeg", _counting_run(calls))
    out = tmp_path / "out"
    out.mkdir()
    result = _run(proxy, source, ProxySpec("h264", "mov", "same", "{source_name}", str(out)))
    assert result.status == COMPLETED and "(read by FFmpeg: a drop-frame timecode track)" in result.message
    assert len(calls) == 2 and calls[1] == header_argv(calls[0][0], calls[1][-1][len("file:"):])
    assert result.outputs[0]["timecode"] == "01:00:00;00"


def test_a_file_a_reader_declines_is_read_by_ffmpeg_and_says_why(media, tmp_path, monkeypatch):  # noqa: F811
    from lenses.media import written as written_module

    def declines(path):
        raise NotReadHere("a fragmented movie")

    monkeypatch.setitem(written_module.READERS, ("proxy", "mov"), declines)
    result = _run(proxy, media.av, CASES["mov"][1](str(tmp_path)))
    assert result.status == COMPLETED and "(read by FFmpeg: a fragmented movie)" in result.message


def test_a_cut_file_a_reader_declines_still_fails(media, tmp_path, monkeypatch):  # noqa: F811
    from lenses.media import written as written_module

    def declines(path):
        raise NotReadHere("a fragmented movie")

    monkeypatch.setitem(written_module.READERS, ("proxy", "mov"), declines)
    monkeypatch.setattr(execute_module, "run_ffmpeg", _cutting_run(lambda n: 200))
    result = _run(proxy, media.av, CASES["mov"][1](str(tmp_path)))
    assert (result.status, result.failure_class) == (FAILED, "verification"), result.message


# --- damaged bytes never crash a reader ---------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(label=st.sampled_from(sorted(CASES)), data=st.data())
def test_damaged_bytes_give_not_whole_or_a_reading_never_a_crash(media, tmp_path_factory, label, data):  # noqa: F811
    """Flipped bytes anywhere (headers included), cuts and stray bytes: a reader says NotWhole or
    NotReadHere, or reads the file; it never raises anything else (a job never raises for a media problem)."""
    original = open(written(media, tmp_path_factory, label), "rb").read()
    damaged = bytearray(original)
    head = min(len(damaged), 8192)  # most flips in the headers, where the readers look
    for _ in range(data.draw(st.integers(1, 8))):
        where = data.draw(st.integers(0, head - 1) | st.integers(0, len(damaged) - 1))
        damaged[where] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        damaged = damaged[:data.draw(st.integers(0, len(damaged)))]
    path = str(tmp_path_factory.mktemp("damaged") / ("x" + os.path.splitext(written(media, tmp_path_factory,
                                                                                          label))[1]))
    open(path, "wb").write(bytes(damaged))
    try:
        info = CASES[label][3](path)
    except (NotWhole, NotReadHere):
        return
    assert set(info) == {"container", "duration", "duration_estimated", "start_time", "streams", "timecode"}


def test_a_false_sync_inside_the_last_flac_frame_is_passed_over(media, tmp_path_factory, tmp_path):  # noqa: F811
    """FLAC does not escape its sync code: a header-like run (with a valid CRC-8) inside frame data must not be
    taken for the last frame, or a whole file would be called cut."""
    import struct

    from lenses.media import xiph

    data = bytearray(open(written(media, tmp_path_factory, "flac"), "rb").read())
    last = max(i for i in range(len(data) - 8) if xiph._frame_header(bytes(data), i) is not None)
    fake = bytearray(b"\xff\xf8\xc9\x08\x00")  # fixed blocks of 4096, 44.1 kHz, mono, 16 bits, frame 0
    fake.append(xiph._crc8(bytes(fake)))
    where = last + (len(data) - last) // 2
    data[where:where + len(fake)] = fake
    struct.pack_into(">H", data, len(data) - 2, xiph._crc16(bytes(data[last:-2])))  # the real frame still checks
    path = str(tmp_path / "false-sync.flac")
    open(path, "wb").write(bytes(data))
    assert xiph._frame_header(bytes(data), where) is not None
    assert read_flac(path)["duration"] == 1.0


@pytest.mark.parametrize("rate", [88200, 96000])
@pytest.mark.parametrize("codec", ["aac", "alac"])
def test_an_mp4_sound_rate_above_65535_hz_is_read_as_written(tmp_path, rate, codec):
    # Found by review: the 16.16 rate field of a sound entry holds such a rate halved (ISO/IEC 14496-12),
    # and the reader reported 48000 for 96000, so every such m4a/mp4 failed verification.
    from derived.command.demo import make_clip
    from lenses.media.engine import FFmpegEngine

    source = make_clip(tmp_path / "hi.mka", size=None, sample_rate=rate, seconds=1, encode=["-c:a", "flac"])
    out = tmp_path / "out"
    out.mkdir()
    result = audio(media_draft(source), AudioSpec(codec, "same", "same", "m4a", "{source_name}", str(out)))
    assert result.status == COMPLETED, result.message
    written = out / "hi.m4a"
    assert read_movie(str(written))["streams"][0]["sample_rate"] == rate
    assert parse_input_dump(run_ffmpeg([FFmpegEngine.pinned().path, "-hide_banner", "-i", f"file:{written}"]).stderr
                            )["streams"][0]["sample_rate"] == rate
