"""Issue 16: a real `draftlens serve --workers 2` on 127.0.0.1; concurrent starts for one user: exactly one wins.

Bounded: 3 rounds of 12 requests, every wait has a timeout, and the server
is stopped (SIGTERM, then SIGKILL of its own process group) whatever happens.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

pytestmark = pytest.mark.slow

ROUNDS, RACERS = 3, 12


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(port, method, path, body=None, timeout=30):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=payload, headers={"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def _wait_until_serving(proc, port, deadline):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"draftlens serve exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            if _request(port, "GET", "/session_manager/users/probe/sessions", timeout=2)[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("draftlens serve did not answer within 60 s")


def test_two_server_workers_on_one_root_let_exactly_one_start_win(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "derived", "serve", "--root", str(tmp_path), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        _wait_until_serving(proc, port, time.monotonic() + 60)
        for round_ in range(ROUNDS):
            user = f"racer{round_}"
            barrier = threading.Barrier(RACERS)
            answers = []

            def start(i, user=user, barrier=barrier, answers=answers):
                barrier.wait(timeout=30)
                answers.append(_request(port, "POST", "/session_manager/sessions.start",
                                        {"user_id": user, "performer_id": f"client{i}"}))

            threads = [threading.Thread(target=start, args=(i,)) for i in range(RACERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            statuses = sorted(status for status, _ in answers)
            assert statuses == [200] + [409] * (RACERS - 1), answers
            winner = next(body for status, body in answers if status == 200)
            assert {body["error"] for status, body in answers if status == 409} == {"ActiveSessionExists"}
            status, listed = _request(port, "GET", f"/session_manager/users/{user}/sessions")
            assert status == 200 and [s["session_id"] for s in listed] == [winner["session_id"]]
    finally:
        proc.send_signal(signal.SIGTERM)  # uvicorn's supervisor stops its workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started, and nothing else
            proc.wait(timeout=30)
        proc.stderr.close()
