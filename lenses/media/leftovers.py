"""Temporary files left by a job that was killed outright, and the rule for removing them.

A job's temporary file (``.<stem>.<random>.partial.<ext>``, ``drafts.files``)
is removed by the job itself on every failure and on Ctrl-C, SIGTERM and
SIGHUP. A process killed with SIGKILL (or by the OOM killer, or a power cut)
removes nothing, so its temporary file stays in the output folder. Whose
file is that, the next time? Looking at the name is not enough: anyone can
make a file with that name, and a file of a run still going has it too. So:

1. ``claim`` — right after the job creates its temporary file, and before
   FFmpeg writes a byte, the file is recorded in the folder's ledger
   (``ledger.record_temporary``): its name, device and inode, the final name it
   is for, and the process that made it (host, boot, pid namespace, pid and
   the process's start time). The row is dropped once the file is gone.
   A folder without a ledger gets none (``draftlens run`` makes one in each
   folder it holds; from Python, the first published output makes it).
2. ``sweep`` — a later run removes a file only if all of these hold: its
   name has the temporary pattern *for the final name recorded with it*; the
   ledger has its row; the file at that name is the very file recorded (a
   regular file, same device and inode: not a copy, not a link, not a file
   made later under the same name); and its maker is provably dead (same
   host, boot and pid namespace, and no process with that pid and start
   time). The kernel then has already killed that process's FFmpeg
   (``run``: parent-death signal), so nothing writes the file any more.
3. Every other file with a temporary-looking name is left as it is and
   reported, with why: no record of draftlens making it, a recorded one that
   was replaced since, or a maker that cannot be checked from here (another
   host or container). A file whose maker is alive belongs to a run in
   progress and is neither touched nor reported.

Seed ``002_f460e4c8ce5728cf.txt``: execution modifies nothing beyond creating
its own outputs; removing one's own abandoned temporary file is the one
clean-up that rule allows.
"""

from __future__ import annotations

import os
import re
import socket
import stat

import attrs

from drafts.files import TEMPORARY_MARK

from .ledger import TemporaryRecord, forget_temporary, read_temporaries, record_temporary

__all__ = ["TEMPORARY_NAME", "Leftovers", "claim_temporary", "release_temporary", "sweep_leftovers",
           "temporary_final_name"]

TEMPORARY_NAME = re.compile(r"^\.(?P<stem>.+)\.[0-9a-f]{16}" + re.escape(TEMPORARY_MARK) + r"(?P<ext>\.[^.]+)?$",
                            re.DOTALL)
"""The names ``drafts.files.create_temporary`` gives: ``.<stem>.<16 hex>.partial[.<ext>]``."""


def temporary_final_name(name: str) -> str | None:
    """The final name a temporary file's name is for (``.a.0123456789abcdef.partial.mov`` → ``a.mov``), or
    None if ``name`` does not have the pattern.

    >>> temporary_final_name(".a_p.0123456789abcdef.partial.webm")
    'a_p.webm'
    >>> temporary_final_name("a_p.webm") is None
    True
    """
    match = TEMPORARY_NAME.match(name)
    if match is None:
        return None
    return match.group("stem") + (match.group("ext") or "")


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("ascii", "replace").strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """A process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22); "" where unknown."""
    text = _read(f"/proc/{pid}/stat")
    fields = text[text.rfind(")") + 2:].split() if ")" in text else []
    return fields[19] if len(fields) > 19 else ""


def _machine() -> str:
    """What makes pids comparable: ``"<machine id> <boot id> <pid namespace>"`` (Linux), ``-`` for each
    part not known."""
    machine_id = _read("/etc/machine-id")
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return " ".join(part.replace(" ", "_") or "-" for part in (machine_id, boot, namespace))


_me: tuple[int, tuple[str, str, str]] | None = None


def _this_process() -> tuple[str, str, str]:
    """``(host, machine, started)`` of this process (computed once per process; a fork computes anew)."""
    global _me
    pid = os.getpid()
    if _me is None or _me[0] != pid:
        _me = (pid, (socket.gethostname(), _machine(), _start_time(pid)))
    return _me[1]


def claim_temporary(temp: str, final: str, fd: int) -> bool:
    """Record the temporary file ``temp`` (open as ``fd``, made by this process for ``final``) in the
    ledger of its folder, before anything is written to it.

    False if the folder has no ledger yet (nothing published there, and no
    ``draftlens run`` holding it): none is made, so that a job failing there
    leaves the folder as it found it; a SIGKILL then leaves an unrecorded
    file, which is reported, never removed. Raises LedgerError if the ledger
    is there but cannot be written.
    """
    directory, name = os.path.split(temp)
    st = os.fstat(fd)
    host, machine, started = _this_process()
    return record_temporary(directory, TemporaryRecord(name, os.path.basename(final), st.st_dev, st.st_ino, host,
                                                       machine, os.getpid(), started))


