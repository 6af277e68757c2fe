"""Drive the real ``draftlens`` command in a subprocess."""

import json
import subprocess
import sys
import textwrap

import pytest


def draftlens(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "derived", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def write(tmp_path, text, name="pipeline.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """
    [pipeline]
    output = "out"
    [caps]
    max_frames_evaluated = 2
    [[sources]]
    id = "notes"
    drafts = [{ text = "a", items = [1, 2] }, { text = "b", items = [3] }, { text = "c", items = [] }]
    [[lenses]]
    id = "up"
    lens = "text.upper"
    input = "notes"
    [[lenses]]
    id = "split"
    lens = "list.split"
    input = "up"
    params = { field = "items" }
"""


def test_plan_prints_jobs_and_truncating_caps_without_running(tmp_path):
    path = write(tmp_path, GOOD)
    out = draftlens("plan", str(path))
    assert out.returncode == 0, out.stderr
    assert "source notes: 3 frames  (caps: only the first 2 frames will be evaluated)" in out.stdout
    assert "up        text.upper  2" in out.stdout and "split" in out.stdout
    # Nothing but the evaluation cache (it remembers source fingerprints for the next plan).
    assert [p.name for p in (tmp_path / "out").iterdir()] == [".draftlens"]
    assert [p.name for p in (tmp_path / "out" / ".draftlens").iterdir() if not p.name.endswith(("-wal", "-shm"))] \
        == ["cache.sqlite"]
    machine = draftlens("plan", str(path), "--json")
    record = json.loads(machine.stdout)
    assert record["job_count"] == 3 and record["is_dag"]
    assert [j["decision"] for j in record["jobs"]] == ["run", "run", "run"]
    assert draftlens("plan", str(path), "--json").stdout == machine.stdout  # deterministic


def test_run_writes_run_json_and_report_and_exits_0(tmp_path):
    path = write(tmp_path, GOOD.replace("max_frames_evaluated = 2", "max_frames_evaluated = 3"))
    out = draftlens("run", str(path))
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert [o["payload"] for o in record["outputs"]["split"]] == [1, 2, 3]
    assert record["warnings"] == [] and record["truncated"] == [] and record["schema_version"] == 1
    page = (tmp_path / "out" / "report.html").read_text()
    assert record["session_id"] in page and "<!doctype html>" in page
    assert "\r" not in out.stderr  # no progress bar when stderr is not a terminal


def test_run_exits_1_when_a_job_fails(tmp_path):
    path = write(tmp_path, GOOD.replace('params = { field = "items" }', 'params = { field = "text" }'))
    out = draftlens("run", str(path), "--executor", "processes:2")
    assert out.returncode == 1
    assert "lensError" in out.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[pipeline]\nbogus = 1\n", "pipeline: unknown key(s) ['bogus']; allowed: ['executor', 'lens_modules', 'name', 'output']"),
        ("[pipeline]\noutput = 3\n", "pipeline.output: expected str, got int"),
        ("[[sources]]\nid = 'a'\n", "sources[0]: give exactly one of 'glob' (media files) or 'drafts'"),
        ("[[lenses]]\nid = 'x'\nlens = 'text.upper'\ninput = 'nope'\n", "lenses[0].input: 'nope' is neither"),
        ("[[lenses]]\nlens = 'text.upper'\n", "lenses[0].id: required"),
        ("[caps]\nmax_frames = 3\n", "caps: unknown key(s) ['max_frames']"),
        ("[caps]\nmax_frames_evaluated = -1\n", "caps: Caps.max_frames_evaluated must be an int >= 0"),
        ("[pipeline]\nexecutor = 'threads'\n", "pipeline.executor: expected 'serial', 'processes:N'"),
        ("[[sources]]\nid = 'a'\ndrafts = [1.5e400]\n", "invalid pipeline"),
        ("not toml [", "not valid TOML"),
        ("[[sources]]\nid = 'a'\ndrafts = []\n[[sources]]\nid = 'a'\ndrafts = []\n", "sources[1].id: 'a' is already used"),
    ],
)
def test_bad_pipeline_files_exit_2_naming_the_key(tmp_path, text, message):
    out = draftlens("plan", str(write(tmp_path, text)))
    assert out.returncode == 2
    assert message in out.stderr


def test_usage_errors_exit_2(tmp_path):
    assert draftlens().returncode == 2
    assert draftlens("run").returncode == 2
    assert draftlens("fly").returncode == 2
    assert draftlens("run", str(tmp_path / "missing.toml")).returncode == 2
    bad_executor = draftlens("run", str(write(tmp_path, GOOD)), "--executor", "gpu")
    assert bad_executor.returncode == 2 and "--executor: expected" in bad_executor.stderr


def test_demo_makes_clips_runs_the_four_media_lenses_and_exits_0(tmp_path):
    out = draftlens("demo", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stdout + out.stderr
    demo = tmp_path / "demo"
    assert f"open the report: {(demo / 'out' / 'report.html').as_uri()}" in out.stdout
    record = json.loads((demo / "out" / "run.json").read_text())
    clips = sorted(p.name for p in (demo / "clips").iterdir())
    assert len(clips) == 5 and "broken_card.mp4" in clips
    assert record["counts"]["media_failed"] == 4 and record["counts"]["media_completed"] == 16
    # the summary says why FFmpeg failed, not only its exit code (review 30)
    assert "clip broken_card.mp4: execution failure: FFmpeg exited with code" in out.stdout
    assert "moov atom not found" in out.stdout
    for folder, ext in (("proxies", ".mp4"), ("posters", ".jpg"), ("audio", ".wav")):
        made = sorted(p.name for p in (demo / "out" / folder).iterdir() if p.name != ".draftlens")
        assert len(made) == 4 and all(name.endswith(ext) for name in made), made
        assert not any(name.startswith("broken_card") for name in made)
    # Running it again reuses nothing (a fresh process has no memo) but gives the same files.
    before = {p.name: p.read_bytes() for p in (demo / "out" / "proxies").iterdir() if p.is_file()}
    assert draftlens("demo", str(demo)).returncode == 0
    assert {p.name: p.read_bytes() for p in (demo / "out" / "proxies").iterdir() if p.is_file()} == before


def test_make_clip_writes_the_same_bytes_for_the_same_call_and_other_bytes_for_another(tmp_path):
    from derived.command.demo import make_clip

    first, again = make_clip(tmp_path / "a.mp4"), make_clip(tmp_path / "b.mp4")
    later = make_clip(tmp_path / "c.mp4", first_frame=3)
    toned = make_clip(tmp_path / "d.mkv", size=None, sample_rate=8000, seconds=0.2, encode=["-c:a", "pcm_s16le"])
    assert first.read_bytes() == again.read_bytes() != later.read_bytes()
    assert toned.stat().st_size > 0 and toned.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # a Matroska file


def test_make_clip_names_the_clip_and_ffmpeg_s_complaint_when_ffmpeg_fails(tmp_path):
    from derived.command.demo import make_clip

    with pytest.raises(RuntimeError, match=r"could not make the sample clip .*bad\.mp4: .*no-such-encoder"):
        make_clip(tmp_path / "bad.mp4", encode=["-c:v", "no-such-encoder"])


def _journaled_session(root):
    code = f"""
from derived import Workspace
ws = Workspace.open({str(root)!r}, "ana", "ana@desk")
words = ws.pack([{{"text": "a"}}, {{"text": "b"}}])
ws.apply("up", "text.upper", words)
print(ws.session_id)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_sessions_list_show_and_replay(tmp_path):
    root = tmp_path / "logs"
    session_id = _journaled_session(root)
    listed = draftlens("sessions", "list", "--root", str(root), "--user", "ana")
    assert listed.returncode == 0 and session_id in listed.stdout and "active" in listed.stdout
    as_json = json.loads(draftlens("sessions", "list", "--root", str(root), "--user", "ana", "--json").stdout)
    assert as_json["schema_version"] == 1 and as_json["kind"] == "draftlens.sessions"
    listed_sessions = as_json["sessions"]
    assert [s["session_id"] for s in listed_sessions] == [session_id] and listed_sessions[0]["performer_id"] == "ana@desk"
    shown = draftlens("sessions", "show", session_id, "--root", str(root))
    assert shown.returncode == 0
    assert [line.split()[-2] if "session" in line else line.split()[3] for line in shown.stdout.splitlines()[1:]] == [
        "session", "add_draft", "add_lens_instance"]
    replayed = draftlens("sessions", "replay", session_id, "--root", str(root), "--json")
    assert replayed.returncode == 0, replayed.stderr
    state = json.loads(replayed.stdout)
    assert state["lens_instances"]["up"]["lens_id"] == "text.upper" and len(state["lens_instances"]["up"]["outputs"]) == 2


def test_sessions_replay_reuses_the_sessions_media_outputs_instead_of_making_them_again(tmp_path):
    from derived.command.demo import make_clip

    clip = make_clip(tmp_path / "clip.mp4")
    out = tmp_path / "posters"
    out.mkdir()
    code = f"""
from derived import Workspace
from drafts import media_draft
from lenses.media import ThumbnailSpec
ws = Workspace.open({str(tmp_path / "logs")!r}, "ana", "ana@desk")
clip = ws.pack([media_draft({str(clip)!r})])
spec = ThumbnailSpec(naming_template="{{source_name}}_poster", output_directory={str(out)!r}, size="32",
                     time_offset=0.1)
ws.apply("poster", "media.thumbnail", clip, spec)
assert len(ws.derived.outputs("poster")) == 1, ws.derived.warnings
print(ws.session_id)
ws.close()
"""
    made = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    session_id = made.stdout.strip()
    (poster,) = [p for p in out.iterdir() if p.suffix == ".jpg"]
    before = poster.stat()
    replayed = draftlens("sessions", "replay", session_id, "--root", str(tmp_path / "logs"), "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert len(json.loads(replayed.stdout)["lens_instances"]["poster"]["outputs"]) == 1
    after = poster.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # read, not made again
    assert [p for p in out.iterdir() if p.suffix == ".jpg"] == [poster]


def test_sessions_errors_exit_2(tmp_path):
    root = tmp_path / "logs"
    session_id = _journaled_session(root)
    assert draftlens("sessions", "show", "sess_nope", "--root", str(root)).returncode == 2
    missing = draftlens("sessions", "replay", "--root", str(root))
    assert missing.returncode == 2 and "needs a SESSION_ID" in missing.stderr
    escape = draftlens("sessions", "list", "--root", str(root), "--user", "../etc")
    assert escape.returncode == 2 and "user_id" in escape.stderr
    assert draftlens("sessions", "list", "--root", str(root)).returncode == 2
    journal = root / "users" / "ana" / "sessions" / f"{session_id}.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + b"{not json}\n" + b"".join(lines[1:]))
    damaged = draftlens("sessions", "replay", session_id, "--root", str(root))
    assert damaged.returncode == 2 and f"{session_id}.jsonl:2: not valid JSON" in damaged.stderr


def slow_proxy_pipeline(tmp_path, executor="serial"):
    """12 sample clips to ProRes HQ at full size: long enough to signal a run mid-encode."""
    from derived.command.demo import make_sample_clips

    clips = make_sample_clips(tmp_path / "clips")
    for i in range(3):  # more clips, so a signal lands mid-run
        for clip in clips[:4]:
            (tmp_path / "clips" / f"{i}_{clip.name}").write_bytes(clip.read_bytes())
    return write(tmp_path, f"""
        [pipeline]
        output = "out"
        executor = "{executor}"
        [[sources]]
        id = "clips"
        glob = "clips/*.mov"
        [[lenses]]
        id = "proxy"
        lens = "media.proxy"
        input = "clips"
        params = {{ codec = "prores_hq", container = "mov", resolution = "same", naming_template = "{{source_name}}", output_directory = "out/proxies" }}
    """)


def test_ctrl_c_stops_a_run_cleanly_and_leaves_no_partial_output(tmp_path):
    import os
    import signal
    import time

    from drafts import media_draft
    from lenses.media import probe

    pipeline = slow_proxy_pipeline(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "derived", "run", str(pipeline)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    proxies = tmp_path / "out" / "proxies"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (proxies.is_dir() and any(".partial." in p.name for p in proxies.iterdir())):
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "interrupted" in err and "Traceback" not in err
    left = sorted(p.name for p in proxies.iterdir() if p.name != ".draftlens")  # draftlens's own lock and record
    assert not any(".partial." in name for name in left), left
    assert len(left) < 8  # it really stopped early
    for name in left:  # whatever reached its final name is whole and verified
        result = probe(media_draft(proxies / name), None)
        assert result.status == "COMPLETED" and abs(result.outputs[0]["duration"] - 2.0) < 0.1
    assert not (tmp_path / "out" / "run.json").exists()  # no summary of a run that did not finish


def test_the_readme_pipeline_reference_is_a_valid_pipeline_and_equals_the_demos(tmp_path):
    import pathlib
    import re

    from derived.command.demo import DEMO_PIPELINE, make_sample_clips
    from derived.command.pipeline import load_pipeline

    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = re.search(r"### Pipeline files.*?```toml\n(.*?)```", readme, re.S).group(1)
    make_sample_clips(tmp_path / "clips")
    (tmp_path / "readme.toml").write_text(example)
    (tmp_path / "demo.toml").write_text(DEMO_PIPELINE)
    from_readme, demo = load_pipeline(tmp_path / "readme.toml"), load_pipeline(tmp_path / "demo.toml")
    assert from_readme.store == demo.store and from_readme.caps.max_frames_evaluated == 1000
    assert [p.name for p in from_readme.output_directories()] == ["proxies", "posters", "audio"]


def test_plan_of_a_media_pipeline_shows_each_ffmpeg_argv_and_runs_nothing(tmp_path):
    from derived.command.demo import write_demo_pipeline

    pipeline = write_demo_pipeline(tmp_path)
    out = draftlens("plan", str(pipeline))
    assert out.returncode == 0, out.stderr
    assert "FFmpeg commands:" in out.stdout
    lines = out.stdout.splitlines()
    commands = [(line, lines[i + 1]) for i, line in enumerate(lines) if line.startswith("  [proxy frame")]
    # FFmpeg writes to the job's own temporary file (its stdout, "-fd 1 fd:"); the plan names the final path
    assert len(commands) == 5 and all("-c:v libx264" in c and " -fd 1 " in c and " fd: " in c for c, _ in commands)
    assert all(w.strip().startswith("writes ") and w.endswith("_proxy.mp4") for _, w in commands)
    # not even the output folders: only the evaluation cache
    assert [p.name for p in (tmp_path / "out").iterdir()] == [".draftlens"]
    record = json.loads(draftlens("plan", str(pipeline), "--json").stdout)
    proxy_jobs = [j for j in record["jobs"] if j["lens_instance_id"] == "proxy"]
    assert len(proxy_jobs) == 5 and all("ffmpeg" in j["command"][0].rsplit("/", 1)[-1] for j in proxy_jobs)
    assert record == json.loads(draftlens("plan", str(pipeline), "--json").stdout)  # same plan every time
