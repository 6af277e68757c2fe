"""The ``draftlens`` command: plan, run, demo, sessions.

Exit codes: 0 every job completed; 1 some job failed; 2 invalid pipeline or usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


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
    return _run(_load(args.pipeline), args.executor, args.force)[1]


def _run(pipeline: Any, executor_spec: str | None, force: bool) -> tuple[Any, int]:
    """Run a loaded pipeline, print its summary, write run.json and report.html: ``(state, exit code)``."""
    from .recompute import recompute_derived
    from .report import write_report
    from .runfile import dumps, run_record, write_atomically

    spec = executor_spec or pipeline.executor
    try:
        from .pipeline import parse_executor

        parse_executor(spec, "--executor")
    except ValueError as exc:
        print(f"draftlens: {exc}", file=sys.stderr)
        return None, EXIT_USAGE
    for directory in pipeline.output_directories():
        directory.mkdir(parents=True, exist_ok=True)
    executor = _executor(spec)
    bar = _progress_bar()
    try:
        state = recompute_derived(pipeline.store, registry=_registry(), caps=pipeline.caps, executor=executor,
                                  progress=bar.update if bar else None, force=force)
    except KeyboardInterrupt:
        print("\ndraftlens: interrupted; no output was left half-written", file=sys.stderr)
        return None, EXIT_INTERRUPTED
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
    failed_by = {}
    for job_id, result in state.results.items():
        if result.status == "FAILED":
            instance_id = state.job_origins[job_id][0]
            failed_by[instance_id] = failed_by.get(instance_id, 0) + 1
    warned = {i: sum(w.lens_instance_id == i for w in state.warnings) for i in state.instance_ids}
    rows = [[r["instance"], r["lens"], r["jobs"], r["run"], r["reused"], failed_by.get(r["instance"], 0),
             len(state.outputs(r["instance"])), warned.get(r["instance"], 0)] for r in state.plan.summary()]
    print(_table(rows, ["instance", "lens", "jobs", "ran", "reused", "failed", "outputs", "warnings"]))
    print(f"\njobs {counts['jobs']} (reused {counts['reused']}), media jobs completed {counts['media_completed']}, "
          f"failed {failed}, warnings {counts['warnings']}, outputs {counts['outputs']}")
    for w in state.warnings:  # the first line here; the whole message is in run.json and report.html
        print(f"  {str(w).splitlines()[0]}")
    print(f"\nrun.json:    {out / 'run.json'}\nreport.html: {out / 'report.html'}")
    return state, EXIT_FAILED if failed or _pure_failures(state) else EXIT_OK


_FAILURE_CODES = ("lensError", "invalidOutput", "unknownLens", "invalidParams", "missingInput", "malformedCarrier")


def _pure_failures(state: Any) -> list:
    """Warnings that mean a job failed without an ExecutionResult (pure lenses, bad instances)."""
    return [w for w in state.warnings if w.code in _FAILURE_CODES]


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
    """Make sample clips in DIR, write a pipeline next to them and run it.

    One clip is corrupt on purpose: the demo succeeds (exit 0) when exactly
    that clip's jobs fail and every other job completes.
    """
    from pathlib import Path

    from .demo import CORRUPT_CLIP, write_demo_pipeline

    directory = Path(args.directory).resolve()
    print(f"making sample clips in {directory / 'clips'} with the pinned FFmpeg ...")
    pipeline_path = write_demo_pipeline(directory)
    print(f"pipeline: {pipeline_path}\n")
    pipeline = _load(str(pipeline_path))
    state, code = _run(pipeline, None, force=False)
    if state is None:
        return code
    clip_of = {frame.id: Path(frame.payload["path"]).name
               for _, carrier_id, _ in pipeline.sources for frame in pipeline.store.drafts[carrier_id].payload["values"]}
    failed_clips = {clip_of.get(state.job_origins[job_id][2]) for job_id, result in state.results.items()
                    if result.status == "FAILED"}
    print(f"\n{CORRUPT_CLIP} is corrupt on purpose: its jobs fail, the other clips are unaffected.")
    print(f"open the report: {(directory / 'out' / 'report.html').as_uri()}")
    return EXIT_OK if failed_clips == {CORRUPT_CLIP} and not _pure_failures(state) else EXIT_FAILED


def _printable(text: Any) -> str:
    """User text (ids, performer ids, problems) as one printable line: a newline, an escape
    sequence or a bidi override is written as its Python escape (``\\n``, ``\\x1b``), never raw,
    so it cannot forge lines or colours in a listing."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def cmd_sessions(args: argparse.Namespace) -> int:
    """list / show / replay / set-aside a user's work sessions from the journals under ``--root``.

    Only set-aside changes anything: it renames a damaged journal to ``<id>.jsonl.damaged``.
    """
    from drafts.errors import JournalError, SessionError
    from drafts.sessions import SessionManager

    manager = SessionManager(args.root)
    try:
        if args.action == "list":
            return _sessions_list(manager, args)
        user_id = args.user or manager.owner_of(args.session_id)
        if args.action == "set-aside":
            new_name = manager.set_aside(user_id, args.session_id)
            print(f"set aside: {_printable(manager.journal(user_id, args.session_id).with_name(new_name))}")
            return EXIT_OK
        path = manager.journal(user_id, args.session_id)
        if not path.exists():
            raise SessionError(f"no session {args.session_id!r} for user {user_id!r} under {manager.root}")
        return _sessions_show(path, args) if args.action == "show" else _sessions_replay(path, args)
    except (SessionError, JournalError, ValueError, OSError) as exc:
        print(f"draftlens: {_printable(exc)}", file=sys.stderr)
        return EXIT_USAGE


