"""The journal: append-only JSONL, one file per user work session.

``<root>/users/<user_id>/sessions/<session_id>.jsonl``. ``Recorder`` is the
only code that writes these files. A record is committed when its line,
newline included, is on disk: each record is one JSON line (sorted keys)
written with a single ``write`` on an ``O_APPEND`` descriptor and ``fsync``'d
before ``append`` returns. A crash mid-write can therefore only leave a *torn
last line* (no newline): readers report and ignore it, the next ``append``
removes it, and any other damage is refused with the file and line named.

A journal is framed: line 1 is its session's ``start`` event, an ``end``
event (if any) is the last line, and every record names the same user and
session. Store events replay into a ``Store``; boundary events are skipped;
timestamps and record ids never reach the store. Replay streams the records
and keeps a sparse history (``drafts.history``): linear in the journal's length.

Every file under ``<root>/users`` is opened here (``open_user_file``), one
directory at a time and never through a symbolic link (issue 17): a link
planted at a journal, a lock file or a directory is refused with
UnsafeJournalPath instead of being written through.

>>> import tempfile
>>> from drafts import make_draft
>>> from drafts.sessions import SessionManager
>>> tmp = tempfile.TemporaryDirectory()
>>> root = tmp.name
>>> session = SessionManager(root).start("ana", "ana@desk")
>>> d = make_draft({"text": "hi"})
>>> record = store_event("add_draft", {"draft": d}, user_id="ana",
...                      session_id=session.session_id, performer_id="ana@desk")
>>> Recorder(root).append("ana", session.session_id, record)
>>> list(replay(journal_path(root, "ana", session.session_id)).drafts) == [d.id]
True
>>> tmp.cleanup()
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import functools
import gc
import os
import re
import stat
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import orjson

from .canonical import thaw_canon
from .draft import ID_SCHEME, MAX_NESTING, Draft, _from_document, _unescape
from .errors import (
    DraftError,
    InvalidSessionArgument,
    JournalCorrupt,
    JournalError,
    JournalSchemeError,
    RecordTooLarge,
    SessionAlreadyClosed,
    StoreError,
    UnsafeJournalPath,
)
from .history import History, apply_change, change_label
from .store import OutputOf, Store, freeze_params

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: appends are then safe from one process only
    fcntl = None

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "STORE_OPS",
    "Boundaries",
    "JournalReadout",
    "Recorder",
    "TornTailWarning",
    "apply_event",
    "decode_event",
    "check_id_scheme",
    "check_name",
    "check_performer",
    "ensure_directory",
    "journal_path",
    "list_user_dir",
    "new_record_id",
    "open_user_file",
    "read_boundaries",
    "read_journal",
    "read_session",
    "rename_user_file",
    "replay",
    "replay_history",
    "replay_session",
    "session_boundaries",
    "session_end_despite_damage",
    "store_event",
    "users_dir",
    "utc_timestamp",
]

DEFAULT_MAX_RECORD_BYTES = 1 << 20

# Fields of each store event, besides the envelope. ``undo``/``redo`` are the
# moves of a journaled Workspace between store versions (see replay_history).
_STORE_FIELDS: dict[str, tuple[str, ...]] = {
    "add_draft": ("draft",),
    "add_lens_instance": ("instance_id", "lens_id", "input", "params"),
    "set_params": ("instance_id", "params"),
    "remove_lens_instance": ("instance_id",),
    "remove_draft": ("draft_id",),
    "undo": ("to_version",),
    "redo": ("to_version",),
}
# Optional fields: ``lens_module`` ({"module": name, "path": folder or null}) says where a lens of the
# user's own came from, so a replay can import it again (derived.sessionlenses writes and reads it).
_OPTIONAL_STORE_FIELDS: dict[str, tuple[str, ...]] = {"add_lens_instance": ("lens_module",)}
STORE_OPS = tuple(_STORE_FIELDS)
_MOVES = ("undo", "redo")
_ENVELOPE = ("kind", "user_id", "session_id", "performer_id", "timestamp", "record_id")
_SESSION_KEYS = frozenset(_ENVELOPE + ("source", "event"))
_STORE_KEYS = {op: frozenset(_ENVELOPE + ("op",) + fields) for op, fields in _STORE_FIELDS.items()}
SESSION_SOURCE = "session_manager"

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

# Ids become file names (255 bytes on most file systems, ".jsonl" included);
# with performer ids bounded too, a boundary record is always a short line,
# which lets readers find the last one without reading a whole journal.
MAX_NAME_BYTES = 200
MAX_PERFORMER_CHARS = 256
_BOUNDARY_MAX_BYTES = 16 * 1024
# C0 and C1 controls (newline, ESC...), line/paragraph separators and bidi
# overrides: refused in ids and performer ids, so no listing can be forged.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CHUNK = 64 * 1024


class TornTailWarning(UserWarning):
    """A journal's last line was cut short by a crash; it was ignored (or, on append, removed)."""


# -- id scheme -------------------------------------------------------------------------------

