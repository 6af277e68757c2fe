"""The one module that starts processes: FFmpeg, from a list argv, never a shell.

Everything else in ``lenses.media`` is pure and hands argv lists here. The
child gets no stdin, a fixed environment (so ``FFREPORT``, locale and friends
cannot change what a job does), and its stderr is returned whole.

**No FFmpeg outlives the process that started it**, even one killed with
SIGKILL (which runs no ``finally`` and no signal handler). On Linux the
child asks the kernel, between ``fork`` and ``exec``, for SIGKILL when its
parent dies (``prctl(PR_SET_PDEATHSIG)``, see prctl(2)); the setting survives
the ``exec`` of FFmpeg (not setuid). Without it a SIGKILLed ``draftlens run``
left FFmpeg re-parented to init, still encoding into the job's temporary
file. Two details make the rule hold:

- the race: if the parent died after ``fork`` but before ``prctl`` ran, no
  signal will ever come; the child then sees a parent pid other than the one
  that started it (``getppid``) and kills itself before ``exec``;
- the kernel sends the signal when the *thread* that forked the child ends.
  The child is started by a thread of its own, which ends only once the
  child is reaped (a thread, too, so that a signal landing during the fork
  is never lost: ``_run_beside``).

The hook makes ``subprocess`` use ``fork`` instead of ``vfork``, which costs
about 4 ms per run in a 35 MB process and grows with its size (measured:
+17.7 ms of CPU per run at 126 MB, so more in a notebook holding gigabytes).
So where util-linux's ``setpriv`` can set the signal (``--pdeathsig``,
util-linux 2.33+, on every Debian and Ubuntu) FFmpeg is started through it
instead, with the fast spawn: ``setpriv`` asks for the signal and execs
FFmpeg in the same process (about +1.5 ms at 126 MB, whatever the size). Its one
gap: a parent killed in the millisecond between the spawn and ``setpriv``'s
``prctl`` leaves that FFmpeg to finish its job; it writes only into the
job's recorded temporary file, which the next ``draftlens run`` removes
(``lenses.media.leftovers``), and nothing is published. Without ``setpriv``
the hook above closes even that gap. Runs whose life is bounded and which
write nothing — header probes, the header read of a finished output,
``-version`` queries — keep the fast spawn (``die_with_parent=False``):
killed with their parent, they end on their own a few milliseconds later
and leave nothing.

Other systems have no such call (macOS and the BSDs would need a watcher
process, Windows a job object); there the hook is a no-op and a SIGKILLed
run can still leave an FFmpeg running (SIGINT, SIGTERM and SIGHUP stop it
everywhere: ``derived.signals``).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

import attrs

__all__ = ["RunOutcome", "run_ffmpeg", "query_ffmpeg", "DIES_WITH_PARENT"]

# FFmpeg reads FFREPORT / AV_LOG_FORCE_* from the environment; a job's
# behaviour must not, so the child sees only this.
_ENV = {"LC_ALL": "C", "AV_LOG_FORCE_NOCOLOR": "1"}
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _load_prctl() -> Callable | None:
    """libc's ``prctl``, resolved now, in the parent: the child must not ``dlopen`` (the loader's lock may be
    held by another thread at ``fork``). None off Linux, or without a C library that has it."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
    prctl.restype = ctypes.c_int
    return prctl


_prctl = _load_prctl()
DIES_WITH_PARENT = _prctl is not None
"""True where a started FFmpeg is killed by the kernel when its parent dies (Linux)."""

_UNKNOWN = object()
_setpriv_path: object = _UNKNOWN


def _setpriv() -> str | None:
    """util-linux's ``setpriv``, if it can set the parent-death signal (asked once per process); else None."""
    global _setpriv_path
    if _setpriv_path is _UNKNOWN:
        found = shutil.which("setpriv") if _prctl is not None else None
        if found is not None:
            try:  # util-linux before 2.33 has no --pdeathsig
                check = subprocess.run([found, "--pdeathsig", "KILL", "--", found, "--version"], env=_ENV,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, timeout=10, check=False)
                found = found if check.returncode == 0 else None
            except (OSError, subprocess.SubprocessError):
                found = None
        _setpriv_path = found
    return _setpriv_path  # type: ignore[return-value]


def _die_with(parent: int) -> Callable[[], None]:
    """The ``preexec_fn`` run in the child between fork and exec: system calls only (no import, no lock)."""
    prctl = _prctl

    def hook() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError("prctl(PR_SET_PDEATHSIG) failed: FFmpeg would outlive a killed draftlens")
        if os.getppid() != parent:  # the parent died before prctl: no signal will come, so die now
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


@attrs.frozen
class RunOutcome:
    """What one FFmpeg process did. ``exit_code`` is None if it never started."""

    exit_code: int | None
    stderr: str
    launch_error: str | None = None


