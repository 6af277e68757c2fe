"""Plan order: ``BatchPlanSession.topological_order`` at 100k and 200k jobs against a bare dict loop.

    python benchmarks/bench_plan.py [--sizes 100000 200000]

The baseline, measured in the same run, builds a dict keyed by the same job
ids and looks each one up once: the least any order over them can cost. The
order is Kahn's algorithm with a FIFO queue (ties in plan order); it must grow
linearly (aim: ≤ 1.5 µs per job). Building the session's jobs is timed
separately (it is paid once per plan, with or without an order).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from derived import Caps, plan_session  # noqa: E402
from drafts import Store, pack_drafts  # noqa: E402


def measure(n: int) -> tuple[float, float, float]:
    carrier = pack_drafts([{"text": str(i)} for i in range(n)])
    store = Store.empty().add_draft(carrier).add_lens_instance("up", "text.upper", carrier.id)
    caps = Caps(max_frames_evaluated=n, max_total_drafts_per_batch=n, max_total_drafts_per_recompute=n)
    session = plan_session(store, caps=caps)
    start = time.perf_counter()
    ids = session.job_ids
    built = time.perf_counter() - start
    start = time.perf_counter()
    order = session.topological_order
    ordered = time.perf_counter() - start
    assert len(order) == n
    start = time.perf_counter()
    table = {job_id: 0 for job_id in ids}
    for job_id in ids:
        table[job_id] += 1
    bare = time.perf_counter() - start
    return built, ordered, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 200_000])
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for n in args.sizes:
        built, ordered, bare = measure(n)
        print(f"{n:>8} jobs: topological_order {ordered / n * 1e6:5.2f} µs/job "
              f"(bare dict loop {bare / n * 1e6:5.2f} µs/job, ratio {ordered / bare:4.1f}); "
              f"jobs built {built / n * 1e6:5.2f} µs/job")


if __name__ == "__main__":
    main()