ID_SCHEME_FIELD = "id_scheme"
"""The start event's field naming how the journal's draft ids were made
(``drafts.draft.ID_SCHEME``). The recorder writes it into every start event;
``read_journal`` checks it and keeps it; ``read_boundaries`` checks it and
hands the start event on without it (as SessionEvent has it). A journal
without it was written before it existed, with scheme v1."""


def check_id_scheme(start: Mapping[str, Any], path: str | os.PathLike) -> dict:
    """Refuse a journal of another id scheme (JournalSchemeError, never JournalCorrupt).

    Returns the start event without the field, as ``SessionEvent`` reads it.
    """
    start = dict(start)
    scheme = start.pop(ID_SCHEME_FIELD, ID_SCHEME)
    if scheme != ID_SCHEME:
        raise JournalSchemeError(str(path), scheme, ID_SCHEME)
    return start


# -- names, time, ids ---------------------------------------------------------------------


def _control_problem(value: str) -> str | None:
    found = _CONTROL.search(value)
    if found is None:
        return None
    return (f"holds the control character {found.group()!r} at index {found.start()} "
            "(control characters could forge lines in listings)")


def _name_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be a str, got {type(value).__name__}"
    return _str_name_problem(value)


@functools.lru_cache(maxsize=4096)
def _str_name_problem(value: str) -> str | None:
    # Cached: replay checks the same user and session id on every record.
    if value in ("", ".", ".."):
        return "must not be empty, '.' or '..'"
    if any(c in value for c in "/\\\x00"):
        return "must not contain '/', '\\' or NUL"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode"
    if size > MAX_NAME_BYTES:
        return f"is {size} bytes in UTF-8, over {MAX_NAME_BYTES}"
    return _control_problem(value)


def check_name(value: Any, what: str) -> str:
    """A user or session id that is safe as one path component (else InvalidSessionArgument).

    Refused: non-str, empty, ``.``/``..``, ``/``, ``\\``, NUL, over
    ``MAX_NAME_BYTES`` in UTF-8, and control characters (newline, ESC, C1,
    U+2028/2029, bidi overrides), which could forge lines where ids are shown.

    >>> check_name("../etc", "user_id")
    Traceback (most recent call last):
    ...
    drafts.errors.InvalidSessionArgument: user_id '../etc' must not contain '/', '\\' or NUL (it names a directory or file under the journal root)
    """
    problem = _name_problem(value)
    if problem is not None:
        raise InvalidSessionArgument(
            f"{what} {value!r} {problem} (it names a directory or file under the journal root)"
        )
    return value


def _performer_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"is required (who made the change: a person, or 'system'), got {value!r}"
    return _str_performer_problem(value)


@functools.lru_cache(maxsize=4096)
def _str_performer_problem(value: str) -> str | None:
    if len(value) > MAX_PERFORMER_CHARS:
        return f"is {len(value)} characters, over {MAX_PERFORMER_CHARS}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode"
    return _control_problem(value)


def check_performer(value: Any) -> str:
    """A performer id: a non-empty, non-blank str (``"system"`` for system-made changes).

    At most ``MAX_PERFORMER_CHARS`` characters and no control characters
    (InvalidSessionArgument otherwise)."""
    problem = _performer_problem(value)
    if problem is not None:
        raise InvalidSessionArgument(f"performer_id {problem}")
    return value


def journal_path(root: str | os.PathLike, user_id: str, session_id: str) -> Path:
    """``<root>/users/<user_id>/sessions/<session_id>.jsonl`` (ids checked: no path escapes)."""
    user_id = check_name(user_id, "user_id")
    session_id = check_name(session_id, "session_id")
    return Path(root) / "users" / user_id / "sessions" / f"{session_id}.jsonl"


def utc_timestamp() -> str:
    """Now, as UTC ISO 8601 with milliseconds and ``Z``, e.g. ``2026-11-23T06:25:12.345Z``."""
    now = _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def new_record_id() -> str:
    """A fresh UUIDv4 string: every record has its own."""
    return str(uuid.uuid4())


# -- record shape ---------------------------------------------------------------------------


