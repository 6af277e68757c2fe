"""Executors: process speed-up on 2 cores, and Dask per-job overhead vs dask.bag.

    python benchmarks/bench_executors.py [--frames 400] [--dask-frames 2000]

(b) a CPU-bound lens (~1 ms a frame) over a carrier: ProcessExecutor(2) vs
    SerialExecutor, in the same run. Aim: >= 1.7x on 2 cores.
(c) a trivial lens through our DaskExecutor vs plain ``dask.bag.map`` of the
    same function over the same frames on the same LocalCluster: per-frame
    overhead of each and their ratio. Both include the scheduler round trips.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.lenses import REGISTRY, inc, work_call_ms  # noqa: E402
from derived import Caps, ProcessExecutor, SerialExecutor, recompute_derived  # noqa: E402
from drafts import Store, make_draft, pack_drafts  # noqa: E402


def store_of(n: int, lens_id: str, params=None) -> tuple[Store, Caps]:
    carrier = pack_drafts([make_draft({"n": i}) for i in range(n)])
    caps = Caps(max_frames_evaluated=n, max_total_drafts_per_batch=n, max_total_drafts_per_recompute=n)
    return Store.empty().add_draft(carrier).add_lens_instance("x", lens_id, carrier.id, params), caps


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def process_speedup(n: int) -> None:
    store, caps = store_of(n, "bench.work", {"loops": 12_000})
    serial_s, serial = timed(lambda: recompute_derived(store, registry=REGISTRY, caps=caps, executor=SerialExecutor()))
    with ProcessExecutor(2) as pool:
        recompute_derived(*store_of(8, "bench.work")[:1], registry=REGISTRY, executor=pool)  # start the workers
        proc_s, parallel = timed(lambda: recompute_derived(store, registry=REGISTRY, caps=caps, executor=pool))
    assert parallel == serial
    print(f"(b) CPU-bound lens, {n} frames: serial {serial_s:.2f} s, ProcessExecutor(2) {proc_s:.2f} s, "
          f"speed-up {serial_s / proc_s:.2f}x")


def _inc_plain(n: int) -> dict:
    return next(iter(inc.fn(make_draft({"n": n}), None)))


def dask_overhead(n: int) -> None:
    try:
        import dask.bag as db
        from distributed import Client, LocalCluster
    except ImportError:
        print("(c) skipped: pip install 'draftlens[dask]'")
        return
    from derived import DaskExecutor

    store, caps = store_of(n, "bench.inc")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        executor = DaskExecutor(client)
        recompute_derived(store_of(10, "bench.inc")[0], registry=REGISTRY, executor=executor)  # warm up
        ours_s, state = timed(lambda: recompute_derived(store, registry=REGISTRY, caps=caps, executor=executor))
        assert len(state.outputs("x")) == n
        bag = db.from_sequence(range(n), npartitions=max(1, n // 256))
        bag.map(_inc_plain).compute()  # warm up
        bag_s, out = timed(lambda: bag.map(_inc_plain).compute())
        assert len(out) == n
        serial_s, _ = timed(lambda: recompute_derived(store, registry=REGISTRY, caps=caps))
    print(f"(c) trivial lens, {n} frames on a 2-worker LocalCluster: DaskExecutor {ours_s * 1e6 / n:.0f} us/frame, "
          f"dask.bag.map {bag_s * 1e6 / n:.0f} us/frame (same 256-frame partitions), ratio {ours_s / bag_s:.2f}x; "
          f"serial in-process {serial_s * 1e6 / n:.0f} us/frame")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--dask-frames", type=int, default=5000)
    args = parser.parse_args()
    print(f"one bench.work call: {work_call_ms():.2f} ms")
    process_speedup(args.frames)
    dask_overhead(args.dask_frames)


if __name__ == "__main__":
    main()
