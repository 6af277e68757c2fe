"""Replay and ``Workspace.open`` of one long session: 1k / 10k / 100k events.

    python benchmarks/bench_journal.py [--sizes 1000 10000 100000]

Each journal is one work session as a Workspace writes it: a seed draft and a
``text.format`` instance, then per 100 events 9 new drafts, 88 param changes,
two undos and a redo. (The records are written in one go here, not fsync'd
one by one: how they were written does not change how they replay.)

Every measurement runs in a fresh process, so its peak memory (``VmHWM``)
is its own. In the same run, on the same files:

- **floor**: read the file and decode every line with orjson, nothing else —
  what any replay has to do at least;
- **replay**: ``drafts.journal.replay_history`` (every record checked,
  every draft's id verified, the store history rebuilt);
- **open**: ``Workspace.open`` (resume-or-start under the user lock, the
  writer lease, replay, then one ``recompute_derived``);
- **every store kept** (up to 10k only): replay with a store kept for every
  version, as before issue 17, to show what the sparse history buys.

Aims (issue 17): 100k events in <= 10 s and <= 300 MiB, linear growth.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from drafts import make_draft  # noqa: E402
from drafts.history import History  # noqa: E402
from drafts.journal import store_event  # noqa: E402
from drafts.sessions import SessionManager  # noqa: E402

USER, PERFORMER = "bench", "bench@desk"

MEASURE = r"""
import gc, json, sys, time
sys.path.insert(0, {root!r})
what, journal_root, user, session_id, path = sys.argv[1:6]
t = time.perf_counter()
if what == "floor":
    import orjson
    with open(path, "rb") as fh:
        kept = [orjson.loads(line) for line in fh]
    count = len(kept)
elif what == "replay":
    from drafts.journal import replay_history
    kept = replay_history(path)
    count = len(kept.versions)
elif what == "open":
    from derived import Workspace
    kept = Workspace.open(journal_root, user, "bench@other")
    count = kept.version
elif what == "every-store":
    import drafts.history as h
    h.CHECKPOINT_EVERY = 1
    h.History.__init__.__defaults__ = (None, 1, 1)
    from drafts.journal import replay_history
    kept = replay_history(path)
    count = len(kept.versions)
seconds = time.perf_counter() - t
t = time.perf_counter()
gc.collect()
collect = time.perf_counter() - t
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking parent.
with open("/proc/self/status") as fh:
    peak_kib = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
print(json.dumps({{"seconds": seconds, "count": count, "maxrss_mib": peak_kib / 1024, "full_gc_s": collect}}))
"""


def write_session(root: Path, events: int) -> tuple[str, Path]:
    """A journaled session of ``events`` store events; returns (session id, journal path)."""
    manager = SessionManager(root)
    session_id = manager.start(USER, PERFORMER).session_id
    path = manager.journal(USER, session_id)
    history = History()
    lines = []

    def record(op, fields):
        lines.append(orjson.dumps(store_event(op, fields, user_id=USER, session_id=session_id,
                                              performer_id=PERFORMER), option=orjson.OPT_SORT_KEYS))

    seed = make_draft({"text": "seed"})
    record("add_draft", {"draft": seed})
    history.push("seed", history.current.store.add_draft(seed))
    record("add_lens_instance", {"instance_id": "fmt", "lens_id": "text.format", "input": seed.id,
                                 "params": {"template": "{text}"}})
    history.push("fmt", history.current.store.add_lens_instance("fmt", "text.format", seed.id,
                                                                {"template": "{text}"}))
    i = 0
    while len(lines) < events:
        i += 1
        step = i % 100
        if step in (97, 98):
            target = history.undo_target().number
            history.move_to(target)
            record("undo", {"to_version": target})
        elif step == 99:
            target = history.redo_target().number
            history.move_to(target)
            record("redo", {"to_version": target})
        elif step % 10 == 0:
            draft = make_draft({"text": f"draft {i}", "n": i})
            record("add_draft", {"draft": draft})
            history.push("add", history.current.store.add_draft(draft))
        else:
            params = {"template": f"{{text}} #{i}"}
            record("set_params", {"instance_id": "fmt", "params": params})
            history.push("set", history.current.store.set_params("fmt", params))
    with open(path, "ab") as fh:
        fh.write(b"\n".join(lines) + b"\n")
    return session_id, path


def measure(what: str, root: Path, session_id: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE.format(root=str(ROOT)), what, str(root), USER, session_id,
                          str(path)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--every-store-up-to", type=int, default=10_000)
    args = parser.parse_args()
    print(f"{'events':>8} {'MiB':>6} {'floor s':>8} {'replay s':>9} {'x floor':>8} {'µs/event':>9} "
          f"{'replay MiB':>10} {'open s':>7} {'open MiB':>9} {'full GC s':>9} {'every-store s':>13} "
          f"{'its GC s':>8}")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            session_id, path = write_session(root, size)
            floor = measure("floor", root, session_id, path)
            replay = measure("replay", root, session_id, path)
            opened = measure("open", root, session_id, path)
            every = (measure("every-store", root, session_id, path) if size <= args.every_store_up_to
                     else None)
            mib = path.stat().st_size / 2**20
        print(f"{size:>8} {mib:>6.1f} {floor['seconds']:>8.2f} {replay['seconds']:>9.2f} "
              f"{replay['seconds'] / floor['seconds']:>7.1f}x {replay['seconds'] / size * 1e6:>9.0f} "
              f"{replay['maxrss_mib']:>10.0f} {opened['seconds']:>7.2f} {opened['maxrss_mib']:>9.0f} "
              f"{replay['full_gc_s']:>9.2f} "
              f"{(format(every['seconds'], '.2f') if every else '-'):>13} "
              f"{(format(every['full_gc_s'], '.2f') if every else '-'):>8}")


if __name__ == "__main__":
    main()
