"""Issue 16: the HTTP door (derived.command.http) — every route and every row of the error mapping."""

import re

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from derived.command.http import create_app  # noqa: E402
from drafts.journal import read_journal  # noqa: E402
from drafts.sessions import SessionManager  # noqa: E402

START = "/session_manager/sessions.start"
END = "/session_manager/sessions.end"
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def client(tmp_path):
    return TestClient(create_app(tmp_path))


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name.endswith(".jsonl"))


def test_start_and_end_return_the_boundary_events_as_journaled(client, tmp_path):
    started = client.post(START, json={"user_id": "ana", "performer_id": "ana@desk"})
    assert started.status_code == 200
    body = started.json()
    assert set(body) == {"source", "event", "user_id", "session_id", "timestamp", "record_id", "performer_id"}
    assert body["source"] == "session_manager" and body["event"] == "start" and body["user_id"] == "ana"
    assert STAMP.fullmatch(body["timestamp"]) and UUID4.fullmatch(body["record_id"])
    ended = client.post(END, json={"user_id": "ana", "session_id": body["session_id"], "performer_id": "ana@desk"})
    assert ended.status_code == 200
    end = ended.json()
    assert end["event"] == "end" and end["session_id"] == body["session_id"] and end["record_id"] != body["record_id"]
    records = read_journal(SessionManager(tmp_path).journal("ana", body["session_id"])).records
    assert [{k: v for k, v in r.items() if k not in ("kind", "id_scheme")} for r in records] == [body, end]
    assert records[0]["id_scheme"] == "draftlens.draft.v1"  # the journal also names its id scheme


def test_performer_system_is_a_system_closure(client, tmp_path):
    session_id = client.post(START, json={"user_id": "ana", "performer_id": "ana"}).json()["session_id"]
    ended = client.post(END, json={"user_id": "ana", "session_id": session_id, "performer_id": "system"})
    assert ended.status_code == 200 and ended.json()["performer_id"] == "system"
    assert SessionManager(tmp_path).sessions("ana")[0].ended.performer_id == "system"


def test_start_while_active_is_409(client):
    first = client.post(START, json={"user_id": "ana", "performer_id": "ana"}).json()
    again = client.post(START, json={"user_id": "ana", "performer_id": "ana"})
    assert again.status_code == 409
    assert again.json()["error"] == "ActiveSessionExists" and first["session_id"] in again.json()["detail"]


def test_ending_a_closed_session_is_409(client):
    session_id = client.post(START, json={"user_id": "ana", "performer_id": "ana"}).json()["session_id"]
    body = {"user_id": "ana", "session_id": session_id, "performer_id": "ana"}
    assert client.post(END, json=body).status_code == 200
    again = client.post(END, json=body)
    assert again.status_code == 409 and again.json()["error"] == "SessionAlreadyClosed"


def test_ending_a_session_never_started_is_404(client):
    answer = client.post(END, json={"user_id": "ana", "session_id": "sess_nope", "performer_id": "ana"})
    assert answer.status_code == 404 and answer.json()["error"] == "SessionNotFound"


def test_ending_another_users_session_is_403_and_records_nothing(client, tmp_path):
    session_id = client.post(START, json={"user_id": "ana", "performer_id": "ana"}).json()["session_id"]
    answer = client.post(END, json={"user_id": "bo", "session_id": session_id, "performer_id": "bo"})
    assert answer.status_code == 403 and answer.json()["error"] == "SessionUserMismatch"
    assert SessionManager(tmp_path).active_session("ana") == session_id


BAD_STARTS = [
    ("malformed JSON", b'{"user_id": "ana", ', "the body is not valid JSON"),
    ("not an object", b'["ana", "ana"]', "body"),
    ("missing performer", b'{"user_id": "ana"}', "performer_id is required"),
    ("empty performer", b'{"user_id": "ana", "performer_id": ""}', "performer_id is required"),
    ("blank performer", b'{"user_id": "ana", "performer_id": "   "}', "performer_id is required"),
    ("performer not a string", b'{"user_id": "ana", "performer_id": 7}', "performer_id"),
    ("client timestamp", b'{"user_id": "ana", "performer_id": "ana", "timestamp": "2026-01-01T00:00:00.000Z"}',
     "timestamp is made by the server"),
    ("client source", b'{"user_id": "ana", "performer_id": "ana", "source": "session_manager"}',
     "source is always 'session_manager'"),
    ("client record id", b'{"user_id": "ana", "performer_id": "ana", "record_id": "x"}', "record_id"),
    ("unknown field", b'{"user_id": "ana", "performer_id": "ana", "notes": "x"}', "unknown field 'notes'"),
    ("user id escapes the root", b'{"user_id": "../ana", "performer_id": "ana"}', "must not contain '/'"),
    ("user id dot-dot", b'{"user_id": "..", "performer_id": "ana"}', "must not be empty, '.' or '..'"),
    ("user id with a newline", b'{"user_id": "a\\nb", "performer_id": "ana"}', "control character"),
    ("performer with an escape", b'{"user_id": "ana", "performer_id": "\\u001b[31m"}', "control character"),
]


