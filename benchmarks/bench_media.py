"""Media lens overhead vs the same argv in a bare subprocess loop; fingerprint vs the read limit.

    python benchmarks/bench_media.py [--clips 8] [--thumbnail-clips 16] [--sizes 640x360,1280x720] [--duration 2]
                                     [--rounds 3] [--hash-mib 512] [--only thumbnail,proxy,fingerprint]

Every row is a ratio against a baseline measured in the same run, the median
of ``--rounds`` rounds, printed with the machine's load average (1 min)
before and after the row (the machine may be shared):

- **thumbnail lens vs bare loop** (wall time), per source size: ``--clips``
  short lavfi clips (h264 + AAC in MOV) are made once with the pinned
  FFmpeg. The lens path is what the engine does per frame: ``describe`` (the
  plan) then the lens call (source identity and ownership checks, one FFmpeg
  run into an exclusive temporary file, verification, fingerprint, ledger
  row, fsync, atomic rename). The baseline runs the very same argv (taken
  from ``describe``) with ``subprocess.run`` and nothing else. Each clip runs
  bare and through the lens back to back, alternating which goes first round
  by round, so drift cancels. Aim <= 1.05 (the CPU-time ratio is printed
  too: on a shared machine it is the steadier figure).
- **proxy lens vs bare loop** (CPU time: this process and its children, user +
  system, ``resource.getrusage``), per source size, ``prores_proxy`` in MOV
  at half size. Aim <= 1.01 (wall time printed too).
- **source fingerprint vs ``cat file > /dev/null``** (wall time, warm page
  cache, ``--hash-mib`` MiB): throughput of ``drafts.media.fingerprint_file``
  (its status cache cleared before each read) over that of ``cat``. Aim >= 0.8.

Then, for the record, where a lens job's overhead goes (ms per clip) and the
raw hash throughputs (BLAKE2b, xxh3-128, BLAKE3 on one thread and on all).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drafts import media as media_module  # noqa: E402
from drafts.media import fingerprint_file, media_draft, source_change  # noqa: E402
from lenses.lens import FrameContext  # noqa: E402
from lenses.media import FFmpegEngine, ProxySpec, ThumbnailSpec, proxy, thumbnail  # noqa: E402
from lenses.media.argv import header_argv  # noqa: E402
from lenses.media.ledger import OutputRecord, owner_problem, record_output  # noqa: E402
from lenses.media.mediainfo import parse_input_dump  # noqa: E402
from lenses.media.run import _ENV as FFMPEG_ENV  # noqa: E402
from lenses.media.written import read_written  # noqa: E402

ROWS: list[tuple[str, float, float, float, str, tuple[float, float]]] = []


def load() -> float:
    return os.getloadavg()[0]


def make_clips(directory: str, n: int, size: str, duration: float) -> list[str]:
    binary = FFmpegEngine.pinned().path
    paths = []
    for i in range(n):
        path = os.path.join(directory, f"clip_{size}_{i:03d}.mov")
        subprocess.run(
            [binary, "-hide_banner", "-nostdin", "-v", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={duration}",
             "-f", "lavfi", "-i", f"sine=frequency={220 + 10 * i}:sample_rate=48000:duration={duration}",
             "-vf", f"hue=h={i * 11}", "-ac", "2", "-c:v", "libx264", "-threads", "1", "-c:a", "aac", path],
            check=True,
        )
        paths.append(path)
    return paths


def _cpu() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _clocks() -> tuple[float, float]:
    """``(wall, CPU)`` seconds: CPU is this process and its waited-for children, user + system."""
    return time.perf_counter(), _cpu()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clocks()
    return wall - start[0], cpu - start[1]


def lens_job(lens, draft, spec, index: int) -> tuple[float, float]:
    start = _clocks()
    context = FrameContext("bench", "bench-batch", index)
    lens.describe(draft, spec, context)
    result = lens(draft, spec, context)
    if not result.ok:
        raise SystemExit(f"lens job failed: {result.message}")
    return _since(start)


def bare_job(argv, output: str) -> tuple[float, float]:
    """The same argv, writing the same bytes to a plain file (``-fd 1 fd:`` is its stdout), in the same
    fixed environment the lens gives FFmpeg."""
    start = _clocks()
    with open(output, "wb") as fh:
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.PIPE, env=FFMPEG_ENV,
                       close_fds=True, check=True)
    return _since(start)


def one_round(lens, drafts, argvs, spec, lens_first: bool) -> tuple[list[float], list[float]]:
    """Clip by clip, the bare run and the lens job back to back (alternating which goes first):
    ``([bare wall, bare CPU], [lens wall, lens CPU])``."""
    bare, ours = [0.0, 0.0], [0.0, 0.0]
    bare_output = os.path.join(spec.output_directory, "bare-baseline." + spec.extension)
    for index, (draft, argv) in enumerate(zip(drafts, argvs, strict=True)):
        for side in ("lens", "bare") if lens_first else ("bare", "lens"):
            wall, cpu = lens_job(lens, draft, spec, index) if side == "lens" else bare_job(argv, bare_output)
            total = ours if side == "lens" else bare
            total[0] += wall
            total[1] += cpu
    return bare, ours


def bench_lens(name: str, lens, spec, clips: list[str], rounds: int, aims: dict[str, str]) -> list[str]:
    """Rows for ``name`` on each clock of ``aims`` (``"wall"``, ``"CPU"``): medians of the rounds."""
    drafts = [media_draft(p) for p in clips]
    described = [lens.describe(d, spec, FrameContext("bench", "bench-batch", i)) for i, d in enumerate(drafts)]
    argvs = [d["argv"] for d in described]
    one_round(lens, drafts[:2], argvs[:2], spec, False)  # warm up: page cache, binary, imports
    before = load()
    results = [one_round(lens, drafts, argvs, spec, lens_first=bool(r % 2)) for r in range(rounds)]
    after = load()
    n = len(clips)
    for clock, aim in aims.items():
        k = 0 if clock == "wall" else 1
        ratios = [ours[k] / bare[k] for bare, ours in results]
        bare_ms = statistics.median(bare[k] for bare, _ in results) / n * 1000
        lens_ms = statistics.median(ours[k] for _, ours in results) / n * 1000
        ROWS.append((f"{name} ({clock})", bare_ms, lens_ms, statistics.median(ratios), aim, (before, after)))
        print(f"  {name} ({clock}): bare {bare_ms:.1f} ms/clip, lens {lens_ms:.1f} ms/clip, "
              f"ratio per round {', '.join(f'{r:.3f}' for r in ratios)}")
    return [d["outputs"][0] for d in described]


def breakdown(finals: list[str], drafts, spec, engine_path: str) -> dict[str, float]:
    """Per-clip ms of each step the lens adds to the bare run."""
    n = len(finals)

    def each(fn) -> float:
        start = time.perf_counter()
        for i, final in enumerate(finals):
            fn(i, final)
        return (time.perf_counter() - start) / n * 1000

    def probe_one(_i, final):
        out = subprocess.run(header_argv(engine_path, final), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        parse_input_dump(out.stderr.decode())

    def fsync_one(_i, final):
        fd = os.open(final, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)

    def ledger_one(_i, final):
        st = os.stat(final)
        directory, name = os.path.split(final)
        record_output(directory, OutputRecord(name + ".bench", st.st_size, "blake3:0", st.st_dev, st.st_ino,
                                              st.st_mtime_ns, "bench", final))

    def fingerprint_one(_i, final):
        media_module._known.clear()  # read it, as publication does for a new file
        fingerprint_file(final)

    return {
        "describe (plan + argv)": each(lambda i, _f: proxy.describe(drafts[i], spec, FrameContext("b", "b", i))),
        "source identity (file status)": each(lambda i, _f: source_change(**{
            k: drafts[i].payload[k] for k in ("path", "size", "fingerprint")})),
        "ownership of the final path": each(lambda _i, f: owner_problem(f)),
        "ledger row (SQLite insert)": each(ledger_one),
        "verification read (in-process)": each(lambda _i, f: read_written("proxy", spec, f, "")),
        "  (before: FFmpeg header probe)": each(probe_one),
        "fingerprint of the output": each(fingerprint_one),
        "fsync of the output": each(fsync_one),
    }


def bench_media_rows(args) -> None:
    work = tempfile.mkdtemp(prefix="bench_media_")
    try:
        for size in args.sizes.split(","):
            clips = make_clips(work, max(args.clips, args.thumbnail_clips), size, args.duration)
            if "thumbnail" in args.only:
                out = tempfile.mkdtemp(dir=work)
                spec = ThumbnailSpec("{source_name}_{index}", out, time_offset=args.duration / 2, size="320")
                bench_lens(f"thumbnail lens vs bare loop, {size}", thumbnail, spec, clips[:args.thumbnail_clips],
                           args.rounds, {"wall": "<= 1.05", "CPU": "—"})
            if "proxy" in args.only:
                out = tempfile.mkdtemp(dir=work)
                spec = ProxySpec("prores_proxy", "mov", "half", "{source_name}_{index}", out)
                finals = bench_lens(f"proxy lens vs bare loop, {size}", proxy, spec, clips[:args.clips], args.rounds,
                                    {"CPU": "<= 1.01", "wall": "—"})
                if args.breakdown:
                    drafts = [media_draft(p) for p in clips[:args.clips]]
                    print(f"    where a proxy job's overhead goes, {size} (ms/clip, wall):")
                    for step, ms in breakdown(finals, drafts, spec, FFmpegEngine.pinned().path).items():
                        print(f"      {step:34s} {ms:6.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_fingerprint(mib: int, rounds: int) -> None:
    import blake3
    import xxhash

    with tempfile.NamedTemporaryFile(prefix="bench_hash_", delete=False) as f:
        chunk = os.urandom(1 << 20)
        for _ in range(mib):
            f.write(chunk)
        path = f.name
    size = mib << 20
    try:
        def cat() -> None:
            subprocess.run(f"cat '{path}' > /dev/null", shell=True, check=True)

        def ours() -> None:
            media_module._known.clear()  # the status cache would answer without reading
            fingerprint_file(path)

        cat()
        ours()
        before = load()
        ratios, cats, fps = [], [], []
        for _ in range(rounds):
            c, o = _timed(cat), _timed(ours)
            cats.append(size / c / 1e9)
            fps.append(size / o / 1e9)
            ratios.append(c / o)
        ROWS.append((f"source fingerprint vs cat > /dev/null, {mib} MiB (GB/s)", statistics.median(cats),
                     statistics.median(fps), statistics.median(ratios), ">= 0.8", (before, load())))
        print(f"  fingerprint: cat {statistics.median(cats):.2f} GB/s, fingerprint_file "
              f"{statistics.median(fps):.2f} GB/s, ratio per round {', '.join(f'{r:.2f}' for r in ratios)}")

        def stream(hasher, chunk_size=1 << 20) -> str:
            buf = bytearray(chunk_size)
            view = memoryview(buf)
            with open(path, "rb", buffering=0) as fh:
                while n := fh.readinto(buf):
                    hasher.update(view[:n])
            return hasher.hexdigest()

        candidates = {
            "blake2b-256 (hashlib), 1 MiB reads": lambda: stream(hashlib.blake2b(digest_size=32)),
            "xxh3-128 (xxhash), 1 MiB reads": lambda: stream(xxhash.xxh3_128()),
            "blake3, 1 thread, 1 MiB reads": lambda: stream(blake3.blake3()),
            "blake3, all cores, 4 MiB reads": lambda: stream(blake3.blake3(max_threads=blake3.blake3.AUTO), 4 << 20),
        }
        print(f"  raw hash throughput, {mib} MiB warm-cache file (median of {rounds}):")
        for name, fn in candidates.items():
            fn()
            print(f"    {name:36s} {size / statistics.median(_timed(fn) for _ in range(rounds)) / 1e9:6.2f} GB/s")
    finally:
        os.unlink(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--thumbnail-clips", type=int, default=16)
    parser.add_argument("--sizes", default="640x360,1280x720")
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hash-mib", type=int, default=512)
    parser.add_argument("--only", default="thumbnail,proxy,fingerprint")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false")
    args = parser.parse_args()
    print(f"engine: {FFmpegEngine.pinned().identity}; {os.cpu_count()} CPUs; load {os.getloadavg()}")
    bench_media_rows(args)
    if "fingerprint" in args.only:
        bench_fingerprint(args.hash_mib, max(args.rounds, 3))
    print(f"\n{'row':58s} {'baseline':>9s} {'draftlens':>9s} {'ratio':>7s} {'aim':>7s}  load (1 min) before/after")
    for name, base, ours, ratio, aim, (before, after) in ROWS:
        print(f"{name:58s} {base:9.2f} {ours:9.2f} {ratio:7.3f} {aim:>7s}  {before:.2f} / {after:.2f}")
    print("(thumbnail/proxy columns: ms per clip, wall or CPU; fingerprint columns: GB/s)")


if __name__ == "__main__":
    main()
