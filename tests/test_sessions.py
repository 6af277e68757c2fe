"""Work sessions: boundary events, one active session per user, errors, state from the journals."""

import ast
import inspect
import pathlib
import re
import uuid
import warnings

import attrs
import orjson
import pytest

from drafts.draft import ID_SCHEME
from drafts.errors import (
    ActiveSessionExists,
    InvalidSessionArgument,
    SessionAlreadyClosed,
    SessionError,
    SessionNotFound,
    SessionUserMismatch,
)
from drafts.journal import Recorder, read_journal
from drafts.sessions import SessionEvent, SessionManager

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _journal_files(root):
    return sorted(pathlib.Path(root).rglob("*.jsonl"))


def test_start_and_end_events_carry_every_field(tmp_path):
    m = SessionManager(tmp_path)
    start = m.start("ana", "ana@desk")
    end = m.end("ana", start.session_id, "ana@desk")
    for event, kind in ((start, "start"), (end, "end")):
        assert event.source == "session_manager" and event.event == kind and event.user_id == "ana"
        assert TS.fullmatch(event.timestamp) and uuid.UUID(event.record_id).version == 4
        assert event.performer_id == "ana@desk"
    assert re.fullmatch(r"sess_[0-9a-f]{32}", start.session_id)
    assert start.session_id == end.session_id and start.record_id != end.record_id
    records = read_journal(tmp_path / "users/ana/sessions" / f"{start.session_id}.jsonl").records
    assert list(records) == [start.to_record() | {"id_scheme": ID_SCHEME}, end.to_record()]
    assert records[0]["kind"] == "session"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        start.timestamp = "2000-01-01T00:00:00.000Z"


def test_callers_cannot_supply_timestamps_sources_or_record_ids():
    for method in (SessionManager.start, SessionManager.end, SessionManager.close_by_system):
        names = set(inspect.signature(method).parameters)
        assert not names & {"timestamp", "record_id", "source"}, method


def test_a_session_event_is_checked_when_made():
    good = dict(source="session_manager", event="start", user_id="ana", session_id="sess_1",
                timestamp="2026-01-01T00:00:00.000Z", record_id=str(uuid.uuid4()), performer_id="ana")
    SessionEvent(**good)
    for key, bad, message in [
        ("source", "client", "source must be 'session_manager'"),
        ("event", "pause", "event must be 'start' or 'end'"),
        ("timestamp", "2026-01-01T00:00:00Z", "not UTC ISO 8601 with milliseconds"),
        ("record_id", str(uuid.uuid1()), "not a UUIDv4"),
        ("user_id", "..", "user_id '..'"),
        ("performer_id", "", "performer_id is required"),
    ]:
        with pytest.raises(InvalidSessionArgument, match=message):
            SessionEvent(**(good | {key: bad}))


def test_one_active_session_per_user(tmp_path):
    m = SessionManager(tmp_path)
    first = m.start("ana", "ana")
    with pytest.raises(ActiveSessionExists, match=f"already has active session '{first.session_id}'"):
        m.start("ana", "someone-else")
    other = m.start("bo", "bo")  # another user is independent
    assert m.active_session("ana") == first.session_id and m.active_session("bo") == other.session_id
    m.end("ana", first.session_id, "ana")
    second = m.start("ana", "ana")
    assert second.session_id != first.session_id and m.active_session("ana") == second.session_id
    assert [(i.session_id, i.status) for i in m.sessions("ana")] == [
        (first.session_id, "closed"), (second.session_id, "active")]
    assert m.active_session("nobody") is None and m.sessions("nobody") == ()


def test_system_closure_keeps_the_session_id_with_a_new_record_id(tmp_path):
    m = SessionManager(tmp_path)
    start = m.start("ana", "ana")
    closed = m.close_by_system(start.session_id)
    assert (closed.performer_id, closed.event, closed.user_id) == ("system", "end", "ana")
    assert closed.session_id == start.session_id and closed.record_id != start.record_id
    assert TS.fullmatch(closed.timestamp)
    assert m.active_session("ana") is None
    assert read_journal(m.journal("ana", start.session_id)).records[-1]["performer_id"] == "system"