def _record_problem(record: Any) -> str | None:
    """What is wrong with a record's shape, or None. Shared by writer and readers,
    so whatever the recorder writes, the readers accept."""
    if not isinstance(record, dict):
        return f"a record must be a JSON object, got {type(record).__name__}"
    kind = record.get("kind")
    if not isinstance(kind, str):
        return f"unknown record kind {kind!r} (expected 'session' or 'store')"
    if kind == "session":
        expected = _SESSION_KEYS
        what = "session record"
    elif kind == "store":
        op = record.get("op")
        if not isinstance(op, str) or op not in _STORE_KEYS:
            return f"unknown store op {op!r} (known: {list(STORE_OPS)})"
        expected = _STORE_KEYS[op]
        what = f"store record {op!r}"
    else:
        return f"unknown record kind {kind!r} (expected 'session' or 'store')"
    if kind == "session" and ID_SCHEME_FIELD in record:  # written into start events
        expected = expected | {ID_SCHEME_FIELD}
    optional = frozenset(_OPTIONAL_STORE_FIELDS.get(record.get("op"), ())) if kind == "store" else frozenset()
    if record.keys() - optional != expected:
        missing = sorted(expected - record.keys())
        extra = sorted(record.keys() - expected - optional)
        return f"{what} has the wrong fields: missing {missing}, unexpected {extra} (expected {sorted(expected)})"
    for key in ("user_id", "session_id"):
        problem = _name_problem(record[key])
        if problem is not None:
            return f"{key} {record[key]!r} {problem}"
    problem = _performer_problem(record["performer_id"])
    if problem is not None:
        return f"performer_id {problem}"
    if not isinstance(record["timestamp"], str) or not _TIMESTAMP.fullmatch(record["timestamp"]):
        return f"timestamp {record['timestamp']!r} is not UTC ISO 8601 with milliseconds and Z"
    if not isinstance(record["record_id"], str) or not _UUID4.fullmatch(record["record_id"]):
        return f"record_id {record['record_id']!r} is not a UUIDv4 string"
    if kind == "session":
        if not isinstance(record["source"], str) or record["source"] != SESSION_SOURCE:
            return f"source must be {SESSION_SOURCE!r}, got {record['source']!r}"
        if not isinstance(record["event"], str) or record["event"] not in ("start", "end"):
            return f"event must be 'start' or 'end', got {record['event']!r}"
        return None
    return _store_fields_problem(record)


def _store_fields_problem(record: dict) -> str | None:
    for key in ("instance_id", "lens_id", "draft_id"):
        if key in record and (not isinstance(record[key], str) or not record[key]):
            return f"{key} must be a non-empty str, got {record[key]!r}"
    if "draft" in record and not isinstance(record["draft"], dict):
        return f"draft must be a draft document (Draft.to_json), got {type(record['draft']).__name__}"
    if "params" in record and not isinstance(record["params"], dict):
        return f"params must be an object, got {type(record['params']).__name__}"
    if "input" in record:
        source = record["input"]
        if source is not None and not (
            isinstance(source, dict)
            and len(source) == 1
            and next(iter(source)) in ("draft", "outputOf")
            and isinstance(next(iter(source.values())), str)
        ):
            return f'input must be null, {{"draft": id}} or {{"outputOf": instance_id}}, got {source!r}'
    if "lens_module" in record:
        origin = record["lens_module"]
        if not (isinstance(origin, dict) and origin.keys() == {"module", "path"}
                and isinstance(origin["module"], str) and origin["module"]
                and (origin["path"] is None or isinstance(origin["path"], str))):
            return f'lens_module must be {{"module": name, "path": folder or null}}, got {origin!r}'
    if "to_version" in record:
        version = record["to_version"]
        if type(version) is not int or version < 0:
            return f"to_version must be an int >= 0, got {version!r}"
    return None


def _is_boundary(record: dict, event: str) -> bool:
    return record.get("kind") == "session" and record.get("event") == event


# -- store events -----------------------------------------------------------------------------


def store_event(
    op: str, fields: Mapping[str, Any], *, user_id: str, session_id: str, performer_id: str
) -> dict:
    """The journal record of one Store operation; the timestamp and record id are made here.

    ``fields`` are the operation's arguments as Python values: ``draft`` (a
    Draft) for ``add_draft``; ``instance_id``, ``lens_id``, ``input`` (draft
    id, Draft, ``OutputOf`` or None) and ``params`` (mapping, attrs instance
    or None) for ``add_lens_instance``; ``instance_id`` and ``params`` for
    ``set_params``; ``instance_id`` for ``remove_lens_instance``;
    ``draft_id`` for ``remove_draft``; ``to_version`` for ``undo``/``redo``.
    """
    if op not in _STORE_FIELDS:
        raise JournalError(f"unknown store event {op!r}; known: {list(STORE_OPS)}")
    if not isinstance(fields, Mapping):
        raise JournalError(f"store_event({op!r}): fields must be a mapping, got {type(fields).__name__}")
    fields = dict(fields)
    if op == "add_lens_instance":
        fields.setdefault("params", None)
    expected = set(_STORE_FIELDS[op])
    optional = set(_OPTIONAL_STORE_FIELDS.get(op, ()))
    for key in optional & fields.keys():
        if fields[key] is None:
            del fields[key]
    if fields.keys() - optional != expected:
        raise JournalError(
            f"store_event({op!r}): missing {sorted(expected - fields.keys())}, "
            f"unexpected {sorted(fields.keys() - expected - optional)} (expected {sorted(expected)})"
        )
    record = {
        "kind": "store",
        "op": op,
        "user_id": user_id,
        "session_id": session_id,
        "performer_id": performer_id,
        "timestamp": utc_timestamp(),
        "record_id": new_record_id(),
    }
    for key, value in fields.items():
        record[key] = _encode_field(op, key, value)
    problem = _record_problem(record)
    if problem is not None:
        raise JournalError(f"store_event({op!r}): {problem}")
    return record


