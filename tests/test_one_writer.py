"""Issue 16: one writer per active session; subscribers that cannot break a change. Issue 17.6: atomic open."""

import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading

import pytest

from derived import Workspace
from drafts import Store
from drafts.errors import ActiveSessionExists
from drafts.journal import read_journal, replay
from drafts.sessions import (
    InvalidSessionArgument,
    SessionAlreadyClosed,
    SessionDamaged,
    SessionError,
    SessionInUse,
    SessionManager,
    SessionNotFound,
    SessionUserMismatch,
)
from tests import lenses_for_tests as tl

REG = tl.registry()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A second process holding a workspace: applies the changes named on argv,
# says "ready <pid>", then waits (for a line on stdin, or for a SIGKILL).
HOLDER = r"""
import sys
sys.path.insert(0, {root!r})
from derived import Workspace
ws = Workspace.open(sys.argv[1], "bo", "bo@other-kernel")
for text in sys.argv[2:]:
    ws.add({{"text": text}})
print("ready", __import__("os").getpid(), ws.session_id, flush=True)
sys.stdin.readline()
ws.detach()
print("detached", flush=True)
"""


def _holder(root, *texts):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=ROOT), str(root), *texts],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    word, pid, session_id = proc.stdout.readline().split()
    assert word == "ready"
    return proc, int(pid), session_id


# -- issue 16, failing input 1: two workspaces write one journal --------------------------------

def test_a_second_open_in_the_same_process_is_refused_naming_the_holder(tmp_path):
    a = Workspace.open(tmp_path, "bo", "bo@a", registry=REG)
    with pytest.raises(SessionInUse) as refused:
        Workspace.open(tmp_path, "bo", "bo@b", registry=REG)
    holder = refused.value.holder
    assert holder["performer_id"] == "bo@a" and holder["pid"] == os.getpid()
    assert holder["host"] == socket.gethostname()
    message = str(refused.value)
    assert "'bo@a'" in message and f"pid {os.getpid()}" in message and "one writer per session" in message
    a.add({"text": "A"})
    # Only A wrote: the journal replays to A's store, not to a mix of two histories.
    assert replay(SessionManager(tmp_path).journal("bo", a.session_id)) == a.store
    performers = {r["performer_id"] for r in read_journal(SessionManager(tmp_path).journal("bo", a.session_id)).records}
    assert performers == {"bo@a"}
    a.close()


def test_a_second_open_from_another_process_is_refused_naming_it(tmp_path):
    proc, pid, session_id = _holder(tmp_path, "B")
    try:
        with pytest.raises(SessionInUse) as refused:
            Workspace.open(tmp_path, "bo", "bo@a", registry=REG)
        assert refused.value.holder["pid"] == pid and refused.value.session_id == session_id
        assert refused.value.holder["performer_id"] == "bo@other-kernel"
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "detached"
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    # Released: this process resumes the session and sees the other's change.
    again = Workspace.open(tmp_path, "bo", "bo@a", registry=REG)
    assert again.session_id == session_id
    assert [d.payload["text"] for d in again.store.drafts.values()] == ["B"]
    again.close()


def test_a_writer_killed_by_sigkill_does_not_lock_the_user_out(tmp_path):
    proc, pid, session_id = _holder(tmp_path, "one", "two", "three")
    proc.send_signal(signal.SIGKILL)
    proc.stdin.close()
    assert proc.wait(timeout=60) == -signal.SIGKILL
    ws = Workspace.open(tmp_path, "bo", "bo@a", registry=REG)  # takes over at once
    assert ws.session_id == session_id
    # Replay equals the acknowledged changes (all three were acknowledged before "ready").
    assert [d.payload["text"] for d in ws.store.drafts.values()] == ["one", "two", "three"]
    ws.add({"text": "four"})
    assert len(replay(SessionManager(tmp_path).journal("bo", session_id)).drafts) == 4
    ws.close()


def test_detach_leaves_the_session_active_and_close_ends_it(tmp_path):
    ws = Workspace.open(tmp_path, "bo", "bo@a", registry=REG)
    ws.add({"text": "x"})
    ws.detach()
    with pytest.raises(RuntimeError, match="closed"):
        ws.add({"text": "y"})
    again = Workspace.open(tmp_path, "bo", "bo@b", registry=REG)
    assert again.session_id == ws.session_id and again.store == ws.store
    again.close()
    assert SessionManager(tmp_path).active_session("bo") is None
    fresh = Workspace.open(tmp_path, "bo", "bo@a", registry=REG)  # close() released the lease too
    assert fresh.session_id != ws.session_id and fresh.store == Store.empty()
    fresh.close()


def test_a_dropped_workspace_releases_its_session(tmp_path):
    ws = Workspace.open(tmp_path, "bo", "bo@a", registry=REG)
    session_id = ws.session_id
    del ws  # as when a notebook cell rebinds the name (no cycles: freed at once)
    again = Workspace.open(tmp_path, "bo", "bo@a", registry=REG)
    assert again.session_id == session_id
    again.close()


def test_close_after_the_system_closed_the_session_does_not_raise_and_releases(tmp_path):
    ws = Workspace.open(tmp_path, "bo", "bo@a", registry=REG)
    SessionManager(tmp_path).close_by_system(ws.session_id)
    ws.close()
    other = Workspace.open(tmp_path, "bo", "bo@a", registry=REG)
    assert other.session_id != ws.session_id
    other.close()


