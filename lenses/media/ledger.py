"""The record of the files draftlens wrote: whose file is this?

Before a media job writes, renames or deletes anything it asks who owns the
file at its final path. The answer comes from a small SQLite ledger kept
beside the outputs, ``<output_directory>/.draftlens/outputs.sqlite``: one row
per file a draftlens job published there — its name, size, BLAKE3
fingerprint, the file status it had (device, inode, mtime), the job that made
it and the source it was made from. Beside the outputs, because the record
must be right whoever runs the job (the library, the command, a workspace, a
worker process or a Dask worker) and must follow the folder when it moves.

A file at a final path is *ours* only if the ledger holds a row for that name
whose bytes it still has (status unchanged, or the same fingerprint when the
status changed). Anything else — a camera original, a user's edit of one of
our proxies, a file of another tool — is foreign, and the job refuses to
touch it.

Rows are written before a file is published under its final name, so a crash
between the two leaves a row that matches no file (harmless) and never a file
of ours that the ledger forgets — except when the row cannot be written at
all, and then the job does not publish.

A second table, ``temporaries``, holds one row per temporary file a job is
writing in the directory (its name, device and inode, the final name it is
for, and the process that made it), written before FFmpeg starts and deleted
once the file is gone: what a run killed outright leaves behind is then
provably draftlens's, and whose (``lenses.media.leftovers``). A job records
its temporary file only in a ledger that exists (``draftlens run`` makes one
in each folder it holds): a job that fails in a fresh folder leaves nothing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator

import attrs

from drafts.files import publish
from drafts.media import MediaError, fingerprint_file

__all__ = ["LEDGER_DIRECTORY", "LEDGER_NAME", "LedgerError", "OutputRecord", "TemporaryRecord", "ledger_path",
           "owner_problem", "read_records", "record_output", "settle", "publish_recorded", "ensure_ledger", "record_temporary",
           "forget_temporary", "read_temporaries"]

LEDGER_DIRECTORY = ".draftlens"
LEDGER_NAME = "outputs.sqlite"
_SCHEMA_VERSION = 1
_BUSY_TIMEOUT_S = 60.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outputs (
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER,
    job TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (name, fingerprint)
)
"""
# Added without a schema version of its own: an older draftlens opens the ledger and never looks at it.
_TEMPORARIES = """
CREATE TABLE IF NOT EXISTS temporaries (
    name TEXT PRIMARY KEY,
    final TEXT NOT NULL,
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    host TEXT NOT NULL,
    machine TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started TEXT NOT NULL
)
"""


class LedgerError(OSError):
    """The ledger of an output directory cannot be read or written; the message names it."""


@attrs.frozen
class OutputRecord:
    """One file draftlens published: ``name`` inside its directory, bytes and status."""

    name: str
    size: int
    fingerprint: str
    device: int
    inode: int
    mtime_ns: int
    job: str
    source: str
    ctime_ns: int | None = None  # set once the file is under its final name (a rename changes it)


@attrs.frozen
class TemporaryRecord:
    """A temporary file a job made in the directory: ``name``, its ``device`` and ``inode``, the ``final``
    name it would be published as, and its maker: ``host`` (name), ``machine`` (boot and pid namespace,
    where pids mean the same), ``pid`` and ``started`` (the process's start time; with the pid, unique)."""

    name: str
    final: str
    device: int
    inode: int
    host: str
    machine: str
    pid: int
    started: str


def ledger_path(directory: str) -> str:
    """``<directory>/.draftlens/outputs.sqlite``."""
    return os.path.join(directory, LEDGER_DIRECTORY, LEDGER_NAME)


def _check_real(path: str, kind: int, what: str) -> bool:
    """True if ``path`` exists as ``kind`` (not through a link); False if absent."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_IFMT(st.st_mode) != kind:
        raise LedgerError(f"{path} should be draftlens's {what} but is something else (a link or another kind "
                          "of file); move it away")
    return True


def _open(directory: str, create: bool) -> sqlite3.Connection | None:
    """A new connection to ``directory``'s ledger; None if there is none and ``create`` is false."""
    folder = os.path.join(directory, LEDGER_DIRECTORY)
    path = ledger_path(directory)
    try:
        if not _check_real(folder, stat.S_IFDIR, "ledger folder"):
            if not create:
                return None
            os.mkdir(folder)
        if not _check_real(path, stat.S_IFREG, "ledger") and not create:
            return None
        connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    except LedgerError:
        raise
    except (OSError, sqlite3.Error) as exc:
        raise LedgerError(f"{path}: cannot open the record of draftlens's outputs ({exc})") from None
    try:
        connection.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _SCHEMA_VERSION):
            raise LedgerError(f"{path}: written by a newer draftlens (schema {version}); upgrade draftlens")
        if version == 0:
            # WAL with synchronous=NORMAL: a commit costs no fsync. A row lost to a power cut only
            # makes that output look foreign: it is then never replaced (the safe side).
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute(_SCHEMA)
            connection.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        connection.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        connection.close()
        raise
    return connection