def _encode_field(op: str, key: str, value: Any) -> Any:
    if key == "draft":
        if type(value) is not Draft:
            raise JournalError(f"store_event({op!r}): draft must be a Draft, got {type(value).__name__}")
        return value._canon_document()
    if key == "input":
        if value is None:
            return None
        if type(value) is Draft:
            return {"draft": value.id}
        if isinstance(value, OutputOf):
            return {"outputOf": value.instance_id}
        if isinstance(value, str):
            return {"draft": value}
        raise JournalError(
            f"store_event({op!r}): input must be a draft id, a Draft, OutputOf(...) or None, got {type(value).__name__}"
        )
    if key == "params":
        try:
            frozen = freeze_params(value, f"store_event({op!r})")
        except StoreError as exc:
            raise JournalError(str(exc)) from None
        # Canonical form: '$' keys escaped and nested drafts embedded whole,
        # exactly as in Draft.to_json, so replay can check every nested id.
        return thaw_canon(frozen, embed_drafts=True)
    return value


def _decode_params(params: dict) -> Any:
    return _unescape(params, "params")


def _decode_input(source: dict | None) -> Any:
    if source is None:
        return None
    if "outputOf" in source:
        return OutputOf(source["outputOf"])
    return source["draft"]


def apply_event(store: Store, record: Mapping[str, Any]) -> Store:
    """Apply one journaled store event to ``store``; the record's timestamp and ids play no part.

    A malformed record raises JournalError; one that does not fit the store
    raises the StoreError / DraftError the operation raises (e.g. a draft whose
    id does not match its content). ``undo``/``redo`` need the version history:
    use ``replay_history``.
    """
    op, fields = decode_event(record)
    if op in _MOVES:
        raise JournalError(f"{op!r} moves between store versions; replay it with replay_history")
    return _apply(store, op, fields)


