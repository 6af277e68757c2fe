"""SIGKILL a journal writer at random moments, 200 times.

After every kill the journal holds exactly the acknowledged events (a writer
acknowledges a record on stdout only after ``append`` returned), possibly plus
one more that was fully written but not yet acknowledged; a torn record is
never accepted, and the next writer continues cleanly after it.
"""

import os
import random
import signal
import subprocess
import sys
import time
import warnings

import pytest

from drafts.journal import read_journal, replay
from drafts.sessions import SessionManager

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILLS = 200
KILLS_PER_JOURNAL = 25

# Imports only drafts.journal (and what it needs) so it starts fast. Every
# fifth record is large (up to ~400 KB) so that some kills land mid-write.
WRITER = r"""
import sys
sys.path.insert(0, {root!r})
from drafts.journal import Recorder, store_event
from drafts.draft import make_draft
logs, user, session, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
recorder = Recorder(logs)
while True:
    size = (n * 7919) % 400_000 if n % 5 == 0 else (n * 31) % 2000
    draft = make_draft({{"n": n, "pad": "x" * size}})
    event = store_event("add_draft", {{"draft": draft}}, user_id=user, session_id=session, performer_id="writer")
    recorder.append(user, session, event)
    sys.stdout.write(f"{{n}}\n")
    sys.stdout.flush()
    n += 1
"""


def _numbers(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        readout = read_journal(path)
    assert len(caught) == int(readout.torn_tail)  # a torn tail is reported, every time
    return [r["draft"]["payload"]["n"] for r in readout.records if r["kind"] == "store"], readout.torn_tail


def _kill_once(rng, logs, session_id, start):
    """Start a writer, let it acknowledge a few records, SIGKILL it; return what it acknowledged."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(root=ROOT), str(logs), "u", session_id, str(start)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    acked = []
    wanted = rng.randint(0, 4)
    if wanted == 0:
        time.sleep(rng.uniform(0.0, 0.15))  # anywhere from start-up to the first appends
    while len(acked) < wanted:
        line = proc.stdout.readline()
        assert line, "the writer died on its own"
        acked.append(int(line))
    time.sleep(rng.uniform(0.0, 0.003))
    proc.send_signal(signal.SIGKILL)
    # Read through the same buffered reader as readline (communicate() would
    # read the raw pipe and lose acknowledgements readline already buffered).
    rest = proc.stdout.read()
    proc.stdout.close()
    assert proc.wait(timeout=30) == -signal.SIGKILL
    return acked + [int(x) for x in rest.split()]


def test_a_killed_writer_leaves_exactly_the_acknowledged_records(tmp_path):
    rng = random.Random(20261123)
    manager = SessionManager(tmp_path)
    torn_seen = 0
    total = 0
    for _ in range(KILLS // KILLS_PER_JOURNAL):
        session_id = manager.start("u", "test").session_id
        path = manager.journal("u", session_id)
        on_disk: list[int] = []
        for _ in range(KILLS_PER_JOURNAL):
            start = on_disk[-1] + 1 if on_disk else 0
            acked = _kill_once(rng, tmp_path, session_id, start)
            assert acked == list(range(start, start + len(acked)))
            numbers, torn = _numbers(path)
            torn_seen += torn
            expected = on_disk + acked
            # Every acknowledged record is there, in order; at most one more
            # (written, not yet acknowledged); nothing torn was accepted.
            detail = f"start {start}, acknowledged {acked}, on disk after {numbers[len(on_disk):]}"
            assert numbers[: len(expected)] == expected, detail
            assert numbers in (expected, expected + [start + len(acked)]), detail
            on_disk = numbers
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the end event's append removes a torn tail, if any
            manager.end("u", session_id, "test")
        drafts = replay(path).drafts  # every draft's id checked against its content
        assert [d.payload["n"] for d in drafts.values()] == on_disk
        total += len(on_disk)
    assert total > KILLS  # the writers did get to write
    print(f"{KILLS} kills, {total} records kept, {torn_seen} torn tails seen and ignored")