# One connection per ledger and process (a forked worker opens its own), kept open: opening and
# closing one per job costs a checkpoint and ~10 ms. A lock per connection serves threads.
_connections: dict[str, tuple[tuple, sqlite3.Connection, threading.Lock]] = {}
_connections_lock = threading.Lock()
_MAX_CONNECTIONS = 32


def _identity(directory: str) -> tuple | None:
    """(pid, device, inode) of the ledger file as this process sees it now; None if it is absent."""
    try:
        st = os.stat(ledger_path(directory))
    except OSError:
        return None
    return (os.getpid(), st.st_dev, st.st_ino)


@contextlib.contextmanager
def _connect(directory: str, create: bool) -> Iterator[sqlite3.Connection | None]:
    key = os.path.realpath(directory)
    with _connections_lock:
        held = _connections.get(key)
        if held is not None and held[0] != _identity(directory):
            held = None  # inherited through fork, or the ledger was removed or replaced: open anew
            _connections.pop(key)
        if held is None:
            connection = _open(directory, create)
            if connection is not None:
                while len(_connections) >= _MAX_CONNECTIONS:
                    _connections.pop(next(iter(_connections)))[1].close()
                held = _connections[key] = (_identity(directory), connection, threading.Lock())
    if held is None:
        yield None
        return
    _, connection, lock = held
    try:
        with lock:
            yield connection
    except sqlite3.Error as exc:
        raise LedgerError(f"{ledger_path(directory)}: the record of draftlens's outputs cannot be used ({exc})") from None


def read_records(directory: str, name: str) -> tuple[OutputRecord, ...]:
    """The rows for ``name`` in ``directory``'s ledger (none if there is no ledger)."""
    with _connect(directory, create=False) as connection:
        if connection is None:
            return ()
        try:
            rows = connection.execute(
                "SELECT name, size, fingerprint, device, inode, mtime_ns, job, source, ctime_ns FROM outputs "
                "WHERE name = ?",
                (name,),
            ).fetchall()
        except sqlite3.OperationalError:  # an empty file sqlite made but no table yet
            return ()
    return tuple(OutputRecord(*row) for row in rows)


def record_output(directory: str, record: OutputRecord) -> None:
    """Add a row (before the file is published under ``record.name``). Raises LedgerError."""
    with _connect(directory, create=True) as connection:
        connection.execute(
            "INSERT OR REPLACE INTO outputs (name, size, fingerprint, device, inode, mtime_ns, job, source, ctime_ns) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", attrs.astuple(record),
        )


def ensure_ledger(directory: str) -> None:
    """Create ``directory``'s ledger if it has none (``draftlens run`` does, in each media folder it holds,
    so a temporary file is recorded from the folder's first job on). Raises LedgerError."""
    with _connect(directory, create=True) as connection:
        connection.execute(_TEMPORARIES)


def record_temporary(directory: str, record: TemporaryRecord) -> bool:
    """Add the row of a temporary file just made (before anything writes to it): True, or False if the
    folder has no ledger (none is made for it: a job that then fails leaves the folder as it found it).
    Raises LedgerError if the ledger is there but cannot be written."""
    with _connect(directory, create=False) as connection:
        if connection is None:
            return False
        connection.execute(_TEMPORARIES)  # a no-op once the table is there (a ledger from before it gets it)
        connection.execute("INSERT OR REPLACE INTO temporaries (name, final, device, inode, host, machine, pid, "
                           "started) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", attrs.astuple(record))
    return True


def forget_temporary(directory: str, name: str) -> None:
    """Drop the row of a temporary file that is gone (removed or published). Raises LedgerError."""
    with _connect(directory, create=False) as connection:
        if connection is not None:
            try:
                connection.execute("DELETE FROM temporaries WHERE name = ?", (name,))
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):  # no table: no row to drop
                    raise


def read_temporaries(directory: str) -> tuple[TemporaryRecord, ...]:
    """Every temporary-file row of ``directory``'s ledger, by name (none if there is no ledger)."""
    with _connect(directory, create=False) as connection:
        if connection is None:
            return ()
        try:
            rows = connection.execute("SELECT name, final, device, inode, host, machine, pid, started "
                                      "FROM temporaries ORDER BY name").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return ()  # a ledger of a draftlens from before the table: no rows
    return tuple(TemporaryRecord(*row) for row in rows)


