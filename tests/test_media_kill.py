"""What a media run killed outright (SIGKILL) leaves behind, and what the next run does with it.

1. A SIGKILLed serial ``draftlens run`` left FFmpeg running (re-parented to
   init, still encoding): now the kernel kills it with its parent
   (``lenses.media.run``, Linux).
2. The temporary file of the killed job stayed in the output folder, and the
   next run neither removed nor reported it: now the next run removes it,
   because the ledger recorded that draftlens made it and its maker is dead;
   a file that only looks like one is kept and reported
   (``lenses.media.leftovers``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import attrs
import pytest

from drafts.files import create_temporary
from lenses.media import run as media_run
from lenses.media.engine import FFmpegEngine
from lenses.media.ledger import (
    TemporaryRecord,
    ensure_ledger,
    forget_temporary,
    read_temporaries,
    record_temporary,
)
from lenses.media.leftovers import Leftovers, claim_temporary, sweep_leftovers, temporary_final_name

pytestmark = pytest.mark.ffmpeg
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux-only")

_GONE_WITHIN_S = 20  # a bound, never a speed: a killed process is normally gone in milliseconds


def _state(pid: int) -> str | None:
    """The process's state letter from /proc (``Z``: a zombie), or None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()[0]


def _alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z")


def _ffmpeg_under(marker: str) -> list[int]:
    """Live FFmpeg processes whose command line names ``marker`` (the test's own folder)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
            except OSError:
                continue
            if "ffmpeg" in os.path.basename(argv[0]) and any(marker in a for a in argv) and _alive(int(entry)):
                found.append(int(entry))
    return found


def _wait_until(condition, timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def _pipeline(tmp_path: Path, resolution: str) -> Path:
    path = tmp_path / "pipe.toml"
    path.write_text(textwrap.dedent(f"""
        [pipeline]
        output = "out"
        [[sources]]
        id = "clips"
        glob = "clips/*.mp4"
        [[lenses]]
        id = "p"
        lens = "media.proxy"
        input = "clips"
        params = {{ codec = "vp9", container = "webm", resolution = "{resolution}", naming_template = "{{source_name}}_p", output_directory = "out/p" }}
    """))
    return path


def _draftlens(tmp_path: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "derived", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, **kwargs)


# ---------------------------------------------------------------- 1 + 2: a real SIGKILL, then the next run


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """5 minutes of a tiny clip: cheap to make, minutes to encode upscaled, so an FFmpeg that survived its
    parent would still be running long after the bound the tests wait."""
    from derived.command.demo import make_clip

    return make_clip(tmp_path_factory.mktemp("long") / "long.mp4", seconds=300)


@linux_only
def test_a_sigkilled_serial_run_leaves_no_ffmpeg_and_the_next_run_removes_its_temporary_file(tmp_path, long_clip):
    from derived.command.demo import make_clip

    (tmp_path / "clips").mkdir()
    shutil.copyfile(long_clip, tmp_path / "clips" / "a.mp4")
    pipeline = _pipeline(tmp_path, "1280x720")
    run = subprocess.Popen([sys.executable, "-m", "derived", "run", "--no-cache", str(pipeline)], cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    proxies = tmp_path / "out" / "p"
    marker = str(tmp_path)
    try:
        assert _wait_until(lambda: proxies.is_dir() and any(".partial." in p.name for p in proxies.iterdir())
                           and _ffmpeg_under(marker), timeout=120), "the run never started encoding"
        encoders = _ffmpeg_under(marker)
        assert run.poll() is None, "the run ended before it could be killed"
        run.kill()  # SIGKILL, the run process only: no handler, no finally runs
        run.wait()
        survived = not _wait_until(lambda: not any(_alive(pid) for pid in encoders), _GONE_WITHIN_S)
        assert not survived, f"FFmpeg {encoders} still running {_GONE_WITHIN_S} s after its parent was SIGKILLed"
    finally:
        for pid in _ffmpeg_under(marker):  # never leave an encoder behind, whatever failed above
            os.kill(pid, signal.SIGKILL)
    stale = [p.name for p in proxies.iterdir() if ".partial." in p.name]
    assert len(stale) == 1 and stale[0].startswith(".a_p.")  # what a SIGKILL leaves: the job could not remove it
    assert [r.name for r in read_temporaries(str(proxies))] == stale  # recorded before FFmpeg wrote a byte

    # The next run (the clip replaced by a short one, so it is quick) removes that file: draftlens recorded
    # making it, it is the very file recorded, and its maker is dead.
    make_clip(tmp_path / "clips" / "a.mp4", seconds=0.4)
    again = _draftlens(tmp_path, "run", "-v", "--no-cache", str(pipeline))
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(p.name for p in proxies.iterdir()) == [".draftlens", "a_p.webm"]
    assert f"removed {proxies / stale[0]}, the temporary file of a draftlens job killed" in again.stderr
    assert read_temporaries(str(proxies)) == ()


@linux_only
def test_a_child_whose_parent_died_before_the_hook_ran_kills_itself():
    # The race: the parent died between fork and prctl, so no parent-death signal will ever come. The hook
    # sees a parent pid other than the one that started it and kills the child before exec.
    ffmpeg = FFmpegEngine.pinned().path
    not_my_parent = os.getpid() + 4_000_000  # above pid_max: no process has it
    proc = subprocess.run([ffmpeg, "-version"], preexec_fn=media_run._die_with(not_my_parent),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.returncode == -signal.SIGKILL
    ok = subprocess.run([ffmpeg, "-version"], preexec_fn=media_run._die_with(os.getpid()),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert ok.returncode == 0


@linux_only
@pytest.mark.parametrize("spawn", ["setpriv", "prctl hook"])
def test_ffmpeg_of_a_worker_killed_outright_dies_with_it(tmp_path, long_clip, spawn):
    # run_ffmpeg in a process that is then SIGKILLed (here: a plain Python child running one long encode),
    # started through util-linux's setpriv where it has --pdeathsig, else with the prctl hook: both kill it.
    if spawn == "setpriv" and media_run._setpriv() is None:
        pytest.skip("no setpriv with --pdeathsig here (util-linux < 2.33)")
    clip = tmp_path / "long.mp4"
    shutil.copyfile(long_clip, clip)
    ffmpeg = FFmpegEngine.pinned().path
    force = "import lenses.media.run as r\nr._setpriv_path = None\n" if spawn == "prctl hook" else ""
    code = (force + f"from lenses.media.run import run_ffmpeg\n"
            f"run_ffmpeg([{ffmpeg!r}, '-nostdin', '-nostats', '-v', 'error', '-i', {str(clip)!r}, '-vf', 'scale=1280:720', '-c:v', 'libvpx-vp9', "
            f"'-threads', '1', '-f', 'null', '-'])\n")
    worker = subprocess.Popen([sys.executable, "-c", code])
    marker = str(clip)
    try:
        assert _wait_until(lambda: _ffmpeg_under(marker), timeout=60)
        encoders = _ffmpeg_under(marker)
        worker.kill()
        worker.wait()
        assert _wait_until(lambda: not any(_alive(pid) for pid in encoders), _GONE_WITHIN_S), encoders
    finally:
        for pid in _ffmpeg_under(marker):
            os.kill(pid, signal.SIGKILL)


def test_runs_that_write_nothing_keep_the_fast_spawn_and_a_missing_binary_is_a_launch_error(tmp_path):
    outcome = media_run.run_ffmpeg([str(tmp_path / "no-ffmpeg")])
    assert outcome.exit_code is None and "cannot start" in outcome.launch_error
    quick = media_run.run_ffmpeg([FFmpegEngine.pinned().path, "-version"], die_with_parent=False)
    assert quick.exit_code == 0


# ---------------------------------------------------------------- 2: whose file is it?


def _with(record: TemporaryRecord, **changes) -> TemporaryRecord:
    return attrs.evolve(record, **changes)


def _dead_maker_temporaries(directory: Path, *finals: str) -> list[Path]:
    """Temporary files made and recorded by a process that has exited since (as a killed job leaves them)."""
    code = ("import os, sys\nfrom drafts.files import create_temporary\n"
            "from lenses.media.leftovers import claim_temporary\n"
            "for final in sys.argv[2:]:\n"
            "    fd, temp = create_temporary(sys.argv[1], final)\n"
            "    claim_temporary(temp, os.path.join(sys.argv[1], final), fd)\n"
            "    os.write(fd, b'half an encode')\n"
            "    print(temp)\n"
            "os._exit(0)\n")
    ensure_ledger(str(directory))
    out = subprocess.run([sys.executable, "-c", code, str(directory), *finals], capture_output=True, text=True,
                         check=True)
    return [Path(line) for line in out.stdout.splitlines()]


def test_an_abandoned_temporary_file_of_draftlens_is_removed_and_its_row_dropped(tmp_path):
    (stale,) = _dead_maker_temporaries(tmp_path, "a_p.webm")
    assert temporary_final_name(stale.name) == "a_p.webm"
    (tmp_path / "a_p.webm").write_bytes(b"the user's")  # a file under the final name is not the sweep's business
    found = sweep_leftovers(str(tmp_path))
    assert found.removed == (str(stale),) and found.kept == ()
    assert sorted(os.listdir(tmp_path)) == [".draftlens", "a_p.webm"]
    assert (tmp_path / "a_p.webm").read_bytes() == b"the user's"
    assert read_temporaries(str(tmp_path)) == ()


def test_look_alikes_are_kept_and_reported_never_removed(tmp_path):
    # No record at all: only the name looks like ours.
    no_record = tmp_path / ".a_p.0123456789abcdef.partial.webm"
    no_record.write_bytes(b"someone's")
    # Recorded by a dead maker, but the file there now is another one (replaced after the kill).
    replaced, mismatched, remote, linked = _dead_maker_temporaries(tmp_path, "b_p.webm", "c_p.webm", "d_p.webm",
                                                                   "e_p.webm")
    (tmp_path / "new").write_bytes(b"a new file under that name")
    os.replace(tmp_path / "new", replaced)  # as an editor saves: a new file renamed over the old
    # Recorded, but the row says it was for another output than its name.
    row = next(r for r in read_temporaries(str(tmp_path)) if r.name == mismatched.name)
    record_temporary(str(tmp_path), _with(row, final="other.webm"))
    # Recorded by a process on another host: it cannot be checked from here.
    row = next(r for r in read_temporaries(str(tmp_path)) if r.name == remote.name)
    record_temporary(str(tmp_path), _with(row, host="render-node-7"))
    # A link planted at a recorded name.
    os.symlink(tmp_path / "a_p.webm", tmp_path / "link")
    os.replace(tmp_path / "link", linked)
    before = {p.name: (p.lstat().st_ino, p.is_symlink()) for p in tmp_path.iterdir()}

    found = sweep_leftovers(str(tmp_path))
    assert found.removed == ()
    kept = dict(found.kept)
    assert sorted(kept) == sorted(str(p) for p in (no_record, replaced, mismatched, remote, linked))
    assert "draftlens has no record of making it" in kept[str(no_record)]
    assert "the one there now is another file" in kept[str(replaced)]
    assert "which its name does not match" in kept[str(mismatched)]
    assert "render-node-7" in kept[str(remote)] and "cannot be checked from here" in kept[str(remote)]
    assert "another file" in kept[str(linked)]
    assert {p.name: (p.lstat().st_ino, p.is_symlink()) for p in tmp_path.iterdir()} == before
    assert no_record.read_bytes() == b"someone's"


def test_a_live_runs_temporary_file_is_neither_touched_nor_reported(tmp_path):
    fd, temp = create_temporary(str(tmp_path), "a_p.webm")  # this test process is its live maker
    try:
        assert claim_temporary(temp, str(tmp_path / "a_p.webm"), fd) is False  # no ledger: none is made
        assert not (tmp_path / ".draftlens").exists()
        ensure_ledger(str(tmp_path))
        assert claim_temporary(temp, str(tmp_path / "a_p.webm"), fd) is True
        assert sweep_leftovers(str(tmp_path)) == Leftovers()
        assert os.path.exists(temp)
    finally:
        os.close(fd)


def test_a_reused_pid_or_a_reboot_does_not_keep_a_dead_makers_file_alive(tmp_path):
    ensure_ledger(str(tmp_path))
    fd, temp = create_temporary(str(tmp_path), "a_p.webm")
    os.close(fd)
    fd = os.open(temp, os.O_RDONLY)
    try:
        claim_temporary(temp, str(tmp_path / "a_p.webm"), fd)
    finally:
        os.close(fd)
    row = read_temporaries(str(tmp_path))[0]
    if row.started:  # Linux: this pid is alive, but with another start time it is another process
        record_temporary(str(tmp_path), _with(row, started=str(int(row.started) + 1)))
        assert sweep_leftovers(str(tmp_path)).removed == (temp,)
    machine_id, _, namespace = row.machine.split(" ")
    if machine_id != "-":  # the same machine, booted since
        fd, temp = create_temporary(str(tmp_path), "b_p.webm")
        claim_temporary(temp, str(tmp_path / "b_p.webm"), fd)
        os.close(fd)
        row = next(r for r in read_temporaries(str(tmp_path)) if r.name == os.path.basename(temp))
        record_temporary(str(tmp_path), _with(row, machine=f"{machine_id} another-boot {namespace}"))
        assert sweep_leftovers(str(tmp_path)).removed == (temp,)


def test_rows_whose_file_is_gone_are_dropped_and_a_folder_without_a_ledger_is_fine(tmp_path):
    (stale,) = _dead_maker_temporaries(tmp_path, "a_p.webm")
    stale.unlink()
    assert sweep_leftovers(str(tmp_path)).removed == ()
    assert read_temporaries(str(tmp_path)) == ()
    forget_temporary(str(tmp_path), "not-there")  # nothing to drop: fine
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / ".x.0123456789abcdef.partial").write_bytes(b"")
    found = sweep_leftovers(str(bare))
    assert found.removed == () and [p for p, _ in found.kept] == [str(bare / ".x.0123456789abcdef.partial")]
    assert not (bare / ".draftlens").exists()  # reading creates no ledger


def test_the_command_reports_a_look_alike_by_path_and_leaves_it(tmp_path):
    from derived.command.demo import make_clip

    (tmp_path / "clips").mkdir()
    make_clip(tmp_path / "clips" / "a.mp4")
    pipeline = _pipeline(tmp_path, "same")
    proxies = tmp_path / "out" / "p"
    proxies.mkdir(parents=True)
    look_alike = proxies / ".a_p.0123456789abcdef.partial.webm"
    look_alike.write_bytes(b"not draftlens's")
    result = _draftlens(tmp_path, "run", "--no-cache", str(pipeline))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"WARNING: draftlens.cli: {look_alike}: it looks like a temporary file of draftlens, but draftlens has " \
           "no record of making it; it is left as it is" in result.stderr
    assert look_alike.read_bytes() == b"not draftlens's"
    assert sorted(p.name for p in proxies.iterdir()) == [".a_p.0123456789abcdef.partial.webm", ".draftlens",
                                                          "a_p.webm"]


def test_a_job_whose_temporary_file_cannot_be_recorded_runs_nothing(tmp_path):
    from derived import recompute_derived
    from derived.command.demo import make_clip
    from drafts import Store, media_draft, pack_drafts
    from lenses.media import ProxySpec

    clip = make_clip(tmp_path / "a.mp4")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".draftlens").write_bytes(b"a file where draftlens keeps its ledger")
    carrier = pack_drafts([media_draft(clip)])
    store = Store.empty().add_draft(carrier).add_lens_instance(
        "p", "media.proxy", carrier.id, ProxySpec("vp9", "webm", "same", "{source_name}_p", str(out)))
    (result,) = recompute_derived(store).results.values()
    assert result.status == "FAILED" and result.failure_class == "execution" and result.exit_code is None
    assert "cannot record the temporary file" in result.message and "so nothing was run" in result.message
    assert ".draftlens should be draftlens's ledger folder" in result.message
    assert sorted(os.listdir(out)) == [".draftlens"]


_SIGNAL_DURING_FORK = '''
import os, signal, sys
from lenses.media.engine import FFmpegEngine
import lenses.media.run as r
from lenses.media.run import run_ffmpeg

r._setpriv_path = None  # the prctl hook's fork (through setpriv, subprocess vforks: no at-fork handler runs)

class Stop(BaseException):
    pass

def stop(signum, frame):
    raise Stop()

armed = []
os.register_at_fork(before=lambda: armed and os.kill(os.getpid(), signal.SIGUSR1))  # lands during the fork
signal.signal(signal.SIGUSR1, stop)
armed.append(1)
try:
    outcome = run_ffmpeg([FFmpegEngine.pinned().path, "-version"])
except Stop:
    print("stopped")
else:
    print("lost", outcome.exit_code)
'''


@linux_only
def test_a_stop_signal_landing_during_the_fork_is_never_lost(tmp_path):
    # Forking runs Python's at-fork handlers; a signal handler that raises inside one is printed as "ignored"
    # and the exception is lost (a SIGTERM then did not stop the run). run_ffmpeg forks outside the main thread,
    # where no signal handler runs, so the signal interrupts the caller instead.
    out = subprocess.run([sys.executable, "-c", _SIGNAL_DURING_FORK], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "stopped", out.stdout + out.stderr
