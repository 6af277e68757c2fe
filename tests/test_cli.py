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
    assert not (tmp_path / "out").exists()
    machine = draftlens("plan", str(path), "--json")
    record = json.loads(machine.stdout)
    assert record["job_count"] == 3 and record["is_dag"]
    assert [j["decision"] for j in record["jobs"]] == ["run", "run", "run"]
    assert draftlens("plan", str(path), "--json").stdout == machine.stdout  # deterministic


def test_run_writes_run_json_and_report_and_exits_0(tmp_path):
    path = write(tmp_path, GOOD)
    out = draftlens("run", str(path))
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert [o["payload"] for o in record["outputs"]["split"]] == [1, 2, 3]
    assert record["warnings"][0]["code"] == "truncatedFrames"
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
        ("[pipeline]\nbogus = 1\n", "pipeline: unknown key(s) ['bogus']; allowed: ['executor', 'name', 'output']"),
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


def test_demo_command_runs():
    out = draftlens("demo")
    assert out.returncode == 0 and "batches:" in out.stdout
