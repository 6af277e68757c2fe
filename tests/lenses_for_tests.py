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