@pytest.mark.parametrize("what, body, message", BAD_STARTS, ids=[b[0] for b in BAD_STARTS])
def test_bad_start_requests_are_400_not_422_and_record_nothing(client, tmp_path, what, body, message):
    answer = client.post(START, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert message in str(answer.json()["detail"])
    assert _files(tmp_path) == []


@pytest.mark.parametrize("field, value, message", [
    ("performer_id", None, "performer_id is required"),
    ("performer_id", "", "performer_id is required"),
    ("session_id", "..", "must not be empty"),
    ("session_id", "../../etc/passwd", "must not contain '/'"),
    ("timestamp", "2026-01-01T00:00:00.000Z", "timestamp is made by the server"),
    ("source", "elsewhere", "source is always"),
])
def test_bad_end_requests_are_400_and_record_nothing(client, tmp_path, field, value, message):
    session_id = client.post(START, json={"user_id": "ana", "performer_id": "ana"}).json()["session_id"]
    path = SessionManager(tmp_path).journal("ana", session_id)
    before = path.read_bytes()
    body = {"user_id": "ana", "session_id": session_id, "performer_id": "ana"}
    if value is None:
        del body[field]
    else:
        body[field] = value
    answer = client.post(END, json=body)
    assert answer.status_code == 400 and message in str(answer.json()["detail"])
    assert path.read_bytes() == before and SessionManager(tmp_path).active_session("ana") == session_id


def test_a_damaged_active_session_is_409_naming_the_way_out(client, tmp_path):
    session_id = client.post(START, json={"user_id": "ana", "performer_id": "ana"}).json()["session_id"]
    SessionManager(tmp_path).journal("ana", session_id).write_bytes(b"garbage\n")
    answer = client.post(START, json={"user_id": "ana", "performer_id": "ana"})
    assert answer.status_code == 409 and answer.json()["error"] == "SessionDamaged"
    assert "set-aside" in answer.json()["detail"]


def test_the_read_only_views_list_sessions_and_show_events(client, tmp_path):
    first = client.post(START, json={"user_id": "ana", "performer_id": "ana"}).json()["session_id"]
    client.post(END, json={"user_id": "ana", "session_id": first, "performer_id": "ana"})
    second = client.post(START, json={"user_id": "ana", "performer_id": "ana@2"}).json()["session_id"]
    listed = client.get("/session_manager/users/ana/sessions")
    assert listed.status_code == 200
    assert [(s["session_id"], s["status"]) for s in listed.json()] == [(first, "closed"), (second, "active")]
    assert listed.json()[1]["started"]["performer_id"] == "ana@2" and listed.json()[1]["ended"] is None
    assert client.get("/session_manager/users/nobody/sessions").json() == []
    shown = client.get(f"/session_manager/users/ana/sessions/{first}")
    assert shown.status_code == 200
    assert [r["event"] for r in shown.json()["records"]] == ["start", "end"] and shown.json()["torn_tail"] is False
    # A damaged closed session is listed as damaged; reading it is the server's problem (500).
    path = SessionManager(tmp_path).journal("ana", first)
    path.write_bytes(b"garbage\n" + path.read_bytes().split(b"\n", 1)[1])
    row = client.get("/session_manager/users/ana/sessions").json()[-1]
    assert row["status"] == "damaged" and row["closed"] is True and row["damage"]["line"] == 1
    broken = client.get(f"/session_manager/users/ana/sessions/{first}")
    assert broken.status_code == 500 and broken.json()["error"] == "JournalCorrupt"


def test_the_read_only_views_map_errors_too(client):
    session_id = client.post(START, json={"user_id": "ana", "performer_id": "ana"}).json()["session_id"]
    assert client.get("/session_manager/users/ana/sessions/sess_nope").status_code == 404
    assert client.get(f"/session_manager/users/bo/sessions/{session_id}").status_code == 403
    assert client.get("/session_manager/users/%2E%2E/sessions").status_code == 400
    assert client.get("/session_manager/users/ana/sessions/%2E%2E").status_code == 400
    assert client.get("/session_manager/users/a%0Ab/sessions").status_code == 400


def test_serve_without_a_port_to_bind_or_with_no_workers_is_a_usage_error(capsys):
    from derived.command.cli import main

    assert main(["serve", "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