def decode_event(record: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(op, fields)`` of a journaled store event, values decoded (drafts, OutputOf, params)
    exactly as a Workspace passed them when it recorded the change.

    JournalError for a malformed record; DraftError for a draft or params
    that cannot be decoded (nested too deep, or an id that does not match).
    """
    record = dict(record) if isinstance(record, Mapping) else record
    problem = _record_problem(record)
    if problem is not None:
        raise JournalError(problem)
    if record["kind"] != "store":
        raise JournalError(f"a {record['kind']!r} record is not a store event")
    return _decode_fields(record)


def _decode_fields(record: dict) -> tuple[str, dict[str, Any]]:
    """decode_event of a record already checked by _record_problem."""
    op = record["op"]
    fields = {name: record[name] for name in _STORE_FIELDS[op]}
    try:
        if op == "add_draft":
            fields["draft"] = _from_document(record["draft"], "draft")
        if "params" in fields:
            fields["params"] = _decode_params(fields["params"])
    except RecursionError:
        # Only a forged record nests this deep (no draft or params can: MAX_NESTING);
        # measuring every record's depth first would cost a walk per record.
        what = "draft" if op == "add_draft" else "params"
        raise DraftError(f"nested more than {MAX_NESTING} levels deep (no draft or params can be), refused",
                         what) from None
    if "input" in fields:
        fields["input"] = _decode_input(fields["input"])
    return op, fields


def _apply(store: Store, op: str, fields: dict[str, Any]) -> Store:
    return apply_change(store, op, fields)


# -- files under <root>/users: never followed as links ----------------------------------------
#
# Every file of the journal root is opened here, one directory at a time with
# O_NOFOLLOW relative to its parent's descriptor, so a symbolic link planted
# anywhere under <root>/users (a user or sessions directory, a journal, a lock
# file) is refused instead of followed, and no rename of a parent between a
# check and an open can redirect a write. ``root`` itself may be a link: the
# caller chose it.

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_LINK_ERRNOS = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_directory(directory: str | os.PathLike) -> Path:
    """``mkdir -p`` that survives a crash: each new directory's parent is fsync'd."""
    directory = Path(directory)
    missing = []
    current = directory
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    if missing:
        directory.mkdir(parents=True, exist_ok=True)
        for created in reversed(missing):
            _fsync_dir(created.parent)
    return directory


def _open_dir_at(parent: int, name: str, shown: Path, create: bool) -> int:
    """A descriptor of directory ``name`` in ``parent``, never through a link; made (and its
    name fsync'd) if ``create``. FileNotFoundError if missing and not ``create``."""
    for attempt in (1, 2):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create or attempt == 2:
                raise
        except OSError as exc:
            if exc.errno in _LINK_ERRNOS:
                raise UnsafeJournalPath(str(shown), "is a symbolic link or not a directory") from None
            raise
        try:
            os.mkdir(name, 0o755, dir_fd=parent)
            os.fsync(parent)  # the new directory's name is durable
        except FileExistsError:
            pass  # made meanwhile by another writer (or a link planted meanwhile: refused above)
    raise AssertionError("unreachable")


def users_dir(root: str | os.PathLike, parts: tuple[str, ...], *, create: bool = False) -> int:
    """A descriptor of ``<root>/users/<parts...>`` (the caller closes it).

    Every component is a real directory, opened without following links
    (UnsafeJournalPath otherwise); missing ones are made when ``create``,
    else FileNotFoundError.
    """
    root = Path(root)
    if create:
        ensure_directory(root)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    shown = root
    try:
        for name in ("users", *parts):
            shown = shown / name
            child = _open_dir_at(fd, name, shown, create)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_user_file(
    root: str | os.PathLike, parts: tuple[str, ...], name: str, flags: int, *, create: bool = False
) -> tuple[int, bool]:
    """Open ``<root>/users/<parts...>/<name>``, never through a link: ``(fd, created)``.

    ``flags`` are ``os.open`` access flags (``O_RDONLY``, ``O_RDWR``,
    ``O_APPEND``...). With ``create`` the directories and the file are made
    as needed (mode 0o644, created exclusively, the new name fsync'd before
    this returns); without it a missing one raises FileNotFoundError. What is
    not a regular file (a link, a FIFO, a directory) raises UnsafeJournalPath.
    """
    directory = users_dir(root, parts, create=create)
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a planted FIFO cannot hang an open
    try:
        created = False

        def open_at() -> int:
            nonlocal created
            if create:
                try:
                    fd = os.open(name, flags | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=directory)
                    created = True
                    return fd
                except FileExistsError:
                    pass
            return os.open(name, flags, dir_fd=directory)

        fd = _regular_file(Path(root, "users", *parts, name), open_at)
        if created:
            os.fsync(directory)  # the file's name is durable before anything in it is acknowledged
        return fd, created
    finally:
        os.close(directory)


def list_user_dir(root: str | os.PathLike, parts: tuple[str, ...]) -> list[tuple[str, bool]]:
    """``(name, is_regular_file)`` for each entry of ``<root>/users/<parts...>``, sorted by name
    (links are entries that are not regular files; nothing is followed). Empty if it is missing."""
    try:
        directory = users_dir(root, parts)
    except FileNotFoundError:
        return []
    try:
        with os.scandir(directory) as entries:
            found = [(e.name, e.is_file(follow_symlinks=False)) for e in entries]
    finally:
        os.close(directory)
    return sorted(found)


def rename_user_file(root: str | os.PathLike, parts: tuple[str, ...], name: str, new_name: str) -> None:
    """Rename one entry of ``<root>/users/<parts...>`` to a name not in use (FileExistsError if it is);
    the rename is fsync'd. Nothing is followed; the entry itself is moved."""
    directory = users_dir(root, parts)
    try:
        try:
            os.stat(new_name, dir_fd=directory, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            raise FileExistsError(f"{Path(root, 'users', *parts, new_name)} already exists")
        os.rename(name, new_name, src_dir_fd=directory, dst_dir_fd=directory)
        os.fsync(directory)
    finally:
        os.close(directory)


def _open_journal(root: str | os.PathLike, user_id: str, session_id: str, flags: int, create: bool) -> tuple[int, bool]:
    user_id = check_name(user_id, "user_id")
    session_id = check_name(session_id, "session_id")
    return open_user_file(root, (user_id, "sessions"), f"{session_id}.jsonl", flags, create=create)


def _open_path(path: Path) -> int:
    """A journal named by a path (the caller's choice of directories); the file itself is never a link."""
    return _regular_file(path, lambda: os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK))


def _regular_file(shown: Path, open_fd: Callable[[], int]) -> int:
    """The descriptor ``open_fd()`` opens (with ``O_NOFOLLOW | O_NONBLOCK``), if it is a regular file.

    UnsafeJournalPath naming ``shown`` if the open met a link (ELOOP, ENOTDIR,
    EMLINK) or a FIFO with no writer (ENXIO), or what it opened is not a
    regular file (a FIFO, a directory, a device: the descriptor is closed).
    Other OSErrors (FileNotFoundError...) go on unchanged.
    """
    try:
        fd = open_fd()
    except OSError as exc:
        if exc.errno in _LINK_ERRNOS or exc.errno == errno.ENXIO:
            raise UnsafeJournalPath(str(shown), "is a symbolic link or not a regular file") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeJournalPath(str(shown), "is not a regular file")
    return fd


# -- writing ---------------------------------------------------------------------------------


def _lock(fd: int, shared: bool = False) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)


def _committed_end(fd: int, size: int) -> int:
    """Offset just after the last newline (0 if none): the end of the committed records."""
    position = size
    while position > 0:
        start = max(0, position - _CHUNK)
        chunk = os.pread(fd, position - start, start)
        index = chunk.rfind(b"\n")
        if index != -1:
            return start + index + 1
        position = start
    return 0


def _last_short_line(fd: int, end: int) -> bytes | None:
    """The last committed line (without newline) if it is short enough to be a boundary record."""
    start = max(0, end - 1 - _BOUNDARY_MAX_BYTES)
    chunk = os.pread(fd, end - 1 - start, start)
    index = chunk.rfind(b"\n")
    if index == -1:
        return chunk if start == 0 else None
    return chunk[index + 1 :]


def _line_number_at(fd: int, offset: int) -> int:
    """1-based number of the line that starts at ``offset`` (only on error paths: reads the file)."""
    count = 0
    position = 0
    while position < offset:
        chunk = os.pread(fd, min(_CHUNK, offset - position), position)
        count += chunk.count(b"\n")
        position += len(chunk)
    return count + 1


class Recorder:
    """The only writer of journal files.

    ``append`` returns only after the record is on disk (file ``fsync``'d, and
    its directory too when the file was created). Journal files and the
    directories above them are opened without following links
    (UnsafeJournalPath if one is a link). A record larger than
    ``max_record_bytes`` or of the wrong shape is refused and nothing is
    written. Appends to one journal are serialized with ``flock``, across
    threads and processes; a torn last line left by a crashed writer is
    removed (with a TornTailWarning) before the next record is written.
    """

    def __init__(self, root: str | os.PathLike = "logs", max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES):
        if type(max_record_bytes) is not int or max_record_bytes < 1024:
            raise JournalError(f"max_record_bytes must be an int >= 1024, got {max_record_bytes!r}")
        self.root = Path(root)
        self.max_record_bytes = max_record_bytes

    def __repr__(self) -> str:
        return f"Recorder(root={str(self.root)!r}, max_record_bytes={self.max_record_bytes})"

    def path(self, user_id: str, session_id: str) -> Path:
        return journal_path(self.root, user_id, session_id)

    def append(self, user_id: str, session_id: str, record: Mapping[str, Any]) -> None:
        """Append one record to the session's journal, durably, or raise and write nothing."""
        path = self.path(user_id, session_id)
        if not isinstance(record, Mapping):
            raise JournalError(f"a record must be a mapping, got {type(record).__name__}")
        record = dict(record)
        if _is_boundary(record, "start"):
            record.setdefault(ID_SCHEME_FIELD, ID_SCHEME)
        problem = _record_problem(record)
        if problem is not None:
            raise JournalError(f"{path}: refused a malformed record: {problem}; nothing was written")
        if (record["user_id"], record["session_id"]) != (user_id, session_id):
            raise JournalError(
                f"{path}: the record names user {record['user_id']!r} and session {record['session_id']!r}, "
                f"not this journal's {user_id!r} / {session_id!r}; nothing was written"
            )
        try:
            line = orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n"
        except orjson.JSONEncodeError as exc:
            raise JournalError(f"{path}: record is not JSON-like: {exc}; nothing was written") from None
        if len(line) > self.max_record_bytes:
            what = f"{record['kind']} record {record.get('op', record.get('event'))!r} for {path}"
            raise RecordTooLarge(len(line), self.max_record_bytes, what)
        starting = _is_boundary(record, "start")
        try:
            fd, _ = _open_journal(self.root, user_id, session_id, os.O_RDWR | os.O_APPEND, create=starting)
        except FileNotFoundError:
            raise JournalError(
                f"{path}: no such journal; a journal begins with its session's start event "
                "(SessionManager.start); nothing was written"
            ) from None
        try:
            _lock(fd)
            size = self._prepare(fd, path, record, starting)
            self._write(fd, path, line, size)
        finally:
            os.close(fd)  # also releases the flock

    def _prepare(self, fd: int, path: Path, record: dict, starting: bool) -> int:
        """Under the lock: drop a torn tail, check the framing; return the committed size."""
        size = os.fstat(fd).st_size
        end = _committed_end(fd, size) if size else 0
        if end != size:
            # Bytes after the last newline were never acknowledged (the write
            # that made them did not return); readers already ignore them.
            os.ftruncate(fd, end)
            os.fsync(fd)
            warnings.warn(
                f"{path}: removed a torn last line of {size - end} bytes left by an interrupted write",
                TornTailWarning,
                stacklevel=3,
            )
        if end == 0:
            if not starting:
                raise JournalError(
                    f"{path}: a journal begins with its session's start event, got a "
                    f"{record['kind']} record; nothing was written"
                )
            return 0
        if starting:
            raise JournalError(f"{path}: this journal already has its start event; nothing was written")
        last = _last_short_line(fd, end)
        if last is not None:
            try:
                previous = orjson.loads(last)
            except orjson.JSONDecodeError as exc:
                line = _line_number_at(fd, end - 1 - len(last))
                raise JournalCorrupt(str(path), line, f"not valid JSON ({exc}); refusing to append after damage") from None
            if isinstance(previous, dict) and _is_boundary(previous, "end"):
                raise SessionAlreadyClosed(
                    f"{path}: session {record['session_id']!r} has ended; its journal takes no more records"
                )
        return end

    def _write(self, fd: int, path: Path, line: bytes, size: int) -> None:
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"{path}: short write ({written} of {len(line)} bytes)")
            os.fsync(fd)
        except BaseException:
            # Not acknowledged, so not kept: readers must never see it as committed.
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            except OSError:
                pass
            raise


