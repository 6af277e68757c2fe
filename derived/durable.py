"""The durable evaluation store: one SQLite file that lets work survive the process.

It is an *evaluation cache* and nothing else. It holds

- memo entries: the hash of a call key -> the call's outcome, stored as
  canonical JSON (outputs as their canonical documents; warnings' details;
  the ``ExecutionResult``) with a BLAKE2b checksum: a damaged or edited row
  is a miss, never a wrong result. Never a pickle: a row read from disk can
  only ever become data, and its outputs are checked and hashed again like a
  lens's fresh outputs when a recompute assembles them;
- source fingerprints: ``(path, device, inode, size, mtime_ns, ctime_ns)`` ->
  ``blake3:<hex>``, so an unchanged file is never read again to plan
  (``drafts.media`` consults it through ``use_fingerprint_cache``);
- the last params and lens version each lens instance ran with, so ``plan``
  can say *why* a job runs.

Derived state itself — outputs indexes, warnings, batch summaries — is never
written here (seed ``003``: derived indexes "are recreated every recompute
and are never persisted"); a recompute rebuilds it from the store, taking
only call outcomes from this cache. The record of media files draftlens
wrote stays where the media-safety rule keeps it, ``lenses.media.ledger``
(``<output_directory>/.draftlens/outputs.sqlite``); this store refers to it
(a memoized media result names the files, and is reused only if those files
still verify), it does not copy it.

Safety: WAL journal, ``busy_timeout``, ``synchronous=NORMAL``. Each write is
one transaction, so a process killed at any point leaves the file as of its
last commit; two processes (two runs, a run and a workspace) may share one
file. A connection is never used across ``fork``: a child process opens its
own. Nothing here reads a clock for what it stores; ``generation`` (one per
open for writing) orders entries for ``prune``.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from drafts.canonical import DRAFT_MARK, canonical_bytes, freeze_with_canon, thaw_canon
from drafts.draft import Draft, frozen_payload, value_from_canon
from drafts.errors import DraftError
from lenses.result import ExecutionResult

from .evaluate import CallOutcome, checked_output

__all__ = ["DurableStore", "StoreError", "SCHEMA_VERSION", "key_digest", "outcome_to_json", "outcome_from_json"]

SCHEMA_VERSION = 1
_BUSY_TIMEOUT_MS = 60_000
_DRAFT_MARK = f'"{DRAFT_MARK}"'.encode()
_FLUSH_EVERY = 2048  # pure outcomes buffered per transaction; media outcomes are committed at once

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    key BLOB PRIMARY KEY,
    lens_id TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome BLOB NOT NULL,
    checksum BLOB NOT NULL,
    generation INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fingerprints (
    path TEXT NOT NULL, device INTEGER NOT NULL, inode INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    generation INTEGER NOT NULL,
    PRIMARY KEY (path, device, inode, size, mtime_ns, ctime_ns)
);
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY, lens_id TEXT NOT NULL, lens_version TEXT NOT NULL, params BLOB NOT NULL
);
"""


class StoreError(OSError):
    """The durable store cannot be opened or used; the message names the file and what to do."""


def _plain_key(value: Any) -> Any:
    if type(value) is bytes:
        return value.decode("utf-8")  # params keys are canonical JSON bytes
    if type(value) is tuple:
        return [v.decode("utf-8") if type(v) is bytes else _plain_key(v) if type(v) is tuple else v
                for v in value]
    return value


def key_digest(key: Any) -> bytes | None:
    """32-byte BLAKE2b of a call key's canonical JSON, or None if the key is not plain data."""
    try:
        data = canonical_bytes(_plain_key(key))
    except (TypeError, orjson.JSONEncodeError, UnicodeDecodeError):
        return None
    return hashlib.blake2b(b"draftlens.call.v1\n" + data, digest_size=32).digest()