def run_ffmpeg(argv: Sequence[str], stdout: int | None = None, *, die_with_parent: bool = True) -> RunOutcome:
    """Run ``argv`` once (no retries) and wait for it.

    ``stdout``: a file descriptor the child writes its output to (a job's own
    temporary file, ``-fd 1 fd:``); by default stdout is discarded. If this
    call is interrupted (Ctrl-C, or a SIGTERM/SIGHUP that the command turns
    into an exception), the child is killed and reaped before the exception
    goes on, so no FFmpeg outlives the job that started it. With
    ``die_with_parent`` (the default) the kernel kills the child if this
    process dies without unwinding (SIGKILL, the OOM killer); Linux only, see
    the module's docstring. Raises TypeError for an argv that is not a
    non-empty list of str.
    """
    if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
        raise TypeError("argv must be a non-empty list of str (never a shell string)")
    argv = list(argv)
    if die_with_parent and _prctl is not None:
        setpriv = _setpriv()
        if setpriv is None:
            return _run_beside(argv, stdout)
        if not os.access(argv[0], os.X_OK):  # said as subprocess says it, not as setpriv's exit 127
            problem = errno.EACCES if os.path.exists(argv[0]) else errno.ENOENT
            return RunOutcome(None, "", f"cannot start {argv[0]}: {os.strerror(problem)}")
        launch = [setpriv, "--pdeathsig", "KILL", "--", *argv]
    else:
        launch = argv
    try:
        proc = subprocess.run(
            launch, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL if stdout is None else stdout,
            stderr=subprocess.PIPE, env=_ENV, close_fds=True, check=False,
        )
    except OSError as exc:
        return RunOutcome(None, "", f"cannot start {argv[0]}: {exc.strerror or exc}")
    return RunOutcome(proc.returncode, proc.stderr.decode("utf-8", "replace"))


class _Run:
    """One FFmpeg run shared by the calling thread and the thread that starts and reaps it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.stopped = False
        self.outcome: RunOutcome | None = None
        self.error: BaseException | None = None


def _start_and_reap(run: _Run, argv: list[str], stdout: int | None, parent: int) -> None:
    try:
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL if stdout is None else stdout,
                stderr=subprocess.PIPE, env=_ENV, close_fds=True, preexec_fn=_die_with(parent),
            )
        except OSError as exc:
            run.outcome = RunOutcome(None, "", f"cannot start {argv[0]}: {exc.strerror or exc}")
            return
        except subprocess.SubprocessError as exc:  # the hook failed in the child: nothing was run
            run.outcome = RunOutcome(None, "", f"cannot start {argv[0]}: {exc}")
            return
        with run.lock:
            run.proc = proc
            stopped = run.stopped
        with proc:
            try:
                if stopped:  # the caller was interrupted while the child was being started
                    proc.kill()
                _, stderr = proc.communicate()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        run.outcome = RunOutcome(proc.returncode, stderr.decode("utf-8", "replace"))
    except BaseException as exc:  # handed to the caller, which raises it
        run.error = exc


def _run_beside(argv: list[str], stdout: int | None) -> RunOutcome:
    """Start and reap the child in a thread of its own, while the calling thread waits.

    The parent-death hook makes ``subprocess`` fork (not vfork), and a fork
    runs Python's at-fork handlers (``logging`` has some). A signal handler
    that raises there — SIGINT's KeyboardInterrupt, ``derived.signals``'
    Terminated — would be printed as "ignored" and lost, and the run would
    go on. Python runs signal handlers only in the main thread, so forking in
    another thread keeps them out of that window; the caller's wait stays
    interruptible, and an interrupt kills and reaps the child as
    ``subprocess.run`` does. The starting thread is also the one the kernel
    watches for the parent-death signal, and it ends only once the child is
    reaped.
    """
    run = _Run()
    thread = threading.Thread(target=_start_and_reap, args=(run, argv, stdout, os.getpid()),
                              name="draftlens-ffmpeg", daemon=True)
    try:
        thread.start()
        thread.join()
    except BaseException:
        with run.lock:
            run.stopped = True
            proc = run.proc
        if proc is not None:
            proc.kill()
        try:
            thread.join()  # the child is dead or dying: it is reaped at once
        except RuntimeError:  # interrupted before the thread started: nothing was run
            pass
        raise
    if run.error is not None:
        raise run.error
    assert run.outcome is not None
    return run.outcome


def query_ffmpeg(binary: str, *args: str) -> tuple[int | None, str]:
    """``(exit code, stdout)`` of an informational call such as ``-version``.

    Bounded (60 s) and writing nothing, so it keeps the fast spawn (no parent-death hook)."""
    try:
        proc = subprocess.run(
            [binary, "-hide_banner", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=_ENV, close_fds=True, check=False, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")