def test_system_may_be_the_explicit_performer(tmp_path):
    m = SessionManager(tmp_path)
    start = m.start("ana", "system")
    end = m.end("ana", start.session_id, "system")
    assert start.performer_id == end.performer_id == "system"


def test_ending_another_users_session_is_a_mismatch(tmp_path):
    m = SessionManager(tmp_path)
    s = m.start("ana", "ana")
    with pytest.raises(SessionUserMismatch, match="belongs to another user, not to 'bo'") as info:
        m.end("bo", s.session_id, "bo")
    assert isinstance(info.value, PermissionError)
    assert m.active_session("ana") == s.session_id


@pytest.mark.parametrize("session_id", ["sess_" + "0" * 32, "anything-well-formed"])
def test_a_session_never_issued_is_not_found(tmp_path, session_id):
    m = SessionManager(tmp_path)
    m.start("ana", "ana")
    with pytest.raises(SessionNotFound, match=f"no session '{session_id}' was started") as info:
        m.end("ana", session_id, "ana")
    assert isinstance(info.value, LookupError)
    with pytest.raises(SessionNotFound):
        m.close_by_system(session_id)


def test_ending_twice_is_already_closed(tmp_path):
    m = SessionManager(tmp_path)
    s = m.start("ana", "ana")
    m.end("ana", s.session_id, "ana")
    with pytest.raises(SessionAlreadyClosed, match=f"session '{s.session_id}' of user 'ana' already ended"):
        m.end("ana", s.session_id, "ana")
    with pytest.raises(SessionAlreadyClosed):
        m.close_by_system(s.session_id)
    assert len(read_journal(m.journal("ana", s.session_id)).records) == 2



def test_reading_a_session_that_is_not_the_users_says_whose_it_is_like_ending_it(tmp_path, monkeypatch):
    m = SessionManager(tmp_path)
    s = m.start("ana", "ana")
    assert [r["event"] for r in m.read("ana", s.session_id).records] == ["start"]
    with pytest.raises(SessionUserMismatch, match=f"session '{s.session_id}' belongs to another user, not to 'bo'"):
        m.read("bo", s.session_id)
    with pytest.raises(SessionNotFound, match="no session 'sess_nope' was started"):
        m.read("ana", "sess_nope")
    # Gone between the read and the look-up (set aside meanwhile): not found for that user, not "another user's".
    monkeypatch.setattr("drafts.sessions.read_session", lambda *a: (_ for _ in ()).throw(FileNotFoundError()))
    with pytest.raises(SessionNotFound, match=f"no session '{s.session_id}' for user 'ana'"):
        m.read("ana", s.session_id)

def test_every_error_is_a_session_error():
    for exc in (SessionUserMismatch, SessionNotFound, SessionAlreadyClosed, ActiveSessionExists,
                InvalidSessionArgument):
        assert issubclass(exc, SessionError)
    assert issubclass(InvalidSessionArgument, ValueError)


BAD_IDS = ["", ".", "..", "a/b", "a\\b", "nul\x00", "../etc", "x" * 201, 7, None]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ids_that_could_escape_the_log_root_are_refused(tmp_path, bad):
    m = SessionManager(tmp_path)
    good = m.start("ana", "ana").session_id
    before = sorted(tmp_path.rglob("*"))
    for call in (lambda: m.start(bad, "p"), lambda: m.end(bad, good, "p"), lambda: m.end("ana", bad, "p"),
                 lambda: m.close_by_system(bad), lambda: m.active_session(bad), lambda: m.journal("ana", bad)):
        with pytest.raises(InvalidSessionArgument) as info:
            call()
        assert isinstance(info.value, ValueError)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("performer", ["", "   ", None, 3, "x" * 257])
def test_performer_is_required(tmp_path, performer):
    m = SessionManager(tmp_path)
    with pytest.raises(InvalidSessionArgument, match="performer_id") as info:
        m.start("ana", performer)
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidSessionArgument, match="performer_id is required"):
        m.start("ana")
    assert _journal_files(tmp_path) == []
    s = m.start("ana", "ana")
    with pytest.raises(InvalidSessionArgument, match="performer_id"):
        m.end("ana", s.session_id, performer)
    with pytest.raises(InvalidSessionArgument, match="performer_id is required"):
        m.end("ana", s.session_id)
    assert m.active_session("ana") == s.session_id


