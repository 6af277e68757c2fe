"""Executors: process speed-up against a plain multiprocessing.Pool, Dask overhead, whole-graph overlap.

    python benchmarks/bench_executors.py [--frames 2000] [--dask-frames 5000] [--clips 8] [--only b,c,d]

Every row is a ratio against a baseline measured in the same run, printed
with the load average (the machine is shared: a ratio is only comparable
with the load it was measured under).

(b) a CPU-bound lens (~1 ms a frame) over a carrier: ProcessExecutor(2) vs
    SerialExecutor, and vs a plain ``multiprocessing.Pool(2)`` mapping the
    same lens function over the same frames in the same 256-frame chunks
    (the control: what two processes give on this machine right now).
    Aim: >= 0.95 of the control's speed-up.
(c) a trivial lens through our DaskExecutor vs plain ``dask.bag.map`` of the
    same function over the same frames on the same LocalCluster: per-frame
    overhead of each and their ratio. Both include the scheduler round trips.
(d) whole-graph scheduling: probe, proxy, poster and audio (the demo's four
    media instances) over ``--clips`` clips on ProcessExecutor(2), all four
    in one recompute vs the sum of each run alone on the same executor. Run
    one after another, the two would take about the same time; overlapped,
    an instance's last slow job no longer leaves a worker idle.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.lenses import REGISTRY, WorkParams, inc, work, work_call_ms  # noqa: E402
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


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def _work_chunk(ns: list[int]) -> list[dict]:
    return [next(iter(work.fn(make_draft({"n": n}), WorkParams()))) for n in ns]


def process_speedup(n: int) -> None:
    store, caps = store_of(n, "bench.work", {"loops": WorkParams().loops})
    chunks = [list(range(i, min(i + 256, n))) for i in range(0, n, 256)]
    with ProcessExecutor(2) as pool, multiprocessing.get_context("fork").Pool(2) as plain:
        recompute_derived(*store_of(8, "bench.work")[:1], registry=REGISTRY, executor=pool)  # start the workers
        plain.map(_work_chunk, [[0], [1]])
        rows = []
        for _ in range(3):  # interleaved rounds: drift in the machine's load hits all three alike
            serial_s, serial = timed(lambda: recompute_derived(store, registry=REGISTRY, caps=caps,
                                                               executor=SerialExecutor()))
            proc_s, parallel = timed(lambda: recompute_derived(store, registry=REGISTRY, caps=caps, executor=pool))
            pool_s, plain_out = timed(lambda: plain.map(_work_chunk, chunks, chunksize=1))
            assert parallel == serial and len(plain_out) == len(chunks)
            rows.append((serial_s, proc_s, pool_s))
    serial_s, proc_s, pool_s = (min(column) for column in zip(*rows, strict=True))
    ours, control = serial_s / proc_s, serial_s / pool_s
    print(f"(b) CPU-bound lens, {n} frames ({load()}), best of 3: serial {serial_s:.2f} s, "
          f"ProcessExecutor(2) {proc_s:.2f} s = {ours:.2f}x, multiprocessing.Pool(2) {pool_s:.2f} s = {control:.2f}x; "
          f"ProcessExecutor / Pool speed-up {ours / control:.2f} (aim >= 0.95)")


def whole_graph(clips: int) -> None:
    import tomllib

    from benchmarks.bench_media import make_clips
    from derived.command.demo import DEMO_PIPELINE
    from drafts.media import media_draft

    instances = [(t["id"], t["lens"], t.get("params", {})) for t in tomllib.loads(DEMO_PIPELINE)["lenses"]]
    with tempfile.TemporaryDirectory() as tmp, ProcessExecutor(2) as pool:
        paths = make_clips(tmp, clips, "640x360", 2.0)
        carrier = pack_drafts([media_draft(p) for p in paths])

        def store(only: list, out: str) -> Store:
            s = Store.empty().add_draft(carrier)
            for instance_id, lens_id, params in only:
                params = dict(params)
                if "output_directory" in params:
                    params["output_directory"] = os.path.join(tmp, out, instance_id)
                    os.makedirs(params["output_directory"], exist_ok=True)
                s = s.add_lens_instance(instance_id, lens_id, carrier.id, params)
            return s

        recompute_derived(store(instances[:1], "warm"), executor=pool)  # start the workers
        rounds = []
        for r in range(3):
            alone = []
            for one in instances:
                alone_store = store([one], f"alone{r}")
                seconds, state = timed(lambda s=alone_store: recompute_derived(s, executor=pool))
                assert not state.warnings, state.warnings
                alone.append(seconds)
            together_store = store(instances, f"together{r}")
            together_s, state = timed(lambda s=together_store: recompute_derived(s, executor=pool))
            assert not state.warnings, state.warnings
            rounds.append((sum(alone), together_s, alone))
        summed, together, alone = min(rounds, key=lambda row: row[1] / row[0])
    print(f"(d) 4 media instances over {clips} clips on ProcessExecutor(2) ({load()}), best of 3: "
          f"alone {' + '.join(f'{a:.2f}' for a in alone)} = {summed:.2f} s, together {together:.2f} s, "
          f"ratio {together / summed:.2f} (1.00 = no overlap)")


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
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--dask-frames", type=int, default=5000)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--only", default="b,c,d", help="which parts to run, e.g. b,d")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    print(f"one bench.work call: {work_call_ms():.2f} ms")
    if "b" in parts:
        process_speedup(args.frames)
    if "c" in parts:
        dask_overhead(args.dask_frames)
    if "d" in parts:
        whole_graph(args.clips)


if __name__ == "__main__":
    main()
