"""SIGTERM and SIGHUP stop work the way Ctrl-C does: cleanly.

By default SIGTERM (``kill``, systemd, a batch scheduler) and SIGHUP (a closed
terminal) end a Python process at once: no ``finally`` runs, so an FFmpeg
child keeps encoding as an orphan and its temporary file stays behind.
``stop_on_signals()`` turns them into a ``Terminated`` exception in the main
thread instead, so the same unwinding as for Ctrl-C happens: FFmpeg children
are killed and reaped (``subprocess.run`` does that on any exception), the
jobs' temporary files are removed, worker processes are stopped the same way,
and the command exits ``128 + signal`` (143 for SIGTERM, 129 for SIGHUP), as
shells report a process killed by that signal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

__all__ = ["Terminated", "STOP_SIGNALS", "stop_on_signals", "kill_children", "stop_with_parent"]

STOP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s)


class Terminated(BaseException):
    """The process was asked to stop by ``signum``; ``exit_code`` is ``128 + signum``.

    A BaseException, like KeyboardInterrupt: no ``except Exception`` may
    swallow it.
    """

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __reduce__(self):
        return type(self), (self.signum,)


def _raise(signum: int, _frame) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM/SIGHUP raise ``Terminated``; the earlier handlers come back after.

    Outside the main thread (where Python cannot set handlers) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` still in the process table (Linux ``/proc``; elsewhere none)."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()  # after "(comm) ": state, ppid, ...
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def kill_children() -> None:
    """SIGKILL and reap every child process of this one that is still alive.

    The last step of stopping on a signal: a signal that lands while an
    FFmpeg child is being started (before ``subprocess`` can kill it on the
    way out) must not leave that child encoding as an orphan.
    """
    for pid in _children(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


_PR_SET_PDEATHSIG = 1


def stop_with_parent(parent: int | None = None) -> None:
    """Linux: this process gets SIGTERM when its parent dies, however it dies (SIGKILL included).

    For worker processes: with the executor's SIGTERM handler installed, the
    worker then stops its job the clean way (FFmpeg killed, temporary file removed) and
    exits, instead of running the rest of the queue as an orphan. Elsewhere
    it does nothing.
    """
    import ctypes
    import ctypes.util

    if parent is None:
        parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: no such call
        return
    if os.getppid() != parent:  # the parent died before the call (even before this process ran): act as if signalled
        os.kill(os.getpid(), signal.SIGTERM)