def _checksum(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _tuples(value: Any) -> Any:
    if type(value) is list:
        return tuple(_tuples(v) for v in value)
    return value


def _canon_doc(value: Any, root: str) -> Any:
    """The canonical document of a value, nested drafts embedded whole (DraftError if invalid)."""
    frozen, canon = freeze_with_canon(value, root, Draft)
    if _DRAFT_MARK in canonical_bytes(canon):  # a nested draft appears by id only: embed it
        return thaw_canon(frozen, embed_drafts=True)
    return canon


def outcome_to_json(outcome: CallOutcome) -> bytes | None:
    """Canonical JSON of an outcome, or None if one of its outputs is not a valid draft (kept in memory only).

    Outputs are written as their canonical documents (nested drafts embedded
    whole), exactly what ``make_draft`` would name; they become drafts again
    when a recompute assembles them, checked and hashed like fresh outputs.
    """
    outputs = []
    try:
        for held, _, meta in outcome.outputs:  # checked_output tuples: frozen and checked where the lens ran
            payload = frozen_payload(held)
            if meta is not None and not isinstance(meta, Mapping):
                return None
            outputs.append([_canon_doc(payload, "payload"), None if meta is None else _canon_doc(meta, "meta")])
    except DraftError:
        return None
    result = None
    if outcome.result is not None:
        result = outcome.result.to_dict()
        del result["job_id"]
    doc = {"v": SCHEMA_VERSION, "outputs": outputs, "error_code": outcome.error_code, "error": outcome.error,
           "overflow": outcome.overflow, "result": result, "details": [list(pair) for pair in outcome.details]}
    try:
        return canonical_bytes(doc)
    except (TypeError, orjson.JSONEncodeError):
        return None


def outcome_from_json(data: bytes) -> CallOutcome:
    """The outcome ``outcome_to_json`` wrote (DraftError if an embedded draft does not match its id)."""
    doc = orjson.loads(data)
    if doc.get("v") != SCHEMA_VERSION:
        raise ValueError(f"outcome written by schema {doc.get('v')!r}, this is {SCHEMA_VERSION}")
    outputs = [checked_output(value_from_canon(payload, "payload"),
                              None if meta is None else value_from_canon(meta, "meta"))
               for payload, meta in doc["outputs"]]
    result = None
    if doc["result"] is not None:
        fields = dict(doc["result"])
        result = ExecutionResult(job_id=None, **fields)
    return CallOutcome(outputs=tuple(outputs), error_code=doc["error_code"], error=doc["error"],
                       overflow=doc["overflow"], result=result,
                       details=tuple((k, _tuples(v)) for k, v in doc["details"]))


class DurableStore:
    """One SQLite evaluation cache at ``path`` (made, with its folder, if missing).

    Raises StoreError naming the file if it cannot be opened, is not a
    draftlens store, or was written by a newer schema.
    """

    def __init__(self, path: str | os.PathLike, *, evaluating: bool = True):
        self.path = os.path.abspath(os.fspath(path))
        self._lock = threading.RLock()
        self._pid = -1
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple] = []
        self._touched: set[bytes] = set()
        self._fingerprints: dict[tuple, str] = {}
        self._asked: dict[Any, bytes] = {}  # key -> digest of keys just looked up (put_call needs it again)
        self._closed = False
        self.hits = 0
        self.misses = 0
        self.stored = 0
        self.generation = self._begin(evaluating)

    # -- connection ------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"{self.path}: this evaluation store was closed")
        if self._conn is None or self._pid != os.getpid():
            # After fork the parent's connection must not be touched (SQLite forbids it); open our own.
            self._conn = self._open()
            self._pid = os.getpid()
            self._pending, self._touched, self._fingerprints, self._asked = [], set(), {}, {}
        return self._conn

    def _open(self) -> sqlite3.Connection:
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if row is None:
                conn.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                raise StoreError(f"{self.path}: evaluation store schema {row[0]}, this draftlens reads "
                                 f"{SCHEMA_VERSION}; delete the file (it is only a cache) or upgrade draftlens")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot be used as an evaluation store ({exc}); it is only a cache: "
                             "delete it, or pass --no-cache") from None
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot be opened ({exc.strerror or exc}); pass --no-cache to run "
                             "without it") from None
        return conn

    def _write(self, sql_rows: list[tuple[str, Iterable]]) -> None:
        """One transaction (BEGIN IMMEDIATE: writers queue on the busy timeout, never fail half-way)."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows in sql_rows:
                    conn.executemany(sql, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot write to the evaluation store ({exc})") from None

    def _begin(self, evaluating: bool) -> int:
        """This open's generation: one more than the last evaluating open (``info``/``prune`` add none)."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute("SELECT value FROM meta WHERE name = 'generation'").fetchone()
                generation = (int(row[0]) if row else 0) + (1 if evaluating else 0)
                conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('generation', ?)", (str(generation),))
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot write to the evaluation store ({exc})") from None
            return generation

    # -- memo entries ------------------------------------------------------------------------
    def get_calls(self, keys: list[Any]) -> dict[Any, CallOutcome]:
        """The stored outcomes of those keys that have one (a row that no longer reads is skipped)."""
        digests = {}
        for key in keys:
            d = key_digest(key)
            if d is not None:
                digests[d] = key
                self._asked[key] = d
        if not digests:
            return {}
        found: dict[Any, CallOutcome] = {}
        with self._lock:
            conn = self._connection()  # entries still buffered here are in the memo's memory, not asked for
            items = list(digests)
            for start in range(0, len(items), 500):
                part = items[start:start + 500]
                marks = ",".join("?" * len(part))
                try:
                    rows = conn.execute(f"SELECT key, outcome, checksum FROM calls WHERE key IN ({marks})",
                                        part).fetchall()
                except sqlite3.Error as exc:
                    raise StoreError(f"{self.path}: cannot read the evaluation store ({exc})") from None
                for digest_, data, checksum in rows:
                    if type(data) is not bytes or _checksum(data) != checksum:
                        continue  # damaged or edited on disk: a miss, the call runs again and replaces it
                    try:
                        found[digests[digest_]] = outcome_from_json(data)
                    except (DraftError, ValueError, KeyError, TypeError):
                        continue  # an unreadable entry is a miss: the call runs again and replaces it
                    self._touched.add(digest_)
            for key in found:
                del self._asked[key]
            self.hits += len(found)
            self.misses += len(digests) - len(found)
        return found

    def put_call(self, key: Any, outcome: CallOutcome, lens_id: str = "") -> None:
        """Keep an outcome; a media job's (it has a result) is committed before this returns."""
        digest_ = self._asked.pop(key, None) or key_digest(key)
        if digest_ is None:
            return
        data = outcome_to_json(outcome)
        if data is None:
            return
        status = outcome.result.status if outcome.result is not None else ("ERROR" if outcome.error_code else "OK")
        with self._lock:
            self._connection()
            self._pending.append((digest_, lens_id, status, data, _checksum(data), self.generation))
            self.stored += 1
            if outcome.result is not None or len(self._pending) >= _FLUSH_EVERY:
                self.flush()

    def flush(self) -> None:
        """Commit buffered entries and mark the entries read since the last flush as used now."""
        with self._lock:
            if not self._pending and not self._touched and not self._fingerprints:
                self._asked = {}
                return
            self._asked = {}
            pending, self._pending = self._pending, []
            touched, self._touched = self._touched, set()
            prints, self._fingerprints = self._fingerprints, {}
            self._write([
                ("INSERT OR REPLACE INTO calls (key, lens_id, status, outcome, checksum, generation) "
                 "VALUES (?, ?, ?, ?, ?, ?)", pending),
                ("UPDATE calls SET generation = ? WHERE key = ?", [(self.generation, d) for d in touched]),
                ("DELETE FROM fingerprints WHERE path = ?", [(key[0],) for key in prints]),
                ("INSERT OR REPLACE INTO fingerprints (path, device, inode, size, mtime_ns, ctime_ns, fingerprint, "
                 "generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 [(*key, fp, self.generation) for key, fp in prints.items()]),
            ])

    # -- source fingerprints ---------------------------------------------------------------------
    def get_fingerprint(self, status_key: tuple) -> str | None:
        with self._lock:
            pending = self._fingerprints.get(status_key)
            if pending is not None:
                return pending
            try:
                row = self._connection().execute(
                    "SELECT fingerprint FROM fingerprints WHERE path = ? AND device = ? AND inode = ? AND size = ? "
                    "AND mtime_ns = ? AND ctime_ns = ?", status_key).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot read the evaluation store ({exc})") from None
        return row[0] if row else None

    def put_fingerprint(self, status_key: tuple, fingerprint: str) -> None:
        """Remember a file's fingerprint (``drafts.media`` only offers files whose status has settled).

        Buffered like pure outcomes: committed with the next ``flush`` (a crash loses only the
        knowledge that spares a read, never a wrong fingerprint).
        """
        with self._lock:
            self._connection()
            self._fingerprints[status_key] = fingerprint
            if len(self._fingerprints) >= _FLUSH_EVERY:
                self.flush()

    # -- why a job runs ------------------------------------------------------------------------------
    def record_instances(self, rows: list[tuple[str, str, str, bytes]]) -> None:
        """``(instance id, lens id, lens version, params key)`` of each instance that ran."""
        with self._lock:
            self._write([("INSERT OR REPLACE INTO instances (instance_id, lens_id, lens_version, params) "
                          "VALUES (?, ?, ?, ?)", rows)])

    def instance_history(self) -> dict[str, tuple[str, str, bytes]]:
        with self._lock:
            rows = self._connection().execute(
                "SELECT instance_id, lens_id, lens_version, params FROM instances").fetchall()
        return {r[0]: (r[1], r[2], bytes(r[3])) for r in rows}

    # -- cache info | prune ------------------------------------------------------------------------
    def info(self) -> dict:
        """Counts and sizes, for ``draftlens cache info`` (commits what is buffered first)."""
        with self._lock:
            self.flush()
            conn = self._connection()
            by_lens = conn.execute(
                "SELECT lens_id, status, COUNT(*), SUM(LENGTH(outcome)) FROM calls GROUP BY lens_id, status "
                "ORDER BY lens_id, status").fetchall()
            fingerprints = conn.execute("SELECT COUNT(*) FROM fingerprints").fetchone()[0]
            instances = conn.execute("SELECT COUNT(*) FROM instances").fetchone()[0]
        size = sum(os.path.getsize(self.path + suffix) for suffix in ("", "-wal")
                   if os.path.exists(self.path + suffix))
        return {"path": self.path, "schema": SCHEMA_VERSION, "generation": self.generation,
                "entries": sum(r[2] for r in by_lens), "entry_bytes": sum(r[3] or 0 for r in by_lens),
                "by_lens": [{"lens": r[0], "status": r[1], "entries": r[2], "bytes": r[3] or 0} for r in by_lens],
                "fingerprints": fingerprints, "instances": instances, "file_bytes": size}

    def prune(self, keep_generations: int = 1) -> dict:
        """Drop entries not used by the last ``keep_generations`` evaluating opens (runs, plans,
        workspaces), failed media results, and fingerprints of files that are gone or changed; then
        compact the file.

        Returns ``{"entries": removed, "fingerprints": removed, "compacted": bool}`` (compaction waits
        when another process is reading the file).
        """
        if type(keep_generations) is not int or keep_generations < 1:
            raise ValueError(f"keep must be an int >= 1, got {keep_generations!r}")
        oldest = self.generation - keep_generations + 1
        with self._lock:
            self.flush()
            conn = self._connection()
            stale = []
            for row in conn.execute("SELECT path, device, inode, size, mtime_ns, ctime_ns FROM fingerprints"):
                try:
                    st = os.stat(row[0])
                except OSError:
                    stale.append(row)
                    continue
                if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != tuple(row[1:]):
                    stale.append(row)
            removed = conn.execute("SELECT COUNT(*) FROM calls WHERE generation < ? OR status = 'FAILED'",
                                   (oldest,)).fetchone()[0]
            self._write([("DELETE FROM calls WHERE generation < ? OR status = 'FAILED'", [(oldest,)]),
                         ("DELETE FROM fingerprints WHERE path = ? AND device = ? AND inode = ? AND size = ? "
                          "AND mtime_ns = ? AND ctime_ns = ?", stale)])
            try:
                conn.execute("VACUUM")
                compacted = True
            except sqlite3.OperationalError:  # another process is reading: the rows are gone, the file stays
                compacted = False
        return {"entries": removed, "fingerprints": len(stale), "compacted": compacted}

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                if self._conn is not None and self._pid == os.getpid():
                    self.flush()
                    self._conn.close()
            finally:
                self._conn = None
                self._closed = True

    def __repr__(self) -> str:
        return f"DurableStore({self.path!r})"
