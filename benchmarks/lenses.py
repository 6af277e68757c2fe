"""Lenses used by the benchmarks (module level, so worker processes import them)."""

from __future__ import annotations

import attrs

from lenses import Registry, lens


@lens("bench.inc", version="1")
def inc(draft, params):
    yield {"n": draft.payload["n"] + 1}


@attrs.frozen
class WorkParams:
    loops: int = 12_000


def spin(loops: int, seed: int) -> int:
    """Deterministic CPU work (no clock): about 1 ms per 12k loops on the 2-core CI machine."""
    total = seed
    for i in range(loops):
        total = (total * 31 + i) % 1_000_003
    return total


def work_call_ms() -> float:
    """What one ``bench.work`` call costs on this machine right now, in ms."""
    import time

    t = time.perf_counter()
    spin(WorkParams().loops, 1)
    return (time.perf_counter() - t) * 1000


@lens("bench.work", version="1", params=WorkParams)
def work(draft, params):
    yield {"n": draft.payload["n"], "h": spin(params.loops, draft.payload["n"])}


@attrs.frozen
class TagParams:
    tag: int = 0


@lens("bench.tag", version="1", params=TagParams)
def tag(draft, params):
    """Trivial, with a param: each new ``tag`` is an edit that re-runs every frame."""
    yield {"n": draft.payload["n"], "tag": params.tag}


REGISTRY = Registry((inc, work, tag))
