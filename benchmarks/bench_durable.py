"""Work that survives the process: the durable evaluation store (issue 13).

    python benchmarks/bench_durable.py [--clips 200] [--gib 5.5] [--frames 100000] [--edits 1000]

Four figures, each a ratio against a baseline measured here, in this run:

1. media: ``draftlens run`` (a new process each time) of an unchanged pipeline
   of N tiny clips (proxy + poster per clip), second and third run vs the first;
2. plan: ``draftlens plan`` (a new process) of unchanged sources totalling
   >= 5 GB, re-plan vs first plan. The sources are *sparse* files: reading a
   hole costs no disk I/O (the kernel hands out zero pages), so the first plan
   here measures BLAKE3 and syscalls, not a disk; on a real disk the first
   plan is slower and the ratio smaller still;
3. no-op recompute of 100k frames with a durable memo vs a cold recompute (no
   memo): in the same process (the memo warm) and in a "new process" (a new
   ``Memo.open`` of the same file: nothing in memory);
4. a workspace's memory (RSS after ``gc.collect()``, above the RSS before the
   workspace was made, each configuration in a fresh process) and memo entries
   after 1,000 edits of a 1,000-frame instance vs after 10.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.lenses import REGISTRY  # noqa: E402
from derived import Caps, Memo, Workspace, recompute_derived  # noqa: E402
from drafts import Store, make_draft, pack_drafts  # noqa: E402
from drafts.media import RACY_WINDOW_NS  # noqa: E402

SETTLE_S = RACY_WINDOW_NS / 1e9 + 0.5  # files younger than this are read, not recognised (git's "racily clean")


def _cli(*args: str, cwd: Path) -> float:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "derived", *args], capture_output=True, text=True, cwd=cwd)
    elapsed = time.perf_counter() - t
    if out.returncode not in (0, 3):
        raise SystemExit(f"draftlens {' '.join(args)} failed ({out.returncode}): {out.stderr[-2000:]}")
    return elapsed


MEDIA = """
    [pipeline]
    output = "out"
    [[sources]]
    id = "clips"
    glob = "clips/*.mp4"
    [[lenses]]
    id = "proxy"
    lens = "media.proxy"
    input = "clips"
    [lenses.params]
    codec = "h264"
    container = "mp4"
    resolution = "half"
    naming_template = "{source_name}_proxy"
    output_directory = "out/proxies"
    [[lenses]]
    id = "poster"
    lens = "media.thumbnail"
    input = "clips"
    [lenses.params]
    time_offset = 0.1
    size = "32"
    image_format = "jpg"
    naming_template = "{source_name}"
    output_directory = "out/posters"
