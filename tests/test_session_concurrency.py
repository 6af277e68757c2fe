"""Threads and processes sharing one root race for one user's session: exactly one wins."""

import os
import subprocess
import sys
import threading

import pytest

from drafts.errors import ActiveSessionExists, SessionAlreadyClosed
from drafts.journal import read_journal
from drafts.sessions import SessionManager

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Each racer imports, says "ready", then waits for "go" on stdin, so every
# process and thread is at the starting line before anyone starts.
RACER = r"""
import sys
sys.path.insert(0, {root!r})
from drafts.sessions import SessionManager
from drafts.errors import ActiveSessionExists
manager = SessionManager({logs!r})
print("ready", flush=True)
sys.stdin.readline()
try:
    print("won", manager.start("ana", "proc").session_id, flush=True)
except ActiveSessionExists:
    print("lost", flush=True)
"""


def _race_threads(n, barrier, results, action):
    def run():
        barrier.wait()
        try:
            results.append(("won", action()))
        except (ActiveSessionExists, SessionAlreadyClosed) as exc:
            results.append(("lost", type(exc).__name__))

    return [threading.Thread(target=run) for _ in range(n)]


def test_exactly_one_of_32_threads_and_4_processes_starts_a_session(tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-c", RACER.format(root=ROOT, logs=str(tmp_path))],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    results = []
    barrier = threading.Barrier(33)
    threads = _race_threads(32, barrier, results, lambda: SessionManager(tmp_path).start("ana", "thread").session_id)
    for t in threads:
        t.start()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    barrier.wait()
    for t in threads:
        t.join()
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        word, *rest = out.split()
        results.append((word, rest[0] if rest else "ActiveSessionExists"))
    winners = [r for r in results if r[0] == "won"]
    assert len(results) == 36 and len(winners) == 1, results
    assert sorted(set(r[1] for r in results if r[0] == "lost")) == ["ActiveSessionExists"]
    manager = SessionManager(tmp_path)
    assert manager.active_session("ana") == winners[0][1]
    assert [i.session_id for i in manager.sessions("ana")] == [winners[0][1]]  # no second journal either


def test_exactly_one_of_16_threads_ends_a_session(tmp_path):
    session_id = SessionManager(tmp_path).start("ana", "ana").session_id
    results = []
    barrier = threading.Barrier(16)
    threads = _race_threads(16, barrier, results, lambda: SessionManager(tmp_path).end("ana", session_id, "ana"))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r[0] for r in results) == ["lost"] * 15 + ["won"]
    assert {r[1] for r in results if r[0] == "lost"} == {"SessionAlreadyClosed"}
    records = read_journal(SessionManager(tmp_path).journal("ana", session_id)).records
    assert [r["event"] for r in records] == ["start", "end"]
