"""Recompute throughput and memory against a bare Python loop, in the same run.

    python benchmarks/bench_recompute.py [--frames 10000 100000] [--profile] [--gc]

For each carrier size it measures:
- draftlens: ``recompute_derived`` of one trivial lens over a packDrafts carrier;
- baseline: a bare loop that calls the same lens function per frame and builds
  the same payload and meta dicts (plain, unfrozen, unhashed);
- ``make_draft`` alone on the same payloads and meta;
- retained memory per output draft (tracemalloc, after the state is built).

With ``--gc`` it also compares how the cyclic GC runs during a recompute:
shipped (GC on, full collections deferred until the end), GC on with the
default thresholds, and GC off (what draftlens did before issue 14); and the
peak memory of a lens that leaves a 200 kB reference cycle per call over
5,000 frames, shipped vs GC off.
Noisy machines: compare the ratios, not the times.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from derived import Caps, recompute_derived  # noqa: E402
from drafts import Store, make_draft, pack_drafts  # noqa: E402
from lenses import Registry, lens  # noqa: E402


@lens("bench.inc", version="1")
def inc(draft, params):
    yield {"n": draft.payload["n"] + 1}


class _Blob:
    def __init__(self, size: int):
        self.me = self
        self.data = bytearray(size)


@lens("bench.cycle", version="1")
def cycle(draft, params):
    _Blob(200_000)  # left behind as a reference cycle: only the cyclic GC frees it
    yield {"n": draft.payload["n"]}


REGISTRY = Registry((inc, cycle))


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bare_loop(frames: list) -> list:
    """What the engine does, minus freezing, hashing and indexing."""
    out = []
    prov = {"lensId": "bench.inc", "lensVersion": "1", "lensInstanceId": "inc"}
    for index, frame in enumerate(frames):
        for variant, payload in enumerate(inc.fn(frame, None)):
            meta = {"provenance": prov, "batch": {"kind": "mapFrames", "batchId": "b" * 32, "frameIndex": index,
                                                   "frameSourceDraftId": frame.id, "variantIndex": variant}}
            out.append((payload, meta))
    return out


def run(n: int, repeat: int, profile: bool) -> dict:
    frames = [make_draft({"n": i}) for i in range(n)]
    carrier = pack_drafts(frames)
    store = Store.empty().add_draft(carrier).add_lens_instance("inc", "bench.inc", carrier.id)
    caps = Caps(max_frames_evaluated=n, max_total_drafts_per_batch=n, max_total_drafts_per_recompute=n)

    def engine():
        return recompute_derived(store, registry=REGISTRY, caps=caps)

    state = engine()
    assert len(state.outputs("inc")) == n and not state.warnings

    t_engine = _best(engine, repeat)
    t_bare = _best(lambda: bare_loop(frames), repeat)
    plain = bare_loop(frames)
    t_make = _best(lambda: [make_draft(p, m) for p, m in plain], repeat)

    del state
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    state = engine()
    retained = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del state

    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(engine)
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)

    return {
        "frames": n,
        "engine_outputs_per_s": n / t_engine,
        "bare_outputs_per_s": n / t_bare,
        "make_draft_per_s": n / t_make,
        "ratio_engine_to_bare": t_engine / t_bare,
        "bytes_per_output": retained / n,
    }


@contextlib.contextmanager
def _gc_mode(mode: str):
    import derived.recompute as rc

    shipped = rc.full_collections_deferred
    if mode == "default thresholds":
        rc.full_collections_deferred = contextlib.nullcontext
    elif mode == "off":
        gc.disable()
    try:
        yield
    finally:
        rc.full_collections_deferred = shipped
        gc.enable()


GC_MODES = ("shipped", "default thresholds", "off")


def run_gc(n: int, repeat: int) -> dict:
    """Best CPU time per GC mode, the modes interleaved round by round (fair on a busy machine)."""
    frames = [make_draft({"n": i}) for i in range(n)]
    carrier = pack_drafts(frames)
    store = Store.empty().add_draft(carrier).add_lens_instance("inc", "bench.inc", carrier.id)
    caps = Caps(max_frames_evaluated=n, max_total_drafts_per_batch=n, max_total_drafts_per_recompute=n)
    best = {mode: float("inf") for mode in GC_MODES}
    for _ in range(repeat):
        for mode in GC_MODES:
            gc.collect()
            with _gc_mode(mode):
                t = time.process_time()
                state = recompute_derived(store, registry=REGISTRY, caps=caps)
                best[mode] = min(best[mode], time.process_time() - t)
            del state
    return {"frames": n, **{mode: (n / t, t / best["off"]) for mode, t in best.items()}}


def cycle_peak(n: int, mode: str) -> float:
    """Peak traced MB of a recompute whose lens leaves a 200 kB cycle per call."""
    carrier = pack_drafts([{"n": i} for i in range(n)])
    store = Store.empty().add_draft(carrier).add_lens_instance("c", "bench.cycle", carrier.id)
    caps = Caps(max_frames_evaluated=n, max_total_drafts_per_batch=n, max_total_drafts_per_recompute=n)
    gc.collect()
    tracemalloc.start()
    with _gc_mode(mode):
        state = recompute_derived(store, registry=REGISTRY, caps=caps)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(state.outputs("c")) == n
    del state
    gc.collect()
    return peak / 1e6


def main_gc(frames: list[int], repeat: int) -> None:
    print("GC during a recompute: outputs/s of CPU time (time ratio to GC off)")
    print(f"{'frames':>8} " + " ".join(f"{m:>26}" for m in GC_MODES))
    for n in frames:
        r = run_gc(n, repeat)
        print(f"{n:>8} " + " ".join(f"{r[m][0]:>16,.0f} ({r[m][1]:>5.1f}x)" for m in GC_MODES))
    print("lens leaving a 200 kB cycle per call, 5,000 frames: peak traced memory")
    for mode in ("shipped", "off"):
        print(f"  {mode:>8}: {cycle_peak(5000, mode):,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--gc", action="store_true", help="compare GC modes and a cycle-leaving lens's peak memory")
    args = parser.parse_args()
    if args.gc:
        main_gc(args.frames, args.repeat)
        return
    print(f"{'frames':>8} {'draftlens/s':>12} {'bare loop/s':>12} {'make_draft/s':>13} {'time ratio':>11} {'B/output':>9}")
    for n in args.frames:
        r = run(n, args.repeat, args.profile)
        print(
            f"{r['frames']:>8} {r['engine_outputs_per_s']:>12,.0f} {r['bare_outputs_per_s']:>12,.0f} "
            f"{r['make_draft_per_s']:>13,.0f} {r['ratio_engine_to_bare']:>10.1f}x {r['bytes_per_output']:>9,.0f}"
        )


if __name__ == "__main__":
    main()
