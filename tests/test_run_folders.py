"""draftlens run checks its output folders before any job runs, and one run holds a folder at a time.

Issue 17, items 5 and 7: two runs on one output folder; a folder that is a
file, lies under a file or cannot be made; control characters in folder
names; an unreachable Dask scheduler. Each is one line on stderr and a
documented exit code, never a traceback, and nothing runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from derived.command.folders import FolderInUse, hold_folders, prepare_folders

PIPELINE = """
    [pipeline]
    output = "{output}"
    {extra}
    [[sources]]
    id = "notes"
    drafts = [{{ text = "a" }}, {{ text = "b" }}]
    [[lenses]]
    id = "up"
    lens = "text.upper"
    input = "notes"
"""


def write(tmp_path, output="out", extra=""):
    path = tmp_path / "pipeline.toml"
    path.write_text(textwrap.dedent(PIPELINE.format(output=output, extra=extra)))
    return path


def draftlens(*args):
    return subprocess.run([sys.executable, "-m", "derived", *args], capture_output=True, text=True, timeout=120)


def one_line_error(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_a_second_run_on_a_folder_in_use_is_refused_naming_the_holder(tmp_path):
    pipeline = write(tmp_path)
    (tmp_path / "out").mkdir()
    with hold_folders([tmp_path / "out"], "the other pipeline.toml"):
        proc = draftlens("run", str(pipeline))
        assert proc.returncode == 75
        line = one_line_error(proc)
        assert f"output folder {tmp_path / 'out'} is in use by another draftlens run" in line
        assert f"pid {os.getpid()}" in line and "the other pipeline.toml" in line
        assert not (tmp_path / "out" / "run.json").exists()
        with pytest.raises(FolderInUse):  # in one process too: flock locks are per open file
            with hold_folders([tmp_path / "out"]):
                pass
    proc = draftlens("run", str(pipeline))  # released: the next run goes ahead
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out" / "run.json").read_text())["counts"]["outputs"] == 2


def test_a_run_holds_every_media_output_folder_too(tmp_path):
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(textwrap.dedent("""
        [pipeline]
        output = "out"
        [[sources]]
        id = "notes"
        drafts = [{ text = "a" }]
        [[lenses]]
        id = "up"
        lens = "text.upper"
        input = "notes"
    """))
    (tmp_path / "shared").mkdir()
    (tmp_path / "out").mkdir()
    with hold_folders([tmp_path / "shared"]):
        with pytest.raises(FolderInUse, match="shared is in use"):
            with hold_folders([tmp_path / "out", tmp_path / "shared"]):
                pass
    assert draftlens("run", str(pipeline)).returncode == 0


@pytest.mark.parametrize("case", ["file", "under-a-file", "cannot-create"])
def test_an_output_folder_that_cannot_be_used_is_one_line_and_nothing_runs(tmp_path, case):
    if case == "file":
        (tmp_path / "out").write_text("a file")
        output, expect = "out", "is a file, not a folder"
    elif case == "under-a-file":
        (tmp_path / "blocker").write_text("a file")
        output, expect = "blocker/out", "lies under a file, not a folder"
    else:
        output, expect = "/proc/self/draftlens-out", "cannot create output folder /proc/"  # not even root can
    proc = draftlens("run", str(write(tmp_path, output)))
    assert proc.returncode == 2
    assert expect in one_line_error(proc)


def test_prepare_folders_refuses_control_characters():
    from derived.command.folders import FolderError

    with pytest.raises(FolderError, match="control character"):
        prepare_folders([__import__("pathlib").Path("/tmp/a\nb")])


@pytest.mark.parametrize("name", ["out\\u0000x", "out\\nx"])
def test_control_characters_in_media_output_folders_are_refused_before_anything_runs(tmp_path, name):
    pipeline = tmp_path / "pipeline.toml"
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mp4").write_bytes(b"not really a clip")
    pipeline.write_text(textwrap.dedent(f"""
        [pipeline]
        output = "out"
        [[sources]]
        id = "clips"
        glob = "clips/*.mp4"
        [[lenses]]
        id = "proxy"
        lens = "media.proxy"
        input = "clips"
        params = {{ codec = "h264", container = "mp4", resolution = "half", naming_template = "{{source_name}}", output_directory = "{name}" }}
    """))
    proc = draftlens("run", str(pipeline))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "control character" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips", "pipeline.toml"]  # no folder was made


@pytest.mark.slow
@pytest.mark.dask
def test_an_unreachable_dask_scheduler_is_one_line_before_any_folder_is_made(tmp_path):
    pytest.importorskip("distributed")
    proc = draftlens("run", str(write(tmp_path)), "--executor", "dask:tcp://127.0.0.1:1")
    assert proc.returncode == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in one_line_error(proc)
    assert not (tmp_path / "out").exists()


def test_caps_beyond_64_bits_are_a_pipeline_error(tmp_path):
    path = write(tmp_path, extra="")
    path.write_text(path.read_text() + "\n[caps]\nmax_frames_evaluated = 99999999999999999999\n")
    for command in ("plan", "run"):
        proc = draftlens(command, str(path))
        assert proc.returncode == 2
        assert "caps.max_frames_evaluated" in one_line_error(proc)