# -- reading ---------------------------------------------------------------------------------


@attrs.frozen
class JournalReadout:
    """The committed records of one journal, and whether a torn last line was ignored.

    ``records`` are the decoded JSON objects, line 1 first (record ``i`` is
    on line ``i + 1``). ``torn_line`` is the line number the torn bytes would
    have had.
    """

    path: str
    records: tuple[dict, ...]
    torn_tail: bool = False
    torn_bytes: int = 0
    torn_line: int | None = None

    @property
    def start(self) -> dict | None:
        return self.records[0] if self.records else None

    @property
    def end(self) -> dict | None:
        return self.records[-1] if self.records and _is_boundary(self.records[-1], "end") else None


def _framing_problem(number: int, record: dict, first: dict | None, previous: dict | None) -> str | None:
    if first is None:
        if not _is_boundary(record, "start"):
            return "line 1 of a journal must be its session's start event"
        return None
    if _is_boundary(record, "start"):
        return "a second start event (a journal holds one session)"
    if previous is not None and _is_boundary(previous, "end"):
        return f"a record after the session's end event on line {number - 1}"
    for key in ("user_id", "session_id"):
        if record[key] != first[key]:
            return f"{key} {record[key]!r} differs from {first[key]!r} on line 1"
    return None


def _read_all(fd: int) -> bytes:
    """Everything in the file, read under a shared lock so no append is seen half-done."""
    _lock(fd, shared=True)
    size = os.fstat(fd).st_size
    chunks = []
    position = 0
    while True:
        chunk = os.pread(fd, max(size - position, _CHUNK), position)
        if not chunk:
            break
        chunks.append(chunk)
        position += len(chunk)
    return b"".join(chunks)


