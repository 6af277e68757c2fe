"""The ``draftlens`` command: plan, run, demo (and sessions).

Exit codes: 0 every job completed; 1 some job failed; 2 invalid pipeline or usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 too; keep the message short and ours
        self.print_usage(sys.stderr)
        print(f"draftlens: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _registry():
    from lenses import default_registry

    return default_registry


def _load(path: str):
    from .pipeline import PipelineError, load_pipeline

    try:
        return load_pipeline(path)
    except PipelineError as exc:
        print(f"draftlens: invalid pipeline: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    except (ValueError, OSError) as exc:
        print(f"draftlens: invalid pipeline {path}: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def _executor(spec: str):
    from .executors import DaskExecutor, ProcessExecutor, SerialExecutor

    kind, _, arg = spec.partition(":")
    if kind == "processes":
        return ProcessExecutor(int(arg))
    if kind == "dask":
        return DaskExecutor(arg)
    return SerialExecutor()


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_plan(args: argparse.Namespace) -> int:
    from .plan import plan_session
    from .runfile import plan_record

    pipeline = _load(args.pipeline)
    session = plan_session(pipeline.store, registry=_registry(), caps=pipeline.caps)
    record = plan_record(session)
    if args.json:
        print(json.dumps(record, indent=2, sort_keys=True))
        return EXIT_OK
    print(f"plan session {session.session_id}  ({session.job_count} jobs, dag={session.is_dag})")
    for source_id, _, frames in pipeline.sources:
        note = ""
        if frames > pipeline.caps.max_frames_evaluated:
            note = f"  (caps: only the first {pipeline.caps.max_frames_evaluated} frames will be evaluated)"
        print(f"source {source_id}: {frames} frames{note}")
    rows = [[r["instance"], r["lens"], r["jobs"], r["run"], r["reused"], "yes" if r["expands"] else "",
             r["problem"] or ""] for r in record["instances"]]
    print(_table(rows, ["instance", "lens", "jobs", "run", "reused", "expands", "problem"]))
    commands = [j for j in record["jobs"] if j["command"]]
    if commands:
        print("\nFFmpeg commands:")
        import shlex

        for job in commands:
            print(f"  [{job['lens_instance_id']} frame {job['frame_index']}] {shlex.join(job['command'])}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from .recompute import recompute_derived
    from .report import write_report
    from .runfile import dumps, run_record, write_atomically

    pipeline = _load(args.pipeline)
    spec = args.executor or pipeline.executor
    try:
        from .pipeline import parse_executor

        parse_executor(spec, "--executor")
    except ValueError as exc:
        print(f"draftlens: {exc}", file=sys.stderr)
        return EXIT_USAGE
    executor = _executor(spec)
    bar = _progress_bar()
    try:
        state = recompute_derived(pipeline.store, registry=_registry(), caps=pipeline.caps, executor=executor,
                                  progress=bar.update if bar else None, force=args.force)
    except KeyboardInterrupt:
        print("\ndraftlens: interrupted; no output was left half-written", file=sys.stderr)
        return 130
    finally:
        if bar:
            bar.close()
        close = getattr(executor, "close", None)
        if close:
            close()
    results = list(state.results.values())
    failed = sum(r.status == "FAILED" for r in results)
    jobs = [state.plan.job(j) for j in state.plan.job_ids]
    counts = {
        "jobs": state.plan.job_count,
        "reused": sum(j.decision == "reused" for j in jobs),
        "media_completed": sum(r.status == "COMPLETED" for r in results),
        "media_failed": failed,
        "warnings": len(state.warnings),
        "outputs": sum(len(state.outputs(i)) for i in state.instance_ids),
    }
    out = pipeline.output
    write_atomically(out / "run.json", dumps(run_record(state, counts)))
    write_report(out / "report.html", state, pipeline)
    rows = [[i, len(state.outputs(i)), sum(w.lens_instance_id == i for w in state.warnings)] for i in state.instance_ids]
    print(_table(rows, ["instance", "outputs", "warnings"]))
    print(f"\njobs {counts['jobs']} (reused {counts['reused']}), media jobs completed {counts['media_completed']}, "
          f"failed {failed}, warnings {counts['warnings']}, outputs {counts['outputs']}")
    for w in state.warnings:
        print(f"  {w}")
    print(f"\nrun.json:    {out / 'run.json'}\nreport.html: {out / 'report.html'}")
    lens_failures = any(w.code in ("lensError", "executionFailed", "invalidOutput", "unknownLens", "invalidParams",
                                   "missingInput", "malformedCarrier") for w in state.warnings)
    return EXIT_FAILED if failed or lens_failures else EXIT_OK


class _Bar:
    """A tqdm bar fed with (done, total) from recompute's progress callback."""

    def __init__(self):
        from tqdm import tqdm

        self._bar = tqdm(total=0, unit="job", file=sys.stderr, leave=False)

    def update(self, done: int, total: int) -> None:
        self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


def _progress_bar():
    return _Bar() if sys.stderr.isatty() else None


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import render, run_demo

    print(render(run_demo()))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="draftlens", description="Deterministic draft/lens evaluation: plan and run pipelines.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    plan = sub.add_parser("plan", help="show what a run would do, without running anything")
    plan.add_argument("pipeline", help="pipeline file (TOML)")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(run=cmd_plan)
    run = sub.add_parser("run", help="run a pipeline: outputs, run.json and report.html")
    run.add_argument("pipeline", help="pipeline file (TOML)")
    run.add_argument("--executor", help="serial | processes:N | dask:ADDRESS (default: the pipeline's)")
    run.add_argument("--force", action="store_true", help="run every job even if it could be reused")
    run.set_defaults(run=cmd_run)
    demo = sub.add_parser("demo", help="run the bundled example and print its derived state")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
