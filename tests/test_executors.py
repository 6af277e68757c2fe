import random
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings

from derived import Caps, Memo, ProcessExecutor, SerialExecutor, recompute_derived
from drafts import OutputOf, Store, make_draft, pack_drafts
from tests import lenses_for_tests as tl
from tests.strategies import stores

REG = tl.registry()


class _ShuffledStream:
    def __init__(self, fn, rng):
        self.fn, self.rng, self.queue = fn, rng, []

    def submit(self, task, tag):
        self.queue.append((task, tag))

    @property
    def pending(self):
        return len(self.queue)

    def wait(self):
        task, tag = self.queue.pop(self.rng.randrange(len(self.queue)))
        return [(tag, self.fn(task))]


class ShuffledExecutor(SerialExecutor):
    """Finishes ready chunks in a random order, across every instance of the graph (results go back by tag)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    @contextmanager
    def stream(self, fn):
        yield _ShuffledStream(fn, self.rng)


class MapOnlyExecutor:
    """An executor as a user may write one: only ``map`` (draftlens then hands it one task at a time)."""

    parallelism = 1
    in_process = True

    def __init__(self):
        self.calls = 0

    def map(self, fn, tasks, on_done):
        self.calls += 1
        out = []
        for index, task in enumerate(tasks):
            out.append(fn(task))
            on_done(index)
        return out


@pytest.fixture(scope="module")
def processes():
    with ProcessExecutor(1) as one, ProcessExecutor(2) as two:
        yield one, two


def _wide_store(n=700):
    carrier = pack_drafts([make_draft({"text": f"t{i}", "n": i % 5}) for i in range(n)])
    return (
        Store.empty().add_draft(carrier)
        .add_lens_instance("a", "test.flaky", carrier.id)
        .add_lens_instance("b", "test.repeat", OutputOf("a"), {"times": 2})
    )


CAPS = Caps(max_frames_evaluated=1000, max_total_drafts_per_batch=1500, max_total_drafts_per_recompute=3000)


def test_results_are_equal_across_executors_and_completion_orders(processes):
    store = _wide_store()
    serial = recompute_derived(store, registry=REG, caps=CAPS)
    for executor in (*processes, ShuffledExecutor(1), ShuffledExecutor(2)):
        assert recompute_derived(store, registry=REG, caps=CAPS, executor=executor) == serial


def test_an_executor_with_only_map_is_an_executor():
    store = _wide_store(300)
    executor = MapOnlyExecutor()
    assert recompute_derived(store, registry=REG, caps=CAPS, executor=executor) == recompute_derived(
        store, registry=REG, caps=CAPS)
    assert executor.calls >= 2  # both instances went through it


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stores())
def test_random_stores_give_equal_state_on_every_executor(processes, store):
    serial = recompute_derived(store, registry=REG)
    for executor in (*processes, ShuffledExecutor(3)):
        assert recompute_derived(store, registry=REG, executor=executor) == serial
        assert recompute_derived(store, registry=REG, executor=executor, memo=Memo()) == serial


def test_progress_reports_every_job_once(processes):
    store = _wide_store(600)
    seen = []
    recompute_derived(store, registry=REG, caps=CAPS, executor=processes[1], progress=lambda d, t: seen.append((d, t)))
    assert seen == sorted(seen) and seen[-1][0] == seen[-1][1] == 600 + 480  # b expands into a's 480 outputs
    memo = Memo()
    recompute_derived(store, registry=REG, caps=CAPS, memo=memo)
    seen.clear()
    recompute_derived(store, registry=REG, caps=CAPS, memo=memo, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (1080, 1080)


def test_a_failing_frame_never_changes_another_frames_result(processes):
    good = [make_draft({"text": f"g{i}", "n": 0}) for i in range(5)]
    with_bad = pack_drafts([*good[:2], make_draft({"text": "bad", "n": 3}), *good[2:]])
    without = pack_drafts(good)
    for executor in (SerialExecutor(), processes[1]):
        ids = []
        for carrier in (with_bad, without):
            store = Store.empty().add_draft(carrier).add_lens_instance("f", "test.flaky", carrier.id)
            state = recompute_derived(store, registry=REG, executor=executor)
            ids.append([d.payload for d in state.outputs("f")])
        assert ids[0] == ids[1]


def test_a_dead_worker_fails_its_chunk_without_retry(tmp_path):
    carrier = pack_drafts([{"n": i, "marker_dir": str(tmp_path)} for i in range(3)])
    store = Store.empty().add_draft(carrier).add_lens_instance("k", "test.kill_worker", carrier.id)
    with ProcessExecutor(1) as executor:
        state = recompute_derived(store, registry=REG, executor=executor)
        assert state.warnings and {w.code for w in state.warnings} == {"lensError"}
        assert all("worker failed (not retried)" in w.message for w in state.warnings)
        assert state.outputs("k") == ()
        # Each frame started at most once: nothing ran again after the crash.
        assert len(list(tmp_path.iterdir())) <= 2
        # The executor recovers for the next recompute.
        words = pack_drafts([{"text": "x"}])
        ok = Store.empty().add_draft(words).add_lens_instance("u", "text.upper", words.id)
        assert [d.payload["text"] for d in recompute_derived(ok, registry=REG, executor=executor).outputs("u")] == ["X"]


def test_process_executor_checks_its_arguments():
    with pytest.raises(ValueError, match="max_workers"):
        ProcessExecutor(0)


SLOW_LENS = '''
import time
from lenses import lens

@lens("kill.slow", version="1")
def slow(draft, params):
    time.sleep(0.3)
    yield {"n": draft.payload["n"]}
'''


def _alive_with(marker: str) -> list[int]:
    import os

    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    cmdline = fh.read()
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    state = fh.read().rsplit(b")", 1)[1].split()[0]
            except OSError:
                continue
            if marker.encode() in cmdline and state != b"Z":
                found.append(int(entry))
    return found


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_workers_stop_when_the_run_is_killed_outright(tmp_path):
    # A SIGKILLed `draftlens run --executor processes:2` cannot stop its workers itself; each gets SIGTERM from the
    # kernel (PR_SET_PDEATHSIG): idle, it exits at once; busy, it unwinds its job within the 10 s grace.
    import os
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "slowlens_kill.py").write_text(SLOW_LENS)
    values = ", ".join(f"{{n = {i}}}" for i in range(16))
    (tmp_path / "pipeline.toml").write_text(
        f'[pipeline]\noutput = "out"\nexecutor = "processes:2"\nlens_modules = ["slowlens_kill"]\n'
        f'[[sources]]\nid = "nums"\ndrafts = [{values}]\n[[lenses]]\nid = "s"\nlens = "kill.slow"\ninput = "nums"\n')
    marker = str(tmp_path / "pipeline.toml")
    for delay in (0.8, 1.6):
        run = subprocess.Popen([sys.executable, "-m", "derived", "run", "--no-cache", marker], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        run.kill()
        run.wait()
        deadline = time.monotonic() + 20
        while _alive_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _alive_with(marker)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"workers still running 20 s after their parent was killed (delay {delay} s): {left}"