def _records(data: bytes, path: str, torn: list[int]) -> Iterator[tuple[int, dict]]:
    """``(line number, record)`` for each committed line, checked as it is read (JournalCorrupt
    at the first bad one). Lines are decoded one by one, never all kept: replay streams them.
    ``torn`` receives the size of a torn last line (when the loop ends)."""
    end = data.rfind(b"\n") + 1
    view = memoryview(data)
    first = previous = None
    number = 0
    position = 0
    while position < end:
        newline = data.index(b"\n", position)
        number += 1
        try:
            record = orjson.loads(view[position:newline])
        except orjson.JSONDecodeError as exc:
            raise JournalCorrupt(path, number, f"not valid JSON ({exc})") from None
        problem = _record_problem(record) or _framing_problem(number, record, first, previous)
        if problem is not None:
            raise JournalCorrupt(path, number, problem)
        if first is None:
            check_id_scheme(record, path)
        first = first or record
        previous = record
        yield number, record
        position = newline + 1
    if len(data) > end:
        torn.append(len(data) - end)
        warnings.warn(
            f"{path}:{number + 1}: ignored a torn last line of {len(data) - end} bytes (a crash interrupted that write)",
            TornTailWarning,
            stacklevel=4,
        )


def _parse(data: bytes, path: str) -> JournalReadout:
    torn: list[int] = []
    records = tuple(record for _, record in _records(data, path, torn))
    if torn:
        return JournalReadout(path, records, True, torn[0], len(records) + 1)
    return JournalReadout(path, records)


def read_journal(path: str | os.PathLike) -> JournalReadout:
    """Every committed record of a journal, checked; a torn last line is reported and ignored.

    Anything else that is wrong (bad JSON, a record of the wrong shape, a
    broken framing) raises JournalCorrupt naming the file and line. The file
    is not opened through a symbolic link (UnsafeJournalPath).
    """
    path = Path(path)
    with _gc_paused():
        return _parse(_path_bytes(path), str(path))


def _path_bytes(path: Path) -> bytes:
    fd = _open_path(path)
    try:
        return _read_all(fd)
    finally:
        os.close(fd)


def _session_bytes(root: str | os.PathLike, user_id: str, session_id: str) -> bytes:
    fd, _ = _open_journal(root, user_id, session_id, os.O_RDONLY, create=False)
    try:
        return _read_all(fd)
    finally:
        os.close(fd)


def read_session(root: str | os.PathLike, user_id: str, session_id: str) -> JournalReadout:
    """``read_journal`` of one session under ``root``; nothing on the way is followed as a link.

    FileNotFoundError if the session has no journal.
    """
    data = _session_bytes(root, user_id, session_id)
    with _gc_paused():
        return _parse(data, str(journal_path(root, user_id, session_id)))


@attrs.frozen
class Boundaries:
    """A journal's committed start and end events (None when absent), read without reading it all."""

    start: dict | None
    end: dict | None


def read_boundaries(path: str | os.PathLike) -> Boundaries:
    """The start event (line 1) and, if the session has ended, the end event (the last line).

    Reads a few KiB at each end of the file, under a shared lock so no append
    is seen half-done. A missing file or one without a committed line has no
    start. What it reads is checked like ``read_journal`` checks it.
    """
    path = Path(path)
    try:
        fd = _open_path(path)
    except FileNotFoundError:
        return Boundaries(None, None)
    try:
        return _boundaries(fd, path)
    finally:
        os.close(fd)