def release_temporary(temp: str) -> None:
    """Drop the row of ``temp`` once the file is gone (removed, or published under its final name).

    Raises LedgerError if the ledger cannot be written; the row left behind
    then matches no file, and the next ``sweep_leftovers`` drops it.
    """
    directory, name = os.path.split(temp)
    forget_temporary(directory, name)


@attrs.frozen
class Leftovers:
    """What ``sweep_leftovers`` did in one folder: ``removed`` (paths of abandoned temporary files of
    draftlens) and ``kept`` (``(path, why)`` of files with a temporary-looking name left as they are)."""

    removed: tuple[str, ...] = ()
    kept: tuple[tuple[str, str], ...] = ()


def _maker_state(record: TemporaryRecord) -> str | None:
    """None if the maker is provably dead; "alive"; or why it cannot be checked from here."""
    host, machine, _ = _this_process()
    cannot = f"made by a draftlens process (pid {record.pid}) on {record.host}"
    if record.host != host:
        return f"{cannot}, another host, which cannot be checked from here"
    if record.machine != machine:
        theirs, ours = record.machine.split(" "), machine.split(" ")
        if len(theirs) == 3 and "-" not in theirs[:2] + ours[:2] and theirs[0] == ours[0] and theirs[1] != ours[1]:
            return None  # this very machine (machine id), booted since: every process of then is gone
        return f"{cannot}, in another machine, container or pid namespace, which cannot be checked from here"
    now = _start_time(record.pid)
    if now and record.started:  # the same pid with the same start time is the same process
        return "alive" if now == record.started else None
    try:  # no start time to compare (not Linux, or /proc hides the pid): only a missing pid is proof
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return None
    except OSError:
        return "alive"
    return "alive"


def _same_file(st: os.stat_result, record: TemporaryRecord) -> bool:
    return stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (record.device, record.inode)


def sweep_leftovers(directory: str | os.PathLike) -> Leftovers:
    """Remove the abandoned temporary files draftlens provably made in ``directory``; report the others.

    The rule is the module's. Meant for a folder this process holds
    (``draftlens run`` sweeps each media output folder once its run lock is
    taken, before any job runs), though a file of a live run is never
    touched whoever calls it. Raises LedgerError if the folder's ledger
    exists but cannot be read (nothing is removed then).
    """
    directory = os.fspath(directory)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return Leftovers()
    looks_alike = [n for n in names if TEMPORARY_NAME.match(n)]
    records = {r.name: r for r in read_temporaries(directory)}
    removed: list[str] = []
    kept: list[tuple[str, str]] = []
    for record in records.values():  # rows whose file is gone (removed, published, or lost): drop them
        if record.name not in looks_alike and not os.path.lexists(os.path.join(directory, record.name)):
            forget_temporary(directory, record.name)
    for name in looks_alike:
        path = os.path.join(directory, name)
        record = records.get(name)
        if record is None:
            kept.append((path, "it looks like a temporary file of draftlens, but draftlens has no record of making "
                               "it; it is left as it is (delete it yourself if it is yours to delete)"))
            continue
        if temporary_final_name(name) != record.final:
            kept.append((path, f"its record says it was for {record.final!r}, which its name does not match; "
                               "it is left as it is"))
            continue
        try:
            st = os.lstat(path)
        except FileNotFoundError:  # removed meanwhile by its maker
            continue
        if not _same_file(st, record):
            kept.append((path, "draftlens made a temporary file of this name, but the one there now is another file "
                               "(a copy, a link, or replaced since); it is left as it is"))
            continue
        maker = _maker_state(record)
        if maker == "alive":  # a run in progress owns it
            continue
        if maker is not None:
            kept.append((path, f"{maker}; it is left as it is (delete it once that run is over)"))
            continue
        try:
            if not _same_file(os.lstat(path), record):  # checked again just before the unlink
                continue
            os.unlink(path)  # the name only: if the job was killed mid-publication, the final name keeps the file
        except FileNotFoundError:
            pass
        except OSError as exc:
            kept.append((path, f"an abandoned temporary file of draftlens (pid {record.pid}) that cannot be removed: "
                               f"{exc.strerror or exc}"))
            continue
        forget_temporary(directory, name)
        removed.append(path)
    return Leftovers(tuple(removed), tuple(kept))

