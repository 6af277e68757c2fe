"""The one module that starts processes: FFmpeg, from a list argv, never a shell.

Everything else in ``lenses.media`` is pure and hands argv lists here. The
child gets no stdin, a fixed environment (so ``FFREPORT``, locale and friends
cannot change what a job does), and its stderr is returned whole.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import attrs

__all__ = ["RunOutcome", "run_ffmpeg", "query_ffmpeg"]

# FFmpeg reads FFREPORT / AV_LOG_FORCE_* from the environment; a job's
# behaviour must not, so the child sees only this.
_ENV = {"LC_ALL": "C", "AV_LOG_FORCE_NOCOLOR": "1"}


@attrs.frozen
class RunOutcome:
    """What one FFmpeg process did. ``exit_code`` is None if it never started."""

    exit_code: int | None
    stderr: str
    launch_error: str | None = None


def run_ffmpeg(argv: Sequence[str], stdout: int | None = None) -> RunOutcome:
    """Run ``argv`` once (no retries) and wait for it.

    ``stdout``: a file descriptor the child writes its output to (a job's own
    temporary file, ``-fd 1 fd:``); by default stdout is discarded. If this
    call is interrupted (Ctrl-C, or a SIGTERM/SIGHUP that the command turns
    into an exception), the child is killed and reaped before the exception
    goes on, so no FFmpeg outlives the job that started it.
    """
    if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
        raise TypeError("argv must be a non-empty list of str (never a shell string)")
    try:
        proc = subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL if stdout is None else stdout,
            stderr=subprocess.PIPE,
            env=_ENV, close_fds=True, check=False,
        )
    except OSError as exc:
        return RunOutcome(None, "", f"cannot start {argv[0]}: {exc.strerror or exc}")
    return RunOutcome(proc.returncode, proc.stderr.decode("utf-8", "replace"))


def query_ffmpeg(binary: str, *args: str) -> tuple[int | None, str]:
    """``(exit code, stdout)`` of an informational call such as ``-version``."""
    try:
        proc = subprocess.run(
            [binary, "-hide_banner", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=_ENV, close_fds=True, check=False, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")