def _sessions_list(manager: Any, args: argparse.Namespace) -> int:
    if not args.user:
        print("draftlens: sessions list needs --user", file=sys.stderr)
        return EXIT_USAGE
    sessions = manager.sessions(args.user)
    if args.json:
        print(json.dumps([{"session_id": s.session_id, "status": s.status,
                           "started": s.started.timestamp if s.started else None,
                           "ended": s.ended.timestamp if s.ended else None,
                           "performer_id": s.started.performer_id if s.started else None,
                           "damage": None if s.damage is None else {
                               "line": s.damage_line, "problem": getattr(s.damage, "problem", str(s.damage)),
                               "closed": s.closed}}
                          for s in sessions], indent=2))
        return EXIT_OK
    rows = [[s.session_id, s.status, s.started.timestamp if s.started else "?",
             s.ended.timestamp if s.ended else "", s.started.performer_id if s.started else "?",
             _damage_note(s)] for s in sessions]
    rows = [[_printable(c) for c in row] for row in rows]
    print(_table(rows, ["session", "status", "started", "ended", "performer", "damage"]) if rows
          else f"no sessions for user {_printable(repr(args.user))} under {_printable(manager.root)}")
    return EXIT_OK


def _damage_note(info: Any) -> str:
    if info.damage is None:
        return ""
    where = f"line {info.damage_line}: " if info.damage_line is not None else ""
    state = "closed" if info.closed else "ACTIVE, blocks new work until set aside"
    return f"{where}{getattr(info.damage, 'problem', info.damage)} ({state})"


def _describe_record(record: dict) -> str:
    if record["kind"] == "session":
        return f"session {record['event']}"
    detail = {k: v for k, v in record.items() if k not in (
        "kind", "op", "user_id", "session_id", "performer_id", "timestamp", "record_id")}
    if "draft" in detail:
        detail["draft"] = "<draft>"
    return f"{record['op']} {json.dumps(detail, sort_keys=True)[:120]}"


