"""Module-level lenses for tests (module level, so they pickle by reference)."""

from __future__ import annotations

import attrs

from lenses import Output, default_registry, lens


@attrs.frozen
class RepeatParams:
    times: int = attrs.field(default=2, validator=attrs.validators.instance_of(int))


@lens("test.repeat", version="1", params=RepeatParams)
def repeat(draft, params):
    """``times`` variants of each frame, each tagged with its copy number."""
    for copy in range(params.times):
        yield Output({**dict(draft.payload), "copy": copy}, {"note": "repeat"})


@lens("test.flaky", version="1")
def flaky(draft, params):
    """Raises on frames whose payload n is 3: a deterministic 'failure'."""
    if draft.payload.get("n") == 3:
        raise RuntimeError("n == 3 is not allowed")
    yield {"text": str(draft.payload.get("text", "")), "n": draft.payload.get("n", 0)}


@lens("test.forever", version="1")
def forever(draft, params):
    n = 0
    while True:
        yield {"n": n}
        n += 1


@lens("test.bad_output", version="1")
def bad_output(draft, params):
    yield {"ok": 1}
    yield {"bad": float("nan")}


@lens("test.returns_dict", version="1")
def returns_dict(draft, params):
    return {"oops": "not a list"}


@lens("test.reserved_meta", version="1")
def reserved_meta(draft, params):
    yield Output({"x": 1}, {"batch": "mine"})


@lens("test.count", version="1", batch_behavior="disable")
def count(draft, params):
    values = draft.payload.get("values") if draft is not None else None
    yield {"count": len(values) if values is not None else None}


@lens("test.enable", version="1", batch_behavior="enable")
def enable(draft, params):
    yield {"seen": draft.id}


TEST_LENSES = (repeat, flaky, forever, bad_output, returns_dict, reserved_meta, count, enable)


def registry():
    reg = default_registry.copy()
    for one in TEST_LENSES:
        reg.register(one)
    return reg


CALLS = {"n": 0}


@lens("test.counted", version="1")
def counted(draft, params):
    """Counts its calls in this process (to see what a memo spared)."""
    CALLS["n"] += 1
    yield {"text": str(draft.payload.get("text", "")) + "!", "n": draft.payload.get("n", 0)}


@lens("test.kill_worker", version="1")
def kill_worker(draft, params):
    """Kills the process it runs in, once per marker directory (simulates a lost worker)."""
    import os
    import pathlib

    marker = pathlib.Path(draft.payload["marker_dir"]) / f"ran-{os.getpid()}-{draft.payload['n']}"
    marker.write_text("x")
    if draft.payload["n"] == 1:
        os._exit(13)
    yield {"n": draft.payload["n"]}


@lens("test.burn", version="1")
def burn(draft, params):
    """CPU-bound: a deterministic loop whose cost is set by the frame."""
    total = 0
    for i in range(int(draft.payload.get("work", 20000))):
        total = (total * 31 + i) % 1_000_003
    yield {"n": draft.payload.get("n", 0), "h": total}


TEST_LENSES = TEST_LENSES + (counted, kill_worker, burn)


# -- odd lenses (issue 14): each misbehaves for some frames, the same way on every executor -------------


def _key(draft) -> int:
    """A small number from the frame's content (its id), the same in every process."""
    return int(draft.id[:4], 16) if draft is not None else 0


class _Shouty(Exception):
    def __str__(self):
        raise RuntimeError("no message for you")


@lens("odd.raise", version="1")
def odd_raise(draft, params):
    """Raises for a third of the frames, one of them an exception whose __str__ raises."""
    k = _key(draft) % 6
    if k == 0:
        raise ValueError(f"bad frame {draft.id[:6]}")
    if k == 1:
        raise _Shouty()
    yield {"k": k}


@lens("odd.unpicklable", version="1")
def odd_unpicklable(draft, params):
    """A third of the frames yield a payload holding a lock (not JSON-like, not picklable)."""
    import threading

    k = _key(draft) % 3
    yield {"k": k}
    if k == 0:
        yield {"lock": threading.Lock()}


@lens("odd.set", version="1")
def odd_set(draft, params):
    """Returns a set for half the frames (its order would follow the hash seed)."""
    k = _key(draft)
    if k % 2:
        return {f"a{k}", f"b{k}", f"c{k}"}
    return [{"k": k}]


@lens("odd.context", version="1")
def odd_context(draft, params, context):
    """Reads where it runs."""
    yield {"instance": context.lens_instance_id, "batch": context.batch_id, "frame": context.frame_index}


@lens("odd.exit", version="1")
def odd_exit(draft, params):
    """Calls sys.exit for a quarter of the frames."""
    import sys

    k = _key(draft) % 4
    if k == 0:
        sys.exit(3)
    yield {"k": k}


ODD_LENSES = (odd_raise, odd_unpicklable, odd_set, odd_context, odd_exit)
ODD_LENS_PARAMS = {one.id: {} for one in ODD_LENSES}


def odd_registry():
    reg = registry()
    for one in ODD_LENSES:
        reg.register(one)
    return reg


@lens("test.die_once", version="1")
def die_once(draft, params):
    """Kills its worker the first time it runs for a marker directory, then works (a Dask re-run)."""
    import os
    import pathlib

    marker = pathlib.Path(draft.payload["marker_dir"]) / f"ran-{draft.payload['n']}"
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(13)
    yield {"n": draft.payload["n"]}


TEST_LENSES = TEST_LENSES + (die_once,)


# -- scheduling (issue 18): frames that only finish if another instance's frame runs meanwhile -----------


@attrs.frozen
class RendezvousParams:
    """``mark``: file made (in ``directory``) by the frame whose payload ``n`` is ``mark_n``;
    ``wait``: file the frame whose ``n`` is ``wait_n`` waits for, at most ``timeout_s`` seconds."""

    directory: str
    mark: str = ""
    mark_n: int = -1
    wait: str = ""
    wait_n: int = -1
    timeout_s: float = 30.0


@lens("test.rendezvous", version="1", params=RendezvousParams)
def rendezvous(draft, params):
    """``met`` is False only if this frame waited for a mark that never came (the two never overlapped)."""
    import pathlib
    import time

    n = draft.payload.get("n", 0)
    folder = pathlib.Path(params.directory)
    if n == params.mark_n:
        (folder / params.mark).write_text("x")
    met = True
    if n == params.wait_n:
        deadline = time.monotonic() + params.timeout_s
        while not (folder / params.wait).exists():
            if time.monotonic() > deadline:
                met = False
                break
            time.sleep(0.01)
    yield {"n": n, "met": met}


TEST_LENSES = TEST_LENSES + (rendezvous,)


@attrs.frozen
class FakeMediaParams:
    directory: str


def _fake_describe(draft, params):
    return {"engine": "fake", "argv": ["fake", str(draft.payload["n"])],
            "outputs": [f"{params.directory}/{draft.payload['n']}.out"]}


@lens("test.fakemedia", version="1", job_type="Video", params=FakeMediaParams, describe=_fake_describe)
def fakemedia(draft, params):
    """A job-running lens that only leaves a note that it ran (``ran-<n>``), in any process."""
    import pathlib

    from lenses.result import ExecutionResult

    n = draft.payload["n"]
    (pathlib.Path(params.directory) / f"ran-{n}").write_text("x")
    return ExecutionResult(job_id=None, status="COMPLETED",
                           outputs=[{"path": f"{params.directory}/{n}.out", "size": 1, "fingerprint": "x", "n": n}])


TEST_LENSES = TEST_LENSES + (fakemedia,)
