"""Recompute throughput, growth and memory against a bare Python loop, in the same run.

    python benchmarks/bench_recompute.py [--frames 10000 100000 1000000] [--growth 1000 10000 100000 1000000]
                                         [--repeat 3] [--profile N]

Every row is a ratio against a baseline measured in the same run, and every
section prints the machine's load average (the VM is shared: compare ratios).
The cyclic GC is on, at Python's default thresholds, in every measurement.

- throughput (each size in a fresh process): ``recompute_derived`` of one
  trivial lens (``{"n": n + 1}``) over a packDrafts carrier of draft frames,
  against the baseline, a bare loop that calls the same lens function per
  frame and builds the same payload and meta as plain dicts (no checks,
  freezing, hashing or indexes). Outputs/s of CPU time, best of
  ``--repeat``, the two alternated; each run's result is dropped first.
- growth: each size in a fresh process (so its peak RSS, ``VmHWM``, is its
  own): the recompute's wall and CPU time, peak RSS, RSS of the inputs
  alone, the GC's seconds and full collections during the recompute, the
  seconds to build 300k small lists right after it (its result alive), and
  the same for the bare loop (its own fresh process).
- retained bytes per output (tracemalloc), against the bare loop's plain
  ``(payload, meta)`` results;
- the caller's after-cost: building 300k small lists after a 100k-frame
  recompute (its state kept) against the same before it, in a fresh process;
  with the seconds the cyclic GC took in each (``gc.callbacks``).
- ``--profile N``: cProfile of one N-frame recompute, the GC's collections
  (count and seconds per generation) and the top allocation sites.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
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
AFTER_LISTS = 300_000


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} (1 / 5 min, {os.cpu_count()} cores)"


def setup(n: int):
    frames = [make_draft({"n": i}) for i in range(n)]
    carrier = pack_drafts(frames)
    store = Store.empty().add_draft(carrier).add_lens_instance("inc", "bench.inc", carrier.id)
    caps = Caps(max_frames_evaluated=n, max_total_drafts_per_batch=n, max_total_drafts_per_recompute=n)
    return frames, store, caps


def engine(store, caps):
    return recompute_derived(store, registry=REGISTRY, caps=caps)


def bare_loop(frames: list) -> list:
    """What the engine does, minus checking, freezing, hashing and indexing."""
    out = []
    prov = {"lensId": "bench.inc", "lensVersion": "1", "lensInstanceId": "inc"}
    for index, frame in enumerate(frames):
        for variant, payload in enumerate(inc.fn(frame, None)):
            meta = {"provenance": prov, "batch": {"kind": "mapFrames", "batchId": "b" * 32, "frameIndex": index,
                                                   "frameSourceDraftId": frame.id, "variantIndex": variant}}
            out.append((payload, meta))
    return out


def _timed(fn) -> tuple[float, float, object]:
    """``(cpu seconds, wall seconds, result)`` of one call, the GC on and collected before."""
    gc.collect()
    c, w = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - c, time.perf_counter() - w, result


def throughput(n: int, repeat: int) -> dict:
    """Best CPU time of the engine and of the bare loop, alternated run by run."""
    frames, store, caps = setup(n)
    state = engine(store, caps)
    assert len(state.outputs("inc")) == n and not state.warnings
    del state
    best = {"engine": (float("inf"), 0.0), "bare": (float("inf"), 0.0)}
    for _ in range(repeat):
        for name, fn in (("engine", lambda: engine(store, caps)), ("bare", lambda: bare_loop(frames))):
            cpu, wall, result = _timed(fn)
            del result
            if cpu < best[name][0]:
                best[name] = (cpu, wall)
    return {"frames": n, **{f"{k}_cpu": v[0] for k, v in best.items()}, **{f"{k}_wall": v[1] for k, v in best.items()}}


def retained(n: int) -> dict:
    """Bytes tracemalloc sees still allocated per output once the result is built (engine and bare loop)."""
    frames, store, caps = setup(n)
    out = {}
    for name, fn in (("engine", lambda: engine(store, caps)), ("bare", lambda: bare_loop(frames))):
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        result = fn()
        gc.collect()
        out[name] = (tracemalloc.get_traced_memory()[0] - before) / n
        tracemalloc.stop()
        del result
    return out


class GcClock:
    """Collections and seconds spent in them, per generation, while active (``gc.callbacks``)."""

    def __init__(self):
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._start = 0.0

    def __call__(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.count[info["generation"]] += 1
            self.seconds[info["generation"]] += time.perf_counter() - self._start

    def __enter__(self):
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self)


def small_lists() -> tuple[float, float]:
    """``(wall seconds, GC seconds)`` to build AFTER_LISTS small lists (kept until done)."""
    with GcClock() as clock:
        t = time.perf_counter()
        kept = [[i] for i in range(AFTER_LISTS)]
        elapsed = time.perf_counter() - t
    del kept
    return elapsed, sum(clock.seconds)


# -- children: one measurement in a fresh process ------------------------------------------------------------------
def _status_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc/self/status (Linux).

    Not ``ru_maxrss``: Linux carries that over from the parent across exec.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child_growth(n: int, what: str) -> dict:
    frames, store, caps = setup(n)
    gc.collect()
    inputs_rss = _status_mib("VmRSS")
    with GcClock() as clock:
        cpu, wall, result = _timed((lambda: engine(store, caps)) if what == "engine" else (lambda: bare_loop(frames)))
    peak = _status_mib("VmHWM")
    after, after_gc = small_lists()
    return {"n": n, "cpu": cpu, "wall": wall, "peak_mib": peak, "inputs_mib": inputs_rss, "gc_s": sum(clock.seconds),
            "full_gcs": clock.count[2], "after_lists_s": after, "after_gc_s": after_gc, "alive": len(result)
            if what == "bare" else len(result.outputs("inc"))}


def child_throughput(n: int, repeat: int) -> dict:
    return throughput(n, repeat)


def child_after(n: int) -> dict:
    frames, store, caps = setup(n)
    small_lists()  # warm up the allocator once
    before, before_gc = small_lists()
    state = engine(store, caps)
    after, after_gc = small_lists()
    assert len(state.outputs("inc")) == n
    return {"before": before, "before_gc": before_gc, "after": after, "after_gc": after_gc}


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def profile(n: int) -> None:
    import cProfile
    import pstats

    frames, store, caps = setup(n)
    engine(store, caps)
    gc.collect()
    with GcClock() as clock:
        cpu, wall, state = _timed(lambda: engine(store, caps))
    print(f"{n} frames: {wall:.2f} s wall, {cpu:.2f} s CPU ({n / cpu:,.0f} outputs/s of CPU); {load()}")
    for g in range(3):
        print(f"  GC generation {g}: {clock.count[g]} collections, {clock.seconds[g]:.3f} s")
    print(f"  GC-tracked objects alive after: {len(gc.get_objects()):,} ({len(frames):,} input frames)")
    del state
    gc.collect()
    prof = cProfile.Profile()
    prof.runcall(engine, store, caps)
    pstats.Stats(prof).sort_stats("tottime").print_stats(16)
    gc.collect()
    tracemalloc.start()
    state = engine(store, caps)
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    print("retained allocations by line (state alive):")
    for stat in snapshot.statistics("lineno")[:10]:
        print(f"  {stat.size / n:7.1f} B/output  {stat.count / n:5.2f} blocks/output  {stat.traceback}")
    del state


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--growth", type=int, nargs="*", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, help="profile one recompute of this many frames and stop")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n, *rest = args.child
        if kind == "growth":
            print(json.dumps(child_growth(int(n), rest[0])))
        elif kind == "throughput":
            print(json.dumps(child_throughput(int(n), int(rest[0]))))
        else:
            print(json.dumps(child_after(int(n))))
        return
    if args.profile:
        profile(args.profile)
        return

    print(f"throughput, each size in a fresh process, best CPU time of {args.repeat}, GC on at default "
          f"thresholds; {load()}")
    print(f"{'frames':>9} {'draftlens/s':>12} {'bare loop/s':>12} {'time ratio':>11} {'wall ratio':>11}")
    for n in args.frames:
        r = _child("throughput", str(n), str(args.repeat))
        print(f"{n:>9,} {n / r['engine_cpu']:>12,.0f} {n / r['bare_cpu']:>12,.0f} "
              f"{r['engine_cpu'] / r['bare_cpu']:>10.2f}x {r['engine_wall'] / r['bare_wall']:>10.2f}x")

    if args.growth:
        print(f"\ngrowth, each size in a fresh process; {load()}")
        print(f"{'frames':>9} {'wall s':>7} {'CPU s':>7} {'bare CPU s':>10} {'time ratio':>10} {'peak MiB':>9} "
              f"{'bare peak':>9} {'inputs MiB':>10} {'GC s':>6} {'full GCs':>8} {'lists after s':>13} {'bare':>6}")
        for n in args.growth:
            e, b = _child("growth", str(n), "engine"), _child("growth", str(n), "bare")
            print(f"{n:>9,} {e['wall']:>7.2f} {e['cpu']:>7.2f} {b['cpu']:>10.2f} {e['cpu'] / b['cpu']:>9.2f}x "
                  f"{e['peak_mib']:>9,.0f} {b['peak_mib']:>9,.0f} {e['inputs_mib']:>10,.0f} {e['gc_s']:>6.2f} "
                  f"{e['full_gcs']:>8} {e['after_lists_s']:>13.3f} {b['after_lists_s']:>6.3f}")

    print(f"\nretained per output (tracemalloc), 100,000 frames; {load()}")
    r = retained(100_000)
    print(f"  draftlens {r['engine']:,.0f} B, bare loop {r['bare']:,.0f} B: ratio {r['engine'] / r['bare']:.2f}")

    print(f"\nthe caller's after-cost: {AFTER_LISTS:,} small lists after a 100,000-frame recompute; {load()}")
    a = _child("after", "100000")
    print(f"  before {a['before']:.3f} s (GC {a['before_gc']:.3f} s), after {a['after']:.3f} s "
          f"(GC {a['after_gc']:.3f} s): ratio {a['after'] / a['before']:.2f}")


if __name__ == "__main__":
    main()