def session_boundaries(root: str | os.PathLike, user_id: str, session_id: str) -> Boundaries:
    """``read_boundaries`` of one session under ``root``, nothing followed as a link."""
    try:
        fd, _ = _open_journal(root, user_id, session_id, os.O_RDONLY, create=False)
    except FileNotFoundError:
        return Boundaries(None, None)
    try:
        return _boundaries(fd, journal_path(root, user_id, session_id))
    finally:
        os.close(fd)


def session_end_despite_damage(root: str | os.PathLike, user_id: str, session_id: str) -> dict | None:
    """The session's end event if its last committed line is a valid one (whatever else is damaged).

    How a damaged journal is told apart: ended (a closed session, listed as
    damaged, never a reason to refuse new work) or not (a damaged active one).
    """
    try:
        fd, _ = _open_journal(root, user_id, session_id, os.O_RDONLY, create=False)
    except (FileNotFoundError, UnsafeJournalPath):
        return None
    try:
        _lock(fd, shared=True)
        size = os.fstat(fd).st_size
        end = _committed_end(fd, size) if size else 0
        last = _last_short_line(fd, end) if end else None
    finally:
        os.close(fd)
    if last is None:
        return None
    try:
        record = orjson.loads(last)
    except orjson.JSONDecodeError:
        return None
    if _record_problem(record) is not None or not _is_boundary(record, "end"):
        return None
    if (record["user_id"], record["session_id"]) != (user_id, session_id):
        return None
    return record


def _boundaries(fd: int, path: Path) -> Boundaries:
    _lock(fd, shared=True)
    size = os.fstat(fd).st_size
    end = _committed_end(fd, size) if size else 0
    if end == 0:
        return Boundaries(None, None)
    head = os.pread(fd, min(end, _BOUNDARY_MAX_BYTES + 1), 0)
    newline = head.find(b"\n")
    if newline == -1:
        raise JournalCorrupt(str(path), 1, "line 1 is too long to be a session start event")
    start = _decode_checked(path, 1, head[:newline])
    problem = _framing_problem(1, start, None, None)
    if problem is not None:
        raise JournalCorrupt(str(path), 1, problem)
    start = check_id_scheme(start, path)
    if newline + 1 == end:
        return Boundaries(start, None)
    last = _last_short_line(fd, end)
    if last is None or b'"end"' not in last:
        return Boundaries(start, None)  # too long, or no "end" in it: not an end event

    def number() -> int:  # only on error paths: counting lines reads the file
        return _line_number_at(fd, end - 1 - len(last))

    record = _decode_checked(path, number, last)
    if not _is_boundary(record, "end"):
        return Boundaries(start, None)
    problem = _framing_problem(2, record, start, None)
    if problem is not None:
        raise JournalCorrupt(str(path), number(), problem)
    return Boundaries(start, record)


def _decode_checked(path: Path, number: Any, raw: bytes) -> dict:
    """Decode one line; ``number`` is the line number, or a function that counts it."""
    try:
        record = orjson.loads(raw)
        problem = _record_problem(record)
    except orjson.JSONDecodeError as exc:
        problem = f"not valid JSON ({exc})"
    if problem is not None:
        raise JournalCorrupt(str(path), number() if callable(number) else number, problem)
    return record


# -- replay ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a journal is read or replayed.

    Replay allocates a long-lived object per record (records, drafts, store
    versions) and no cycles; with the collector on, each full collection walks
    everything kept so far, which made replay grow with the square of the
    journal's length (issue 17: 20k events 15.7 s, 1.1 s with it off).
    Re-enabled on exit only if this call disabled it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _replay(data: bytes, path: str) -> History:
    history = History()
    with _gc_paused():
        for number, record in _records(data, path, []):
            if record["kind"] == "session":
                continue
            try:
                op, fields = _decode_fields(record)
                if op in _MOVES:
                    history.move_to(fields["to_version"])
                else:
                    store = _apply(history.current.store, op, fields)
                    if store is not history.current.store:
                        history.push(change_label(op, fields), store, op, fields)
            except (DraftError, StoreError, JournalError, IndexError) as exc:
                raise JournalCorrupt(path, number, f"{record['op']} does not apply: {exc}") from None
    return history


def replay_history(path: str | os.PathLike) -> History:
    """The store versions a session went through, undo/redo moves included.

    Version numbers follow a journaled Workspace's: one per store event that
    changed the store. Boundary events are skipped; an event that does not
    apply raises JournalCorrupt naming its line. Records are decoded and
    applied one at a time, so time and memory grow linearly with the
    journal's length (benchmarks/bench_journal.py: 100k events in seconds).
    """
    path = Path(path)
    return _replay(_path_bytes(path), str(path))


def replay_session(root: str | os.PathLike, user_id: str, session_id: str) -> History:
    """``replay_history`` of one session under ``root``, nothing followed as a link."""
    return _replay(_session_bytes(root, user_id, session_id), str(journal_path(root, user_id, session_id)))


def replay(path: str | os.PathLike) -> Store:
    """The store one session's journal describes (its current version, after any undo/redo)."""
    return replay_history(path).current.store