def test_the_session_manager_may_still_end_a_session_someone_writes_to(tmp_path):
    # The writer lease guards the store's history, not the session's boundaries:
    # the system may close a session in use; its writer then gets SessionAlreadyClosed.
    ws = Workspace.open(tmp_path, "bo", "bo@a", registry=REG)
    SessionManager(tmp_path).end("bo", ws.session_id, "system")
    with pytest.raises(SessionAlreadyClosed):
        ws.add({"text": "late"})


# -- issue 17, failing input 6: two threads opening one user's workspace ------------------------

@pytest.mark.parametrize("round_", range(30))
def test_two_threads_opening_one_workspace_one_writes_the_other_is_told_it_is_in_use(tmp_path, round_):
    barrier = threading.Barrier(2)
    results = []

    def open_it(performer):
        barrier.wait()
        try:
            results.append(("opened", Workspace.open(tmp_path, "bo", performer, registry=REG)))
        except Exception as exc:  # noqa: BLE001 - the test asserts which one
            results.append(("refused", exc))

    threads = [threading.Thread(target=open_it, args=(f"bo@{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes = sorted(results, key=lambda r: r[0])
    assert [o[0] for o in outcomes] == ["opened", "refused"], results
    winner, loser = outcomes[0][1], outcomes[1][1]
    assert type(loser) is SessionInUse and not isinstance(loser, ActiveSessionExists)
    assert loser.session_id == winner.session_id and loser.holder["performer_id"] == winner._recorder.performer_id
    assert [i.session_id for i in SessionManager(tmp_path).sessions("bo")] == [winner.session_id]
    winner.close()


# -- errors -------------------------------------------------------------------------------------

def test_session_errors_are_importable_from_the_manager_module():
    import drafts.errors
    import drafts.sessions

    for name in ("SessionError", "InvalidSessionArgument", "SessionNotFound", "SessionUserMismatch",
                 "SessionAlreadyClosed", "ActiveSessionExists", "SessionInUse", "SessionDamaged"):
        assert getattr(drafts.sessions, name) is getattr(drafts.errors, name)
        assert name in drafts.sessions.__all__
        assert issubclass(getattr(drafts.sessions, name), SessionError)
    assert issubclass(InvalidSessionArgument, ValueError) and issubclass(SessionNotFound, LookupError)
    assert issubclass(SessionUserMismatch, PermissionError)


def test_new_session_errors_pickle_with_their_details():
    in_use = SessionInUse("bo", "sess_1", {"performer_id": "bo@a", "host": "h", "pid": 7, "since": "t"})
    again = pickle.loads(pickle.dumps(in_use))
    assert str(again) == str(in_use) and again.holder["pid"] == 7
    damaged = SessionDamaged("bo", "sess_1", "/x/sess_1.jsonl", 3, "not valid JSON")
    again = pickle.loads(pickle.dumps(damaged))
    assert str(again) == str(damaged) and again.line == 3


# -- issue 16, failing input 2: a failing subscriber breaks a change ---------------------------

def test_a_failing_subscriber_neither_breaks_the_change_nor_skips_the_others(tmp_path, caplog):
    ws = Workspace.open(tmp_path, "bo", "bo@a", registry=REG)
    d = ws.add({"text": "x"})
    seen = []
    ws.subscribe(lambda s: 1 / 0)
    ws.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="derived.workspace"):
        ws.apply("up", "text.upper", d)  # does not raise
    assert len(seen) == 1 and seen[0].outputs("up")[0].payload["text"] == "X"
    assert "up" in ws.store.lens_instances and ws.version == 2
    (failure,) = ws.subscriber_failures
    assert failure.version == 2 and isinstance(failure.error, ZeroDivisionError)
    assert failure.error.__traceback__ is not None
    assert "ZeroDivisionError" in caplog.text and "version 2" in caplog.text
    ws.undo()  # every change tells every subscriber, each time
    assert len(seen) == 2 and len(ws.subscriber_failures) == 2
    # The journaled change stands: a resumed workspace has it.
    ws.detach()
    again = Workspace.open(tmp_path, "bo", "bo@a", registry=REG)
    assert again.store == ws.store and again.version == ws.version
    again.close()


def test_subscriber_failures_kept_are_bounded():
    from derived.workspace import MAX_SUBSCRIBER_FAILURES

    ws = Workspace(registry=REG)
    ws.subscribe(lambda s: {}["missing"])
    for i in range(MAX_SUBSCRIBER_FAILURES + 5):
        ws.add({"n": i})
    failures = ws.subscriber_failures
    assert len(failures) == MAX_SUBSCRIBER_FAILURES and failures[-1].version == MAX_SUBSCRIBER_FAILURES + 5


def test_a_subscriber_interrupted_by_the_user_still_interrupts():
    ws = Workspace(registry=REG)

    def interrupted(state):
        raise KeyboardInterrupt

    ws.subscribe(interrupted)
    with pytest.raises(KeyboardInterrupt):
        ws.add({"text": "x"})
    assert len(ws.store.drafts) == 1  # committed before subscribers were told