def _sessions_show(path: Any, args: argparse.Namespace) -> int:
    from drafts.journal import read_journal

    readout = read_journal(path)
    if args.json:
        print(json.dumps({"path": str(readout.path), "records": list(readout.records), "torn_tail": readout.torn_tail},
                         indent=2, sort_keys=True))
        return EXIT_OK
    print(f"journal {_printable(readout.path)}")
    for line, record in enumerate(readout.records, start=1):
        print(_printable(f"{line:>5}  {record['timestamp']}  {record['performer_id']:<16} {_describe_record(record)}"))
    if readout.torn_tail:
        print(f"(a torn last line of {readout.torn_bytes} bytes, left by a crash, was ignored)")
    return EXIT_OK


def _sessions_replay(path: Any, args: argparse.Namespace) -> int:
    from drafts.journal import replay

    from .recompute import recompute_derived

    store = replay(path)
    state = recompute_derived(store, registry=_registry())
    if args.json:
        print(json.dumps({
            "drafts": sorted(store.drafts),
            "lens_instances": {i: {"lens_id": li.lens_id, "outputs": [d.id for d in state.outputs(i)]}
                               for i, li in store.lens_instances.items()},
            "warnings": [str(w) for w in state.warnings],
        }, indent=2, sort_keys=True))
        return EXIT_OK
    print(f"replayed {_printable(path)}: {len(store.drafts)} drafts, {len(store.lens_instances)} lens instances")
    rows = [[_printable(i), _printable(li.lens_id), len(state.outputs(i))] for i, li in store.lens_instances.items()]
    if rows:
        print(_table(rows, ["instance", "lens", "outputs"]))
    for w in state.warnings:
        print(f"  {_printable(str(w).splitlines()[0])}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the session manager over HTTP (``derived.http``) until interrupted.

    With ``--workers`` above 1, each uvicorn worker process builds the app
    from ``$DRAFTLENS_ROOT``; the on-disk lock keeps one active session per
    user among them.
    """
    import os

    try:
        import uvicorn

        from .http import ROOT_ENV, create_app
    except ImportError as exc:
        print(f"draftlens: serve needs the http extra (pip install 'draftlens[http]'): {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.workers < 1:
        print(f"draftlens: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return EXIT_USAGE
    root = os.path.abspath(args.root)
    print(f"draftlens: serving the sessions under {_printable(root)} on http://{args.host}:{args.port} "
          f"({args.workers} worker{'s' if args.workers > 1 else ''})", file=sys.stderr)
    if args.workers == 1:
        uvicorn.run(create_app(root), host=args.host, port=args.port, log_level=args.log_level)
    else:
        os.environ[ROOT_ENV] = root
        uvicorn.run("derived.http:app_from_env", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level=args.log_level)
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
    demo = sub.add_parser("demo", help="make sample clips, write a pipeline over them, run it, print the report path")
    demo.add_argument("directory", nargs="?", default="draftlens-demo",
                      help="where the clips, pipeline.toml and out/ go (default: ./draftlens-demo)")
    demo.set_defaults(run=cmd_demo)
    sessions = sub.add_parser("sessions", help="list, show, replay or set aside a user's journaled work sessions")
    sessions.add_argument("action", choices=["list", "show", "replay", "set-aside"],
                          help="set-aside renames a damaged journal to <id>.jsonl.damaged so new work can start")
    sessions.add_argument("session_id", nargs="?", help="the session (show, replay, set-aside)")
    sessions.add_argument("--root", default="logs", help="the journal root (default: ./logs)")
    sessions.add_argument("--user", help="the user id (list; optional for show/replay)")
    sessions.add_argument("--json", action="store_true", help="machine-readable output")
    sessions.set_defaults(run=cmd_sessions)
    serve = sub.add_parser("serve", help="serve the session manager over HTTP (needs the http extra)")
    serve.add_argument("--root", default="logs", help="the journal root (default: ./logs)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument("--workers", type=int, default=1, help="server processes sharing the root (default: 1)")
    serve.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(run=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "action", None) in ("show", "replay", "set-aside") and not args.session_id:
        parser.error(f"sessions {args.action} needs a SESSION_ID")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
