"""Issue 17: journals hold under damage (item 4), planted links (item 2) and hostile text (item 9)."""

import json
import os
import pickle
import warnings

import pytest

from derived import Workspace
from derived.command.cli import _printable, main
from drafts import Store, make_draft
from drafts.errors import InvalidSessionArgument, JournalCorrupt, UnsafeJournalPath
from drafts.journal import Recorder, check_name, check_performer, read_journal, store_event
from drafts.sessions import SessionDamaged, SessionError, SessionEvent, SessionManager
from tests import lenses_for_tests as tl

REG = tl.registry()


def _session(root, user="ana", texts=("a", "b"), end=False):
    m = SessionManager(root)
    s = m.start(user, f"{user}@desk")
    for text in texts:
        record = store_event("add_draft", {"draft": make_draft({"text": text})}, user_id=user,
                             session_id=s.session_id, performer_id=f"{user}@desk")
        Recorder(root).append(user, s.session_id, record)
    if end:
        m.end(user, s.session_id, f"{user}@desk")
    return m, s.session_id, m.journal(user, s.session_id)


def _damage_line(path, number, text=b"{this is not json"):
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = text
    path.write_bytes(b"\n".join(lines))


# -- item 4: one damaged journal locks its user out ------------------------------------------------

def test_a_damaged_closed_session_is_listed_and_never_blocks_new_work(tmp_path):
    m, closed_id, path = _session(tmp_path, end=True)
    _damage_line(path, 1)  # the failing input: a session file whose first line is not JSON
    (info,) = m.sessions("ana")
    assert info.status == "damaged" and info.closed and info.damage_line == 1
    assert "not valid JSON" in info.damage.problem
    assert m.active_session("ana") is None
    started = m.start("ana", "ana@desk")  # new work goes on
    ws = Workspace.open(tmp_path, "ana", "ana@desk", registry=REG)
    assert ws.session_id == started.session_id
    ws.close()
    assert [i.status for i in m.sessions("ana")] == ["closed", "damaged"]


def test_a_damaged_active_session_is_a_clear_error_naming_the_file_and_the_way_out(tmp_path):
    m, active_id, path = _session(tmp_path)
    _damage_line(path, 1)
    (info,) = m.sessions("ana")  # listing never raises
    assert info.status == "damaged" and not info.closed
    for attempt in (lambda: m.start("ana", "ana@desk"),
                    lambda: Workspace.open(tmp_path, "ana", "ana@desk", registry=REG),
                    lambda: m.active_session("ana")):
        with pytest.raises(SessionDamaged) as refused:
            attempt()
        message = str(refused.value)
        assert f"{path}:1:" in message and "not valid JSON" in message
        assert f"draftlens sessions set-aside {active_id} --user ana" in message and "set_aside" in message
    before = path.read_bytes()
    assert m.set_aside("ana", active_id) == f"{active_id}.jsonl.damaged"
    assert (path.parent / f"{active_id}.jsonl.damaged").read_bytes() == before  # kept, unchanged
    assert not path.exists() and m.sessions("ana") == ()
    ws = Workspace.open(tmp_path, "ana", "ana@desk", registry=REG)
    assert ws.store == Store.empty()
    ws.close()


def test_damage_after_line_one_of_the_active_session_is_found_when_it_is_resumed(tmp_path):
    m, active_id, path = _session(tmp_path, texts=("a", "b", "c"))
    _damage_line(path, 3)
    with pytest.raises(SessionDamaged, match=r":3: .*not valid JSON"):
        Workspace.open(tmp_path, "ana", "ana@desk", registry=REG)
    # Its boundaries are whole, so it can also be closed: then it no longer blocks anything.
    m.end("ana", active_id, "ana@desk")
    ws = Workspace.open(tmp_path, "ana", "ana@desk", registry=REG)
    assert ws.session_id != active_id
    ws.close()
    m.set_aside("ana", active_id)  # and a closed damaged journal may still be set aside


def test_a_healthy_session_cannot_be_set_aside(tmp_path):
    m, active_id, path = _session(tmp_path)
    with pytest.raises(SessionError, match="not damaged; end it instead"):
        m.set_aside("ana", active_id)
    assert path.exists()