class FailingRecorder(Recorder):
    def append(self, user_id, session_id, record):
        raise OSError("disk full")


def test_state_changes_only_after_the_append_succeeded(tmp_path):
    failing = SessionManager(tmp_path, recorder=FailingRecorder(tmp_path))
    with pytest.raises(OSError, match="disk full"):
        failing.start("ana", "ana")
    assert failing.active_session("ana") is None and _journal_files(tmp_path) == []
    s = SessionManager(tmp_path).start("ana", "ana")
    before = read_journal(failing.journal("ana", s.session_id)).records
    with pytest.raises(OSError, match="disk full"):
        failing.end("ana", s.session_id, "ana")
    with pytest.raises(OSError, match="disk full"):
        failing.close_by_system(s.session_id)
    assert SessionManager(tmp_path).active_session("ana") == s.session_id
    assert read_journal(failing.journal("ana", s.session_id)).records == before


class SpyRecorder(Recorder):
    """Takes records and writes nothing: what is on disk afterwards was not written by the manager."""

    def __init__(self, root):
        super().__init__(root)
        self.appended = []

    def append(self, user_id, session_id, record):
        self.appended.append((user_id, session_id, record))


def test_the_manager_makes_the_directory_and_leaves_every_write_to_the_recorder(tmp_path):
    spy = SpyRecorder(tmp_path)
    event = SessionManager(tmp_path, recorder=spy).start("ana", "ana")
    assert spy.appended == [("ana", event.session_id, event.to_record())]
    assert (tmp_path / "users/ana/sessions").is_dir()
    assert _journal_files(tmp_path) == []


def test_the_manager_module_never_opens_or_writes_files_itself():
    source = (pathlib.Path(__file__).resolve().parent.parent / "drafts" / "sessions.py").read_text()
    tree = ast.parse(source)
    called = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
              for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not called & {"open", "write", "write_text", "write_bytes", "fdopen", "touch"}
    assert "io" not in {alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}


def test_active_sessions_survive_a_restart(tmp_path):
    s = SessionManager(tmp_path).start("ana", "ana")
    restarted = SessionManager(tmp_path)
    assert restarted.active_session("ana") == s.session_id
    with pytest.raises(ActiveSessionExists):
        restarted.start("ana", "ana")
    restarted.end("ana", s.session_id, "ana")
    assert SessionManager(tmp_path).active_session("ana") is None
    assert [i.status for i in SessionManager(tmp_path).sessions("ana")] == ["closed"]


def test_the_journals_are_the_only_state(tmp_path):
    # A start written by the recorder alone (no manager in this process) is an active session.
    event = SessionManager(tmp_path, recorder=SpyRecorder(tmp_path)).start("ana", "ana")
    assert SessionManager(tmp_path).active_session("ana") is None
    Recorder(tmp_path).append("ana", event.session_id, event.to_record())
    assert SessionManager(tmp_path).active_session("ana") == event.session_id
    assert SessionManager(tmp_path).owner_of(event.session_id) == "ana"


def test_an_end_torn_by_a_crash_leaves_the_session_active(tmp_path):
    m = SessionManager(tmp_path)
    s = m.start("ana", "ana")
    path = m.journal("ana", s.session_id)
    torn = m._event("end", "ana", s.session_id, "ana").to_record()
    line = orjson.dumps(torn, option=orjson.OPT_SORT_KEYS)
    with open(path, "ab") as fh:
        fh.write(line)  # all but the newline: never committed
    assert m.active_session("ana") == s.session_id
    with pytest.raises(ActiveSessionExists):
        m.start("ana", "ana")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        end = m.end("ana", s.session_id, "ana")
    assert end.record_id != torn["record_id"]
    assert [r["event"] for r in read_journal(path).records] == ["start", "end"]


def test_record_ids_are_unique_across_many_boundaries(tmp_path):
    m = SessionManager(tmp_path)
    ids = []
    for _ in range(25):
        s = m.start("ana", "ana")
        ids += [s.record_id, m.end("ana", s.session_id, "ana").record_id]
    assert len(set(ids)) == 50
    assert len({i.session_id for i in m.sessions("ana")}) == 25