def settle(directory: str, name: str, fingerprint: str, ctime_ns: int) -> None:
    """Once ``name`` holds the file with ``fingerprint``: note its final ctime, drop older rows."""
    with _connect(directory, create=True) as connection:
        connection.execute("DELETE FROM outputs WHERE name = ? AND fingerprint != ?", (name, fingerprint))
        connection.execute("UPDATE outputs SET ctime_ns = ? WHERE name = ? AND fingerprint = ?",
                           (ctime_ns, name, fingerprint))


def owner_problem(final: str, source: str | None = None,
                  elsewhere: str = "change naming_template or output_directory") -> tuple[str | None, os.stat_result | None]:
    """``(problem, status)`` of the file at ``final``: may a job of ours replace it?

    ``source``: the media file the job reads. An earlier output of draftlens
    made from *another* source (a second card with the same clip names, a
    second pipeline writing the same folder) is not this job's to replace.
    ``elsewhere``: how the user writes the file somewhere else instead, for
    the message (a media job's spec by default; the command's own records
    name the pipeline's output folder).

    ``(None, None)``: nothing is there. ``(None, status)``: a file draftlens
    wrote, with the bytes it wrote, is there (its status is returned so the
    caller can check it is still the same file just before replacing it).
    ``(reason, status)``: something else is there; the reason names it.
    """
    try:
        st = os.lstat(final)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return f"{final} cannot be checked ({exc.strerror or exc}); nothing was written", None
    if stat.S_ISLNK(st.st_mode):
        return f"{final} is a link that draftlens did not make; move it away or choose another output name", st
    if not stat.S_ISREG(st.st_mode):
        return f"{final} already exists and is not a file; move it away or choose another output name", st
    directory, name = os.path.split(final)
    try:
        records = read_records(directory, name)
    except LedgerError as exc:
        return f"{final} already exists and its owner cannot be checked: {exc}", st
    matching = None
    for record in records:  # the same status, ctime included (any write or chmod changes it): not read again
        if record.ctime_ns is not None and (record.size, record.device, record.inode, record.mtime_ns,
                                            record.ctime_ns) == (st.st_size, st.st_dev, st.st_ino,
                                                                 st.st_mtime_ns, st.st_ctime_ns):
            matching = record
            break
    if matching is None and any(record.size == st.st_size for record in records):
        try:
            _, fingerprint = fingerprint_file(final)
        except MediaError as exc:
            return f"{final} already exists and cannot be read to check its owner ({exc.reason})", st
        matching = next((record for record in records if record.fingerprint == fingerprint), None)
    if matching is not None:
        if source is not None and matching.source and matching.source != source:
            return (f"{final} was made by draftlens from another source ({matching.source}); it is left as it "
                    "is (two sources would share one output: change naming_template or output_directory)"), st
        return None, st
    if records:
        return (f"{final} was written by draftlens but has been changed since; it is left as it is (move it away "
                "to have it made again)"), st
    return (f"{final} already exists and draftlens did not write it; it is left as it is (move it away, or "
            f"{elsewhere})"), st


def publish_recorded(temp: str, final: str, earlier: os.stat_result | None, job: str,
                     source: str) -> tuple[int, str]:
    """Record ``temp``'s bytes as ``final``'s, then publish it there: ``(size, fingerprint)``.

    ``earlier``: the status of the output of ours that ``owner_problem`` found
    at ``final`` (None: nothing was there). The row is written first, so a
    crash in between leaves a row that matches no file, never a file of ours
    the ledger forgets. Raises OSError if the row cannot be written (nothing
    is published) and FileExistsError if ``final`` changed since it was
    checked (someone else's file appeared, or ours was replaced).
    """
    size, fingerprint = fingerprint_file(temp)
    st = os.stat(temp)
    directory, name = os.path.split(final)
    try:
        record_output(directory, OutputRecord(name, size, fingerprint, st.st_dev, st.st_ino, st.st_mtime_ns,
                                              job, source))
    except LedgerError as exc:
        raise OSError(f"cannot record the output, so it is not published: {exc}") from None
    if earlier is None:
        publish(temp, final, replace=False)
    else:
        try:
            now = os.lstat(final)
        except FileNotFoundError:
            now = None
        if now is not None and (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns) != (
                earlier.st_dev, earlier.st_ino, earlier.st_size, earlier.st_mtime_ns):
            raise FileExistsError(final)
        publish(temp, final, replace=now is not None)
    try:
        settle(directory, name, fingerprint, os.lstat(final).st_ctime_ns)
    except OSError:  # LedgerError included: the next check re-hashes the file; slower, never unsafe
        pass
    return size, fingerprint
