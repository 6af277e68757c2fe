"""Change one frame of a 10k-frame carrier: incremental vs full recompute.

    python benchmarks/bench_incremental.py [--frames 10000]

Both runs happen here, on the same stores: "full" is ``recompute_derived``
with no memo, "incremental" reuses the memo of the recompute before the edit.
Aims: >= 20x for a trivial lens, >= 200x for a lens costing ~1 ms a frame.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.lenses import REGISTRY, work_call_ms  # noqa: E402
from derived import Caps, Memo, recompute_derived  # noqa: E402
from drafts import Store, make_draft, pack_drafts  # noqa: E402


def stores(n: int, lens_id: str, params: dict):
    frames = [make_draft({"n": i}) for i in range(n)]
    before = pack_drafts(frames)
    frames[n // 2] = make_draft({"n": -1})
    after = pack_drafts(frames)
    make = lambda c: Store.empty().add_draft(c).add_lens_instance("x", lens_id, c.id, params)  # noqa: E731
    return make(before), make(after)


def measure(n: int, lens_id: str, params: dict, repeat: int) -> tuple[float, float]:
    caps = Caps(max_frames_evaluated=n, max_total_drafts_per_batch=n, max_total_drafts_per_recompute=n)
    before, after = stores(n, lens_id, params)
    t = time.perf_counter()
    full_state = recompute_derived(after, registry=REGISTRY, caps=caps)
    full = time.perf_counter() - t
    best = float("inf")
    for _ in range(repeat):
        memo = Memo()
        recompute_derived(before, registry=REGISTRY, caps=caps, memo=memo)
        t = time.perf_counter()
        state = recompute_derived(after, registry=REGISTRY, caps=caps, memo=memo)
        best = min(best, time.perf_counter() - t)
    assert state == full_state
    return full, best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.frames} frames, one frame changed (1 ms lens measured at {work_call_ms():.2f} ms/call)")
    print(f"{'lens':<14} {'full s':>8} {'incremental s':>14} {'speed-up':>9}")
    for name, lens_id, params in [("trivial", "bench.inc", None), ("~1 ms/frame", "bench.work", {"loops": 12_000})]:
        full, incremental = measure(args.frames, lens_id, params, args.repeat)
        print(f"{name:<14} {full:>8.3f} {incremental:>14.4f} {full / incremental:>8.0f}x")


if __name__ == "__main__":
    main()
