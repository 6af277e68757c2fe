"""Media lens overhead vs the same argv in a bare subprocess loop; fingerprint throughput.

    python benchmarks/bench_media.py [--clips 32] [--size 640x360] [--duration 2]
                                     [--codec prores_proxy] [--container mov] [--resolution half]
                                     [--rounds 3] [--hash-mib 512]

(a) ``--clips`` short lavfi clips are made once with the pinned FFmpeg. For
    each clip, the lens path is what the engine does per frame: ``describe``
    (the plan) then the lens call (source identity and ownership checks, one
    FFmpeg run into an exclusive temporary file, verification probe,
    fingerprint, ledger row, fsync, atomic rename). The baseline runs the very same argv
    (taken from ``describe``) with ``subprocess.run`` and nothing else. Both
    write the same files; each clip runs bare and through the lens back to
    back (alternating which goes first, round by round, so drift cancels), and
    each side's best round is compared: the ratio (aim <= 1.05) and the
    overhead per clip in ms, with a breakdown of where it goes.
(b) Streamed fingerprint throughput of BLAKE2b, xxh3-128 and BLAKE3 (1 MiB
    reads of a warm-cache file), the choice made in drafts/media.py.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drafts.media import fingerprint_file, media_draft, source_change  # noqa: E402
from lenses.lens import FrameContext  # noqa: E402
from lenses.media import FFmpegEngine, ProxySpec, proxy  # noqa: E402
from lenses.media.argv import header_argv  # noqa: E402
from lenses.media.ledger import OutputRecord, owner_problem, record_output  # noqa: E402
from lenses.media.mediainfo import parse_input_dump  # noqa: E402


def make_clips(directory: str, n: int, size: str, duration: float) -> list[str]:
    binary = FFmpegEngine.pinned().path
    paths = []
    for i in range(n):
        path = os.path.join(directory, f"clip_{i:03d}.mov")
        subprocess.run(
            [binary, "-hide_banner", "-nostdin", "-v", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={duration}",
             "-f", "lavfi", "-i", f"sine=frequency={220 + 10 * i}:sample_rate=48000:duration={duration}",
             "-vf", f"hue=h={i * 11}", "-ac", "2", "-c:v", "libx264", "-threads", "1", "-c:a", "aac", path],
            check=True,
        )
        paths.append(path)
    return paths


def lens_job(draft, spec, index: int) -> float:
    start = time.perf_counter()
    context = FrameContext("bench", "bench-batch", index)
    proxy.describe(draft, spec, context)
    result = proxy(draft, spec, context)
    if not result.ok:
        raise SystemExit(f"lens job failed: {result.message}")
    return time.perf_counter() - start


def bare_job(argv, output: str) -> float:
    """The same argv, writing the same bytes to a plain file (``-fd 1 fd:`` is its stdout)."""
    start = time.perf_counter()
    with open(output, "wb") as fh:
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.PIPE, check=True)
    return time.perf_counter() - start


def one_round(drafts, argvs, spec, lens_first: bool) -> tuple[float, float]:
    """Clip by clip, the bare run and the lens job back to back (alternating which goes first)."""
    bare = lens_t = 0.0
    bare_output = os.path.join(spec.output_directory, "bare-baseline." + spec.extension)
    for index, (draft, argv) in enumerate(zip(drafts, argvs, strict=True)):
        if lens_first:
            lens_t += lens_job(draft, spec, index)
            bare += bare_job(argv, bare_output)
        else:
            bare += bare_job(argv, bare_output)
            lens_t += lens_job(draft, spec, index)
    return bare, lens_t


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

    return {
        "describe (plan + argv)": each(lambda i, _f: proxy.describe(drafts[i], spec, FrameContext("b", "b", i))),
        "source identity (file status)": each(lambda i, _f: source_change(**{
            k: drafts[i].payload[k] for k in ("path", "size", "fingerprint")})),
        "ownership of the final path": each(lambda _i, f: owner_problem(f)),
        "ledger row (SQLite insert)": each(ledger_one),
        "verification probe (FFmpeg run)": each(probe_one),
        "fingerprint of the output": each(lambda _i, f: fingerprint_file(f)),
        "fsync of the output": each(fsync_one),
    }


def bench_overhead(args) -> None:
    work = tempfile.mkdtemp(prefix="bench_media_")
    try:
        clips = make_clips(work, args.clips, args.size, args.duration)
        out_dir = os.path.join(work, "out")
        os.mkdir(out_dir)
        spec = ProxySpec(args.codec, args.container, args.resolution, "{source_name}_{index}", out_dir)
        drafts = [media_draft(p) for p in clips]
        described = [proxy.describe(d, spec, FrameContext("bench", "bench-batch", i)) for i, d in enumerate(drafts)]
        argvs = [d["argv"] for d in described]
        one_round(drafts[:2], argvs[:2], spec, False)  # warm up: page cache, binary
        bare_times, lens_times = [], []
        for round_index in range(args.rounds):
            bare_s, lens_s = one_round(drafts, argvs, spec, lens_first=bool(round_index % 2))
            bare_times.append(bare_s)
            lens_times.append(lens_s)
        bare, lens_t = min(bare_times), min(lens_times)
        n = len(clips)
        print(f"media lens overhead: {n} clips {args.size} {args.duration}s h264+aac -> "
              f"{args.codec}/{args.container} {args.resolution}, best of {args.rounds} rounds each")
        print(f"  bare subprocess loop : {bare * 1000:8.1f} ms  ({bare / n * 1000:6.1f} ms/clip)")
        print(f"  lens (describe+call) : {lens_t * 1000:8.1f} ms  ({lens_t / n * 1000:6.1f} ms/clip)")
        print(f"  overhead ratio       : {lens_t / bare:6.3f}   (aim <= 1.05)")
        print(f"  overhead per clip    : {(lens_t - bare) / n * 1000:6.1f} ms")
        finals = [d["outputs"][0] for d in described]
        for step, ms in breakdown(finals, drafts, spec, FFmpegEngine.pinned().path).items():
            print(f"    {step:34s} {ms:6.2f} ms/clip")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_fingerprints(mib: int) -> None:
    import blake3
    import xxhash

    with tempfile.NamedTemporaryFile(prefix="bench_hash_", delete=False) as f:
        chunk = os.urandom(1 << 20)
        for _ in range(mib):
            f.write(chunk)
        path = f.name
    try:
        def stream(hasher) -> str:
            buf = bytearray(1 << 20)
            view = memoryview(buf)
            with open(path, "rb", buffering=0) as fh:
                while n := fh.readinto(buf):
                    hasher.update(view[:n])
            return hasher.hexdigest()

        candidates = {
            "blake2b-256 (hashlib)": lambda: stream(hashlib.blake2b(digest_size=32)),
            "xxh3-128 (xxhash)": lambda: stream(xxhash.xxh3_128()),
            "blake3 (1 thread)  <- used": lambda: stream(blake3.blake3()),
            "drafts.media.fingerprint_file": lambda: fingerprint_file(path),
        }
        print(f"fingerprint throughput, {mib} MiB warm-cache file, 1 MiB reads (best of 3):")
        for name, fn in candidates.items():
            fn()
            best = min(_timed(fn) for _ in range(3))
            print(f"  {name:32s} {mib * (1 << 20) / best / 1e9:6.2f} GB/s")
    finally:
        os.unlink(path)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--codec", default="prores_proxy")
    parser.add_argument("--container", default="mov")
    parser.add_argument("--resolution", default="half")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hash-mib", type=int, default=512)
    args = parser.parse_args()
    print(f"engine: {FFmpegEngine.pinned().identity}")
    bench_overhead(args)
    bench_fingerprints(args.hash_mib)


if __name__ == "__main__":
    main()
