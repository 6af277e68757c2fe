"""Recompute throughput and memory against a bare Python loop, in the same run.

    python benchmarks/bench_recompute.py [--frames 10000 100000] [--profile]

For each carrier size it measures:
- draftlens: ``recompute_derived`` of one trivial lens over a packDrafts carrier;
- baseline: a bare loop that calls the same lens function per frame and builds
  the same payload and meta dicts (plain, unfrozen, unhashed);
- ``make_draft`` alone on the same payloads and meta;
- retained memory per output draft (tracemalloc, after the state is built).
Noisy machines: compare the ratios, not the times.
"""

from __future__ import annotations

import argparse
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


REGISTRY = Registry((inc,))


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print(f"{'frames':>8} {'draftlens/s':>12} {'bare loop/s':>12} {'make_draft/s':>13} {'time ratio':>11} {'B/output':>9}")
    for n in args.frames:
        r = run(n, args.repeat, args.profile)
        print(
            f"{r['frames']:>8} {r['engine_outputs_per_s']:>12,.0f} {r['bare_outputs_per_s']:>12,.0f} "
            f"{r['make_draft_per_s']:>13,.0f} {r['ratio_engine_to_bare']:>10.1f}x {r['bytes_per_output']:>9,.0f}"
        )


if __name__ == "__main__":
    main()