def test_setting_aside_twice_keeps_both_files(tmp_path):
    m, first, path = _session(tmp_path)
    _damage_line(path, 2)
    m.set_aside("ana", first)
    # Another damaged journal with the same name (restored from a backup, say).
    (path.parent / f"{first}.jsonl.damaged").rename(path)
    (path.parent / f"{first}.jsonl.damaged").write_bytes(b"older")
    assert m.set_aside("ana", first) == f"{first}.jsonl.damaged.1"


def test_the_cli_lists_damage_and_sets_a_journal_aside(tmp_path, capsys):
    m, closed_id, closed_path = _session(tmp_path, end=True)
    _damage_line(closed_path, 2)
    closed_path.write_bytes(closed_path.read_bytes())
    m2, active_id, active_path = _session(tmp_path, user="bo")
    _damage_line(active_path, 1)
    assert main(["sessions", "list", "--user", "bo", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert active_id in out and "damaged" in out and "line 1" in out and "ACTIVE" in out
    assert main(["sessions", "list", "--user", "bo", "--root", str(tmp_path), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["sessions"]  # the versioned document of `sessions list --json`
    assert row["status"] == "damaged" and row["damage"]["line"] == 1 and row["damage"]["closed"] is False
    assert main(["sessions", "set-aside", active_id, "--user", "bo", "--root", str(tmp_path)]) == 0
    assert f"{active_id}.jsonl.damaged" in capsys.readouterr().out
    assert main(["sessions", "show", closed_id, "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{closed_path}:2:" in err


def test_a_torn_only_file_and_an_empty_file_are_no_sessions(tmp_path):
    sessions = tmp_path / "users" / "ana" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "sess_empty.jsonl").write_bytes(b"")
    (sessions / "sess_torn.jsonl").write_bytes(b'{"kind": "sess')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert SessionManager(tmp_path).sessions("ana") == ()
        SessionManager(tmp_path).start("ana", "ana")


# -- item 2: the journal recorder follows a symlink ----------------------------------------------

def test_a_link_planted_at_a_session_file_is_refused_not_written_through(tmp_path):
    _, ana_id, ana_path = _session(tmp_path, user="ana")
    ws = Workspace.open(tmp_path, "bo", "bo@desk", registry=REG)
    bo_path = SessionManager(tmp_path).journal("bo", ws.session_id)
    bo_path.unlink()
    bo_path.symlink_to(ana_path)  # the failing input: bo's records would land in ana's journal
    before = ana_path.read_bytes()
    with pytest.raises(UnsafeJournalPath, match="symbolic link"):
        ws.add({"text": "for bo"})
    assert ana_path.read_bytes() == before
    assert len(read_journal(ana_path).records) == 3  # ana's journal still opens
    listed = {i.session_id: i for i in SessionManager(tmp_path).sessions("bo")}
    assert listed[ws.session_id].status == "damaged"  # listed, not followed
    with pytest.raises(UnsafeJournalPath):
        read_journal(bo_path)


@pytest.mark.parametrize("where", ["users", "users/bo", "users/bo/sessions", "users/bo/.lock"])
def test_links_planted_anywhere_under_users_are_refused(tmp_path, where):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / where).parent.mkdir(parents=True, exist_ok=True)
    target = outside / "target"
    if where.endswith(".lock"):
        target.write_bytes(b"precious")
    else:
        target.mkdir()
    (root / where).symlink_to(target)
    with pytest.raises(UnsafeJournalPath) as refused:
        SessionManager(root).start("bo", "bo@desk")
    assert str(root / where) in str(refused.value)
    if where.endswith(".lock"):
        assert target.read_bytes() == b"precious"  # not truncated, not locked through
    else:
        assert list(target.iterdir()) == []


def test_a_link_at_the_writer_lock_is_refused(tmp_path):
    m, session_id, path = _session(tmp_path, user="bo")
    outside = tmp_path / "precious"
    outside.write_bytes(b"precious")
    (path.parent / f"{session_id}.writer").symlink_to(outside)
    with pytest.raises(UnsafeJournalPath):
        Workspace.open(tmp_path, "bo", "bo@desk", registry=REG)
    assert outside.read_bytes() == b"precious"


def test_a_fifo_at_a_journal_path_is_refused_without_hanging(tmp_path):
    m, session_id, path = _session(tmp_path, user="bo", end=True)
    fifo = path.parent / "sess_fifo.jsonl"
    os.mkfifo(fifo)
    listed = {i.session_id: i.status for i in m.sessions("bo")}
    assert listed == {session_id: "closed", "sess_fifo": "damaged"}
    with pytest.raises(UnsafeJournalPath):
        read_journal(fifo)
    with pytest.raises(UnsafeJournalPath):
        Recorder(tmp_path).append("bo", "sess_fifo", store_event(
            "remove_draft", {"draft_id": "x"}, user_id="bo", session_id="sess_fifo", performer_id="bo"))


def test_unsafe_path_errors_pickle():
    error = UnsafeJournalPath("/r/users/bo", "is a symbolic link")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.path == "/r/users/bo"


# -- item 9: control characters forge lines in `draftlens sessions list/show` ---------------------

HOSTILE = ["bo\n    2  2026-01-01T00:00:00.000Z  admin  session end", "\x1b[31mred", "a\rb", "x\u202eevil",
           "tab\there", "del\x7f", "nel\x85", "ls\u2028"]


@pytest.mark.parametrize("text", HOSTILE)
def test_control_characters_are_refused_in_ids_and_performer_ids(tmp_path, text):
    with pytest.raises(InvalidSessionArgument, match="control character"):
        check_performer(text)
    with pytest.raises(InvalidSessionArgument, match="control character"):
        check_name(text, "user_id")
    with pytest.raises(InvalidSessionArgument):
        SessionManager(tmp_path).start("bo", text)
    with pytest.raises(InvalidSessionArgument):
        SessionManager(tmp_path).start(text, "bo")
    with pytest.raises(InvalidSessionArgument):
        Workspace.open(tmp_path, "bo", text, registry=REG)
    with pytest.raises(InvalidSessionArgument):
        SessionEvent("session_manager", "start", "bo", "sess_1", "2026-01-01T00:00:00.000Z",
                     "6f1c0b7e-3a55-4b5e-9e8f-0a1b2c3d4e5f", text)
    assert not (tmp_path / "users" / "bo" / "sessions").exists() or SessionManager(tmp_path).sessions("bo") == ()


def test_a_forged_performer_in_a_journal_is_never_printed_raw(tmp_path, capsys):
    m, session_id, path = _session(tmp_path, user="bo")
    record = json.loads(path.read_bytes().split(b"\n")[1])
    record["performer_id"] = HOSTILE[0] + HOSTILE[1]
    lines = path.read_bytes().split(b"\n")
    lines[1] = json.dumps(record, sort_keys=True).encode()
    path.write_bytes(b"\n".join(lines))
    assert main(["sessions", "show", session_id, "--user", "bo", "--root", str(tmp_path)]) == 2
    shown = capsys.readouterr()
    for stream in (shown.out, shown.err):
        assert "\x1b" not in stream and "\r" not in stream
        assert all(not line.lstrip().startswith("2  2026") for line in stream.splitlines())
    assert "control character" in shown.err
    assert main(["sessions", "list", "--user", "bo", "--root", str(tmp_path)]) == 0
    listed = capsys.readouterr().out
    assert "\x1b" not in listed and len(listed.strip().splitlines()) == 3  # header, rule, one session


def test_printable_escapes_everything_that_is_not_printable():
    assert _printable("plain ascii, é and 日本") == "plain ascii, é and 日本"
    assert _printable("a\nb\x1b[31m\u202e") == "a\\nb\\x1b[31m\\u202e"
    assert "\n" not in _printable(JournalCorrupt("/p", 2, "bad\nline"))


def test_a_linked_user_directory_never_owns_a_session(tmp_path):
    m, session_id, path = _session(tmp_path, user="ana")
    (tmp_path / "users" / "aaa").symlink_to(tmp_path / "users" / "ana")  # sorts before "ana"
    assert m.owner_of(session_id) == "ana"
    assert m.close_by_system(session_id).user_id == "ana"


def test_sessions_replay_escapes_instance_ids_it_prints(tmp_path, capsys):
    m = SessionManager(tmp_path)
    s = m.start("bo", "bo")
    d = make_draft({"text": "x"})
    for op, fields in [("add_draft", {"draft": d}),
                       ("add_lens_instance", {"instance_id": "up\x1b[2J\nforged", "lens_id": "no.such\r",
                                              "input": d.id, "params": None})]:
        Recorder(tmp_path).append("bo", s.session_id, store_event(op, fields, user_id="bo", session_id=s.session_id,
                                                                  performer_id="bo"))
    assert main(["sessions", "replay", s.session_id, "--user", "bo", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\nforged" not in out and "up\\x1b[2J\\nforged" in out