"""


def media_runs(clips: int, folder: Path) -> None:
    from derived.command.demo import make_clip

    (folder / "clips").mkdir()
    for i in range(clips):  # tiny clips, a different test pattern frame offset each (seven kinds)
        make_clip(folder / "clips" / f"clip{i:03}.mp4", first_frame=i % 7)
    (folder / "pipeline.toml").write_text(textwrap.dedent(MEDIA))
    time.sleep(SETTLE_S)
    first = _cli("run", "pipeline.toml", "-q", cwd=folder)
    second = _cli("run", "pipeline.toml", "-q", cwd=folder)
    third = _cli("run", "pipeline.toml", "-q", cwd=folder)
    bare = _cli("--version", cwd=folder)  # what starting the command costs at all
    print(f"1. media, {clips} tiny clips x (proxy + poster) = {2 * clips} FFmpeg jobs, `draftlens run` in a new process")
    print(f"   first run {first:.2f} s; second {second:.2f} s (ratio {second / first:.2%}); "
          f"third {third:.2f} s (ratio {third / first:.2%}); `draftlens --version` alone {bare:.2f} s")


def plan_runs(gib: float, folder: Path) -> None:
    (folder / "clips").mkdir()
    files = max(1, round(gib))
    size = int(gib * (1 << 30) / files)
    for i in range(files):
        with open(folder / "clips" / f"big{i}.mov", "wb") as f:
            f.truncate(size)  # sparse: see the module docstring
    (folder / "pipeline.toml").write_text(textwrap.dedent("""
        [pipeline]
        output = "out"
        [[sources]]
        id = "clips"
        glob = "clips/*.mov"
        [[lenses]]
        id = "probe"
        lens = "media.probe"
        input = "clips"
    """))
    time.sleep(SETTLE_S)
    first = _cli("plan", "pipeline.toml", cwd=folder)
    second = _cli("plan", "pipeline.toml", cwd=folder)
    nocache = _cli("plan", "pipeline.toml", "--no-cache", cwd=folder)
    total = files * size / 1e9
    print(f"2. plan of {files} sparse sources, {total:.2f} GB in total, `draftlens plan` in a new process")
    print(f"   first plan {first:.2f} s ({total / first:.1f} GB/s); re-plan {second:.2f} s "
          f"(ratio {second / first:.2%}); re-plan with --no-cache {nocache:.2f} s")


def noop_recompute(frames: int, folder: Path) -> None:
    caps = Caps(max_frames_evaluated=frames, max_total_drafts_per_batch=frames, max_total_drafts_per_recompute=frames)
    carrier = pack_drafts([make_draft({"n": i}) for i in range(frames)])
    store = Store.empty().add_draft(carrier).add_lens_instance("x", "bench.inc", carrier.id)
    t = time.perf_counter()
    cold_state = recompute_derived(store, registry=REGISTRY, caps=caps)
    cold = time.perf_counter() - t
    del cold_state
    gc.collect()
    path = folder / "cache.sqlite"
    with Memo.open(path) as memo:
        t = time.perf_counter()
        recompute_derived(store, registry=REGISTRY, caps=caps, memo=memo)
        filling = time.perf_counter() - t
        t = time.perf_counter()
        warm_state = recompute_derived(store, registry=REGISTRY, caps=caps, memo=memo)
        warm = time.perf_counter() - t
    del warm_state
    gc.collect()
    with Memo.open(path) as memo:  # a new process' view: nothing in memory, everything on disk
        t = time.perf_counter()
        reopened_state = recompute_derived(store, registry=REGISTRY, caps=caps, memo=memo)
        reopened = time.perf_counter() - t
    assert reopened_state == recompute_derived(store, registry=REGISTRY, caps=caps)
    print(f"3. no-op recompute of {frames} frames (trivial lens); cold = no memo {cold:.2f} s")
    print(f"   durable memo, same process (warm): {warm:.3f} s (ratio {warm / cold:.2%}); "
          f"reopened (new process, memory empty): {reopened:.2f} s (ratio {reopened / cold:.2%}); "
          f"first run filling the store: {filling:.2f} s (ratio {filling / cold:.2f}); "
          f"store {os.path.getsize(path) / 1e6:.0f} MB")


def _rss_mb() -> float:
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _edits(memo: Memo, edits: int, marks: tuple[int, ...]) -> list[tuple[int, float, int]]:
    rows = []
    base = _rss_mb()
    ws = Workspace(registry=REGISTRY, caps=Caps(max_total_drafts_per_batch=1000), memo=memo)
    frames = ws.pack([{"n": i} for i in range(1000)])
    ws.apply("x", "bench.tag", frames, {"tag": 0})
    for edit in range(1, edits + 1):
        ws.set_params("x", {"tag": edit})
        if edit in marks:
            rows.append((edit, _rss_mb() - base, len(ws._memo)))
    ws.close()
    return rows


def _edits_in_child(kind: str, edits: int, marks: tuple[int, ...]) -> list[tuple[int, float, int]]:
    """``_edits`` in a fresh process: RSS never shrinks, so each measurement gets its own."""
    out = subprocess.run([sys.executable, __file__, "--ws-child", kind, "--edits", str(edits),
                          "--marks", ",".join(map(str, marks))], capture_output=True, text=True, check=True)
    return [(int(e), float(r), int(n)) for e, r, n in (line.split() for line in out.stdout.split("\n") if line)]


def workspace_memory(edits: int) -> None:
    baseline_edits = min(edits, 100)
    rows = _edits_in_child("bounded", edits, (10, 100, edits))
    unbounded = _edits_in_child("unbounded", baseline_edits, (10, baseline_edits))
    print(f"4. workspace, one 1,000-frame instance, {edits} edits (each a new param: every frame re-runs)")
    print("   baseline, unbounded memo (before this issue): "
          + "; ".join(f"after {e} edits +{r:.1f} MB RSS, {n} entries" for e, r, n in unbounded)
          + f" (+{(unbounded[-1][1] - unbounded[0][1]) / (baseline_edits - 10) * 1000:.0f} kB per edit)")
    for edit, rss, entries in rows:
        print(f"   default Memo(), after {edit:>5} edits: +{rss:6.1f} MB RSS, {entries} memo entries")
    ten, last = rows[0], rows[-1]
    print(f"   {edits} edits vs 10: RSS growth ratio {last[1] / max(ten[1], 0.1):.2f}, "
          f"entries ratio {last[2] / ten[2]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--gib", type=float, default=5.5)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--only", choices=["media", "plan", "noop", "workspace"])
    parser.add_argument("--ws-child", choices=["bounded", "unbounded"], help=argparse.SUPPRESS)
    parser.add_argument("--marks", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ws_child:
        memo = Memo() if args.ws_child == "bounded" else Memo(max_calls=None)
        for row in _edits(memo, args.edits, tuple(int(m) for m in args.marks.split(","))):
            print(*row)
        return
    scratch = Path(tempfile.mkdtemp(prefix="draftlens-bench-durable-"))
    try:
        steps = {"media": lambda: media_runs(args.clips, scratch / "media"),
                 "plan": lambda: plan_runs(args.gib, scratch / "plan"),
                 "noop": lambda: noop_recompute(args.frames, scratch / "noop"),
                 "workspace": lambda: workspace_memory(args.edits)}
        for name, step in steps.items():
            if args.only in (None, name):
                (scratch / name).mkdir()
                step()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
