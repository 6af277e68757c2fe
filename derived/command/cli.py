"""The ``draftlens`` command: plan, run, demo, cache, sessions.

Exit codes: 0 every job completed; 1 some job failed; 2 invalid pipeline or
usage (checked before anything runs); 3 every job completed but caps dropped
work (the summary says which cap); 130 interrupted; 141 stdout closed early
(``draftlens plan FILE | head``), quietly.

Diagnostics go through stdlib ``logging`` (loggers ``draftlens.*``) to stderr:
``-v`` info, ``-vv`` debug, ``-q`` errors only (and no progress bar).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from contextlib import contextmanager
from typing import Any

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TRUNCATED = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it; SIGTERM gives 143 and SIGHUP 129
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE
EXIT_IN_USE = 75  # EX_TEMPFAIL (sysexits.h): another run holds an output folder; try again later

log = logging.getLogger("draftlens.cli")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 too; keep the message short and ours
        self.print_usage(sys.stderr)
        print(f"draftlens: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _load(path: str):
    from .pipeline import PipelineError, load_pipeline

    try:
        return load_pipeline(path)
    except PipelineError as exc:
        for problem in exc.problems:
            print(f"draftlens: invalid pipeline: {problem}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    except (ValueError, OSError) as exc:
        print(f"draftlens: invalid pipeline {path}: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


_DASK_CONNECT_TIMEOUT = "10s"


class _CannotRun(Exception):
    """Something found before any job runs makes the run impossible; the message is one line."""


def _executor(spec: str):
    """The executor a spec names; _CannotRun for a Dask scheduler out of reach (after at most 10 s)."""
    from ..executors import DaskExecutor, ProcessExecutor, SerialExecutor

    kind, _, arg = spec.partition(":")
    if kind == "processes":
        return ProcessExecutor(int(arg))
    if kind == "dask":
        try:
            import dask

            with dask.config.set({"distributed.comm.timeouts.connect": _DASK_CONNECT_TIMEOUT}):
                return DaskExecutor(arg)
        except ImportError as exc:
            raise _CannotRun(f"executor {spec!r}: {exc}") from None
        except (OSError, TimeoutError, ValueError) as exc:
            raise _CannotRun(f"executor {spec!r}: cannot reach the Dask scheduler at {arg} "
                             f"({type(exc).__name__}: {exc})") from None
    return SerialExecutor()


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


CACHE_NAME = ".draftlens/cache.sqlite"
"""The evaluation cache of a pipeline, under its output folder (beside run.json)."""


def cache_path(pipeline_path: str) -> Any:
    """``<[pipeline] output>/.draftlens/cache.sqlite`` of a pipeline file (PipelineError if unreadable)."""
    from .pipeline import pipeline_output

    return pipeline_output(pipeline_path) / CACHE_NAME


class _Cache:
    """The pipeline's durable memo, opened in two steps around loading the pipeline.

    A cache that exists is opened (and its source fingerprints installed)
    before the pipeline is loaded, so an unchanged media file is not read
    again; a missing one is made only once the pipeline has loaded, so an
    invalid pipeline leaves nothing behind. ``--no-cache`` or an unreadable
    pipeline file: no memo (loading reports the problem).
    """

    def __init__(self, pipeline_path: str, no_cache: bool):
        from .pipeline import PipelineError

        self.memo: Any = None
        self.path: Any = None
        self._previous: Any = None
        self._installed = False
        if no_cache:
            return
        try:
            self.path = cache_path(pipeline_path)
        except PipelineError:
            return
        if self.path.exists():
            self._open()

    def _open(self) -> None:
        from drafts.media import use_fingerprint_cache

        from ..durable import StoreError
        from ..memo import Memo

        try:
            self.memo = Memo.open(self.path)
        except StoreError as exc:
            print(f"draftlens: {exc}", file=sys.stderr)
            raise SystemExit(EXIT_USAGE) from None
        self._previous = use_fingerprint_cache(self.memo.durable)
        self._installed = True

    def loaded(self) -> Any:
        """The pipeline loaded: the memo (the cache file is made now if it was missing), or None."""
        if self.memo is None and self.path is not None:
            self._open()
        return self.memo

    def close(self) -> None:
        from drafts.media import use_fingerprint_cache

        if self._installed:
            use_fingerprint_cache(self._previous)
        if self.memo is not None:
            self.memo.close()


@contextmanager
def _cache(pipeline_path: str, no_cache: bool):
    cache = _Cache(pipeline_path, no_cache)
    try:
        yield cache
    finally:
        cache.close()


def _reason_counts(jobs: list[dict], instance: str) -> str:
    counts: dict[str, int] = {}
    for job in jobs:
        if job["lens_instance_id"] == instance and job["reason"] != "reused":
            counts[job["reason"]] = counts.get(job["reason"], 0) + 1
    return ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def cmd_plan(args: argparse.Namespace) -> int:
    with _cache(args.pipeline, args.no_cache) as cache:
        pipeline = _load(args.pipeline)
        return _plan(pipeline, cache.loaded(), args)


def _plan(pipeline: Any, memo: Any, args: argparse.Namespace) -> int:
    from ..plan import build_plan
    from .reasons import job_reasons
    from .runfile import plan_record
    from .truncation import caps_notes

    session, _, (instances, singles) = build_plan(pipeline.store, pipeline.registry, pipeline.caps, memo, args.force)
    history = memo.durable.instance_history() if memo is not None else {}
    reasons = job_reasons(session, instances, singles, memo, history, args.force)
    notes = caps_notes(session, pipeline.caps, singles)
    record = plan_record(session, notes)
    for job in record["jobs"]:
        job["reason"] = reasons[job["job_id"]]
        job["problem"] = job["problem"] or _output_owner_problem(job["outputs"])
    record["cache"] = memo.durable.path if memo is not None else None
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
             _reason_counts(record["jobs"], r["instance"]), r["problem"] or ""] for r in record["instances"]]
    print(_table(rows, ["instance", "lens", "jobs", "run", "reused", "expands", "why", "problem"]))
    if record["jobs"] and all(j["reason"] == "reused" for j in record["jobs"]):
        print(f"nothing to run: all {len(record['jobs'])} jobs can be reused")
    for note in notes:
        where = f"{note['instance']}: " if note["instance"] else ""
        print(f"caps {'will' if note['certain'] else 'may'} truncate: {where}{note['message']}")
    problems = [j for j in record["jobs"] if j["problem"]]
    if problems:
        print(f"\n{len(problems)} job(s) will fail validation (nothing is written for them):")
        for job in problems:
            print(f"  [{job['lens_instance_id']} frame {job['frame_index']}] {job['problem'].splitlines()[0]}")
    commands = [j for j in record["jobs"] if j["command"] and not j["problem"]]
    if commands:
        print("\nFFmpeg commands:")
        import shlex

        for job in commands:
            print(f"  [{job['lens_instance_id']} frame {job['frame_index']}] ({job['reason']}) "
                  f"{shlex.join(job['command'])}")
            if job["outputs"]:
                print(f"      writes {', '.join(job['outputs'])}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    with _cache(args.pipeline, args.no_cache) as cache:
        pipeline = _load(args.pipeline)
        return _run(pipeline, args.executor, args.force, as_json=args.json, quiet=args.quiet > 0,
                    open_memo=cache.loaded)[1]


def _run(pipeline: Any, executor_spec: str | None, force: bool, as_json: bool = False,
         quiet: bool = False, memo: Any = None, open_memo: Any = None) -> tuple[Any, int]:
    """Run a loaded pipeline, print its summary, write run.json and report.html: ``(state, exit code)``.

    SIGTERM and SIGHUP stop it as cleanly as Ctrl-C (``derived.signals``):
    FFmpeg children and workers stopped, temporary files removed, no
    run.json of a run that did not finish; exit 143 / 129.
    """
    from ..signals import Terminated, kill_children, stop_on_signals

    try:
        with stop_on_signals():
            return _run_pipeline(pipeline, executor_spec, force, as_json, quiet, memo, open_memo)
    except Terminated as exc:
        kill_children()
        print(f"\ndraftlens: {exc}; FFmpeg stopped, no output was left half-written", file=sys.stderr)
        return None, exc.exit_code


def _run_pipeline(pipeline: Any, executor_spec: str | None, force: bool, as_json: bool,
                  quiet: bool, memo: Any, open_memo: Any = None) -> tuple[Any, int]:
    """``open_memo`` opens the pipeline's cache once the executor and the folders have been checked
    (so a run that cannot start leaves no cache file behind and names the real problem)."""
    spec = executor_spec or pipeline.executor
    try:
        from .pipeline import parse_executor

        parse_executor(spec, "--executor")
    except ValueError as exc:
        print(f"draftlens: {exc}", file=sys.stderr)
        return None, EXIT_USAGE
    from .folders import FolderError, FolderInUse, hold_folders, prepare_folders

    folders = [pipeline.output, *pipeline.output_directories()]
    try:  # everything that can be known before a job runs is checked before one runs (or a folder is made)
        executor = _executor(spec)
    except _CannotRun as exc:
        print(f"draftlens: {exc}", file=sys.stderr)
        return None, EXIT_USAGE
    try:
        prepare_folders(folders)
        with hold_folders(folders, str(pipeline.path)):
            problem = _records_problem(pipeline.output)
            if problem is not None:
                print(f"draftlens: {problem}", file=sys.stderr)
                return None, EXIT_USAGE
            _sweep_leftovers(pipeline.output_directories())
            if open_memo is not None:
                memo = open_memo()
            return _run_held(pipeline, executor, spec, force, as_json, quiet, memo)
    except FolderInUse as exc:
        print(f"draftlens: {exc}", file=sys.stderr)
        return None, EXIT_IN_USE
    except FolderError as exc:
        print(f"draftlens: {exc}", file=sys.stderr)
        return None, EXIT_USAGE
    except BaseException:  # Ctrl-C or a stop signal between rounds: stop the workers now, not when they finish
        terminate = getattr(executor, "terminate", None)
        if terminate is not None:
            terminate()
        raise
    finally:
        close = getattr(executor, "close", None)
        if close:
            close()


def _sweep_leftovers(directories: Any) -> None:
    """Remove what runs killed outright left in the media output folders (held by this run now), and warn of
    every file that only looks like it (``lenses.media.leftovers`` has the rule). Each folder gets a ledger
    (beside its run lock), so the temporary files of this run are recorded from its first job on."""
    from lenses.media.ledger import LedgerError, ensure_ledger
    from lenses.media.leftovers import sweep_leftovers

    for directory in directories:
        try:
            ensure_ledger(str(directory))  # so this run's temporary files are recorded from its first job on
            found = sweep_leftovers(str(directory))
        except LedgerError as exc:
            log.warning("temporary files in %s were not checked: %s", directory, exc)
            continue
        for path in found.removed:
            log.info("removed %s, the temporary file of a draftlens job killed in an earlier run", path)
        for path, why in found.kept:
            log.warning("%s: %s", path, why)


def _records_problem(output: Any) -> str | None:
    """Why run.json or report.html may not be written in ``output``: a file there that draftlens did not write."""
    from .runfile import record_owner_problem

    for name in ("run.json", "report.html"):
        problem = record_owner_problem(output / name)
        if problem is not None:
            return problem
    return None


def _run_held(pipeline: Any, executor: Any, spec: str, force: bool, as_json: bool, quiet: bool,
              memo: Any) -> tuple[Any, int]:
    from ..recompute import recompute_derived
    from .reasons import instance_rows
    from .report import write_report
    from .runfile import dumps, run_record, write_atomically

    bar = None if quiet else _progress_bar()
    log.info("running %s with %s", pipeline.path, spec)
    try:
        state = recompute_derived(pipeline.store, registry=pipeline.registry, caps=pipeline.caps, executor=executor,
                                  progress=bar.update if bar else None, force=force, memo=memo)
    except KeyboardInterrupt:
        print("\ndraftlens: interrupted; no output was left half-written", file=sys.stderr)
        return None, EXIT_INTERRUPTED
    finally:
        if bar:
            bar.close()
    summary = _run_summary(state, pipeline)
    counts = summary["counts"]
    if memo is not None:
        memo.durable.record_instances(instance_rows(list(state.plan._instances)))
        counts["ran"] = sum(memo.ran.values())
        summary["cache"] = memo.durable.path
        for row in summary["instances"]:  # what actually ran and was reused (an expanding instance expands at run time)
            row["ran"] = memo.ran.get(row["instance"], 0)
            row["reused"] = memo.reused.get(row["instance"], 0)
        counts["reused"] = sum(row["reused"] for row in summary["instances"])
    else:
        counts["ran"] = counts["jobs"] - counts["reused"]
        summary["cache"] = None
    out = pipeline.output
    try:
        write_atomically(out / "run.json", dumps(run_record(state, summary["counts"], pipeline.store)))
        write_report(out / "report.html", state, pipeline)
    except OSError as exc:  # the jobs ran: say what they made, then why the record is missing
        _print_summary(summary)
        print(f"draftlens: the jobs ran, but run.json/report.html could not be written in {out}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return state, EXIT_FAILED
    log.info("wrote %s and %s", out / "run.json", out / "report.html")
    summary["files"] = {"run_json": str(out / "run.json"), "report_html": str(out / "report.html")}
    if as_json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    elif not quiet:
        _print_summary(summary)
    return state, summary["exit_code"]


def _run_summary(state: Any, pipeline: Any) -> dict:
    """What ``run`` prints (and ``run --json`` gives): counts, per-instance rows, warnings, truncations."""
    from .runfile import SCHEMA_VERSION, Sources, truncations

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
    failed_by: dict[str, int] = {}
    for job_id, result in state.results.items():
        if result.status == "FAILED":
            instance_id = state.job_origins[job_id][0]
            failed_by[instance_id] = failed_by.get(instance_id, 0) + 1
    warned = {i: sum(w.lens_instance_id == i for w in state.warnings) for i in state.instance_ids}
    instances = []
    for r in state.plan.summary():
        jobs, ran = r["jobs"], r["run"]
        if r["expands"]:  # the one planned job became the instance's frames (or one call) at run time
            jobs = ran = _expanded_jobs(state, r)
        instances.append({"instance": r["instance"], "lens": r["lens"], "jobs": jobs, "ran": ran,
                          "reused": r["reused"], "failed": failed_by.get(r["instance"], 0),
                          "outputs": len(state.outputs(r["instance"])), "warnings": warned.get(r["instance"], 0)})
    counts["jobs"] = sum(row["jobs"] for row in instances)
    sources = Sources(state, pipeline.store)
    warnings = []
    for w in state.warnings:
        source = sources.of_frame(w.lens_instance_id, w.frame_index)
        warnings.append({"code": w.code, "instance": w.lens_instance_id, "frame": w.frame_index,
                         "source": source, "line": _warning_line(w, source)})
    truncated = truncations(state)
    failing = failed or _pure_failures(state)
    code = EXIT_FAILED if failing else EXIT_TRUNCATED if truncated else EXIT_OK
    return {"schema_version": SCHEMA_VERSION, "kind": "draftlens.run-summary", "session_id": str(state.plan.session_id),
            "counts": counts, "instances": instances, "warnings": warnings, "truncated": truncated,
            "exit_code": code}


def _expanded_jobs(state: Any, row: dict) -> int:
    """The jobs an expanding instance became when it ran: its frames, or one call."""
    batch_id = state.batch_id_by_instance.get(row["instance"])
    summary = state.batch_summary_by_batch_id.get(batch_id) if batch_id is not None else None
    return summary.frames if summary is not None else 1


def _output_owner_problem(outputs: list[str]) -> str | None:
    """Why a job will fail validation because a file it may not replace is where it writes (as the run
    finds it: ``lenses.media.ledger.owner_problem``), so ``plan`` says so before anything runs."""
    from lenses.media.ledger import owner_problem

    for path in outputs:
        problem, _ = owner_problem(path)
        if problem is not None:
            return f"validation failure: {problem}"
    return None


def _warning_line(w: Any, source: dict | None) -> str:
    """A warning's first line, naming its clip (file name) or input draft after instance and frame."""
    where = [f"instance {w.lens_instance_id!r}"] if w.lens_instance_id else []
    if w.frame_index is not None:
        where.append(f"frame {w.frame_index}")
    if source:
        where.append(f"clip {source['name']}" if source["name"] else f"input draft {source['draft_id'][:12]}")
    from lenses.media.execute import FFMPEG_LINES

    lines = w.message.splitlines() if w.message else [""]
    first = lines[0]
    if FFMPEG_LINES in lines[1:-1]:  # FFmpeg's first error line says why (the rest: run.json, report.html)
        why = lines[lines.index(FFMPEG_LINES) + 1]
        first += f": {why[:157] + '...' if len(why) > 160 else why}"
    return f"[{w.code}] {', '.join(where)}: {first}" if where else f"[{w.code}] {first}"



def _print_summary(summary: dict) -> None:
    rows = [[r["instance"], r["lens"], r["jobs"], r["ran"], r["reused"], r["failed"], r["outputs"], r["warnings"]]
            for r in summary["instances"]]
    print(_table(rows, ["instance", "lens", "jobs", "ran", "reused", "failed", "outputs", "warnings"]))
    counts = summary["counts"]
    print(f"\njobs {counts['jobs']} (reused {counts['reused']}), media jobs completed {counts['media_completed']}, "
          f"failed {counts['media_failed']}, warnings {counts['warnings']}, outputs {counts['outputs']}")
    if counts["ran"] == 0 and counts["jobs"]:
        print(f"nothing ran: every job was reused from the cache ({summary['cache']})")
    elif summary["cache"]:
        print(f"ran {counts['ran']} call(s); cache: {summary['cache']}")
    for w in summary["warnings"]:  # the first line here; the whole message is in run.json and report.html
        print(f"  {_printable(w['line'])}")  # a clip name may hold control characters: never raw
    if summary["truncated"]:
        print("\ntruncated: caps dropped work (exit 3); raise the cap named below in the pipeline's [caps]")
        for t in summary["truncated"]:
            print(f"  {_printable(t['instance'])}: {_printable(t['message'])}")
    files = summary.get("files")
    if files:  # absent when they could not be written (the error says why)
        print(f"\nrun.json:    {files['run_json']}\nreport.html: {files['report_html']}")


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
    that clip's jobs fail and every other job completes. A DIR that holds
    anything already is refused (exit 2) unless ``--force``: the demo writes
    ``pipeline.toml``, ``clips/`` and ``out/`` there (a folder an earlier demo
    made, with its pipeline.toml unchanged, may be run again).
    """
    from pathlib import Path

    from .demo import CORRUPT_CLIP, write_demo_pipeline

    directory = Path(args.directory).resolve()
    refusal = _demo_refusal(directory, args.force)
    if refusal:
        print(f"draftlens: {refusal}", file=sys.stderr)
        return EXIT_USAGE
    print(f"making sample clips in {directory / 'clips'} with the pinned FFmpeg ...")
    pipeline_path = write_demo_pipeline(directory)
    print(f"pipeline: {pipeline_path}\n")
    with _cache(str(pipeline_path), no_cache=False) as cache:
        pipeline = _load(str(pipeline_path))
        state, code = _run(pipeline, None, force=False, open_memo=cache.loaded)
    if state is None:
        return code
    clip_of = {frame.id: Path(frame.payload["path"]).name
               for _, carrier_id, _ in pipeline.sources for frame in pipeline.store.drafts[carrier_id].payload["values"]}
    failed_clips = {clip_of.get(state.job_origins[job_id][2]) for job_id, result in state.results.items()
                    if result.status == "FAILED"}
    print(f"\n{CORRUPT_CLIP} is corrupt on purpose: its jobs fail, the other clips are unaffected.")
    print(f"open the report: {(directory / 'out' / 'report.html').as_uri()}")
    return EXIT_OK if failed_clips == {CORRUPT_CLIP} and not _pure_failures(state) else EXIT_FAILED


def _made_by_the_demo(directory: Any, present: list[str]) -> bool:
    """A folder an earlier demo made, untouched: only its own entries and its very pipeline.toml."""
    from .demo import DEMO_PIPELINE

    if not set(present) <= {"pipeline.toml", "clips", "out"} or "pipeline.toml" not in present:
        return False
    try:
        return (directory / "pipeline.toml").read_text(encoding="utf-8") == DEMO_PIPELINE
    except (OSError, UnicodeDecodeError):
        return False


def _demo_refusal(directory: Any, force: bool) -> str | None:
    """Why the demo must not write into ``directory`` (None if it may)."""
    if directory.exists() and not directory.is_dir():
        return f"demo: {directory} is a file, not a folder"
    if force or not directory.exists():
        return None
    present = sorted(p.name for p in directory.iterdir())
    if not present or _made_by_the_demo(directory, present):
        return None
    shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
    return (f"demo: {directory} is not empty ({shown}); the demo writes pipeline.toml, clips/ and out/ there. "
            "Choose a new or empty folder, or pass --force to overwrite those files")


def _printable(text: Any) -> str:
    """User text (ids, performer ids, problems) as one printable line: a newline, an escape
    sequence or a bidi override is written as its Python escape (``\\n``, ``\\x1b``), never raw,
    so it cannot forge lines or colours in a listing."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
def cmd_cache(args: argparse.Namespace) -> int:
    """info / prune of an evaluation cache: a pipeline file's (under its output folder) or a .sqlite file."""
    from pathlib import Path

    from ..durable import DurableStore, StoreError
    from .pipeline import PipelineError

    target = Path(args.target)
    try:
        path = target if target.suffix in (".sqlite", ".db") else cache_path(str(target))
    except PipelineError as exc:
        print(f"draftlens: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not path.exists():
        print(f"draftlens: no evaluation cache at {path} (a run makes one)", file=sys.stderr)
        return EXIT_USAGE
    try:
        store = DurableStore(path, evaluating=False)
    except StoreError as exc:
        print(f"draftlens: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.action == "prune":
            try:
                removed = store.prune(args.keep)
            except ValueError as exc:
                print(f"draftlens: cache prune --keep: {exc}", file=sys.stderr)
                return EXIT_USAGE
            info = store.info()
            if args.json:
                print(json.dumps(_versioned("draftlens.cache-prune", {"removed": removed, "info": info}),
                                 indent=2, sort_keys=True))
            else:
                print(f"pruned {path}: {removed['entries']} entries, {removed['fingerprints']} fingerprints removed"
                      f"{'' if removed['compacted'] else ' (file not compacted: another process has it open)'}; "
                      f"{info['entries']} entries, {info['file_bytes']} bytes left")
            return EXIT_OK
        info = store.info()
    finally:
        store.close()
    if args.json:
        print(json.dumps(_versioned("draftlens.cache-info", info), indent=2, sort_keys=True))
        return EXIT_OK
    print(f"evaluation cache {info['path']} (schema {info['schema']}, used by {info['generation']} runs and plans)")
    print(f"{info['entries']} entries ({info['entry_bytes']} bytes of outcomes), {info['fingerprints']} source "
          f"fingerprints, {info['instances']} lens instances remembered; file {info['file_bytes']} bytes")
    if info["by_lens"]:
        print(_table([[r["lens"], r["status"], r["entries"], r["bytes"]] for r in info["by_lens"]],
                     ["lens", "status", "entries", "bytes"]))
    return EXIT_OK


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
        if args.action == "show":
            return _sessions_show(path, args)
        return _sessions_replay(path, args, manager.root / "users" / user_id)
    except (SessionError, JournalError, ValueError, OSError) as exc:
        print(f"draftlens: {_printable(exc)}", file=sys.stderr)
        return EXIT_USAGE


def _sessions_list(manager: Any, args: argparse.Namespace) -> int:
    if not args.user:
        print("draftlens: sessions list needs --user", file=sys.stderr)
        return EXIT_USAGE
    sessions = manager.sessions(args.user)
    if args.json:
        print(json.dumps(_versioned("draftlens.sessions", {"sessions": [
            {"session_id": s.session_id, "status": s.status,
             "started": s.started.timestamp if s.started else None,
             "ended": s.ended.timestamp if s.ended else None,
             "performer_id": s.started.performer_id if s.started else None,
             "damage": None if s.damage is None else {
                 "line": s.damage_line, "problem": getattr(s.damage, "problem", str(s.damage)), "closed": s.closed}}
            for s in sessions]}), indent=2))
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
        print(json.dumps(_versioned("draftlens.journal", {"path": str(readout.path), "records": list(readout.records),
                                                            "torn_tail": readout.torn_tail}), indent=2, sort_keys=True))
        return EXIT_OK
    print(f"journal {_printable(readout.path)}")
    for line, record in enumerate(readout.records, start=1):
        print(_printable(f"{line:>5}  {record['timestamp']}  {record['performer_id']:<16} {_describe_record(record)}"))
    if readout.torn_tail:
        print(f"(a torn last line of {readout.torn_bytes} bytes, left by a crash, was ignored)")
    return EXIT_OK


def _sessions_replay(path: Any, args: argparse.Namespace, user_dir: Any) -> int:
    """Replay a journal and recompute it, through the user's cache if there is one.

    ``Workspace.open`` keeps each user's results in ``<user_dir>/cache.sqlite``;
    with it, a media job whose outputs are still intact is reused, not run
    again (its files keep their bytes, inode and mtime), so replaying reads
    what a session made instead of making it anew. Without a cache (a copy of
    the journal alone), the recompute runs every job, as the session did.
    """
    from drafts.journal import replay

    from ..memo import Memo
    from ..recompute import recompute_derived
    from ..workspace import CACHE_NAME

    store = replay(path)
    registry = _replay_registry(path)
    cache = os.path.join(user_dir, CACHE_NAME)
    if os.path.isfile(cache):
        with contextlib.closing(Memo.open(cache)) as memo:
            state = recompute_derived(store, registry=registry, memo=memo)
    else:
        state = recompute_derived(store, registry=registry)
    if args.json:
        print(json.dumps({
            "schema_version": _schema_version(), "kind": "draftlens.replay",
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
    """Serve the session manager over HTTP (``derived.command.http``) until interrupted.

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
        uvicorn.run("derived.command.http:app_from_env", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level=args.log_level)
    return EXIT_OK


def _schema_version() -> int:
    from .runfile import SCHEMA_VERSION

    return SCHEMA_VERSION


def _versioned(kind: str, record: dict) -> dict:
    return {"schema_version": _schema_version(), "kind": kind, **record}


def _replay_registry(path: Any):
    """The built-ins, installed packages' lenses, and the lens modules the session's journal records."""
    from drafts.journal import read_journal

    from ..lensmodules import LensModuleError, entry_point_lenses, registry_with
    from ..sessionlenses import recorded_lens_modules

    try:
        groups = entry_point_lenses() + recorded_lens_modules(read_journal(path).records)
        return registry_with(groups)
    except LensModuleError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("draftlens")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0,
                        help="more diagnostics on stderr (-v info, -vv debug)")
    common.add_argument("-q", "--quiet", action="count", default=0,
                        help="errors only: no progress bar, no summary table")
    return common


def _configure_logging(verbose: int, quiet: int) -> None:
    """One stderr handler on the ``draftlens`` logger; the root logger is left to the application."""
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logger = logging.getLogger("draftlens")
    logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("draftlens: %(levelname)s: %(name)s: %(message)s"))
        logger.addHandler(handler)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (a redirected stderr is honoured)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="draftlens", description="Deterministic draft/lens evaluation: plan and run pipelines.")
    parser.add_argument("--version", action="version", version=f"draftlens {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _common_options()
    plan = sub.add_parser("plan", parents=[common], help="show what a run would do, without running anything")
    plan.add_argument("pipeline", help="pipeline file (TOML)")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument("--force", action="store_true", help="plan every job to run, whatever the cache holds")
    plan.add_argument("--no-cache", action="store_true", help="ignore the evaluation cache (neither read nor write it)")
    plan.set_defaults(run=cmd_plan)
    run = sub.add_parser("run", parents=[common], help="run a pipeline: outputs, run.json and report.html")
    run.add_argument("pipeline", help="pipeline file (TOML)")
    run.add_argument("--executor", help="serial | processes:N | dask:ADDRESS (default: the pipeline's)")
    run.add_argument("--force", action="store_true",
                     help="run every job even if it could be reused (and refresh the cache)")
    run.add_argument("--no-cache", action="store_true",
                     help="ignore the evaluation cache under the output folder (neither read nor write it)")
    run.add_argument("--json", action="store_true", help="print the run's summary as JSON instead of tables")
    run.set_defaults(run=cmd_run)
    demo = sub.add_parser("demo", parents=[common],
                          help="make sample clips, write a pipeline over them, run it, print the report path")
    demo.add_argument("directory", nargs="?", default="draftlens-demo",
                      help="where the clips, pipeline.toml and out/ go (default: ./draftlens-demo)")
    demo.add_argument("--force", action="store_true", help="write into DIR even if it is not empty")
    demo.set_defaults(run=cmd_demo)
    cache = sub.add_parser("cache", parents=[common], help="show or prune the evaluation cache")
    cache.add_argument("action", choices=["info", "prune"])
    cache.add_argument("target", help="a pipeline file (its cache is under its output folder) or a cache .sqlite")
    cache.add_argument("--keep", type=int, default=1,
                       help="prune: keep entries used in the last N opens of the cache (default 1: the last run)")
    cache.add_argument("--json", action="store_true", help="machine-readable output")
    cache.set_defaults(run=cmd_cache)
    sessions = sub.add_parser("sessions", parents=[common],
                              help="list, show, replay or set aside a user's journaled work sessions")
    sessions.add_argument("action", choices=["list", "show", "replay", "set-aside"],
                          help="set-aside renames a damaged journal to <id>.jsonl.damaged so new work can start")
    sessions.add_argument("session_id", nargs="?", help="the session (show, replay, set-aside)")
    sessions.add_argument("--root", default="logs", help="the journal root (default: ./logs)")
    sessions.add_argument("--user", help="the user id (list; optional for show/replay)")
    sessions.add_argument("--json", action="store_true", help="machine-readable output")
    sessions.set_defaults(run=cmd_sessions)
    serve = sub.add_parser("serve", parents=[common], help="serve the session manager over HTTP (needs the http extra)")
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
    _configure_logging(args.verbose, args.quiet)
    try:
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe shows up here at the latest, inside the try
        return code
    except BrokenPipeError:
        return _stdout_closed()


def _stdout_closed() -> int:
    """The reader went away (``| head``): no traceback, and nothing more to flush at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python flushes stdout again at exit; let that go nowhere
    os.close(devnull)
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
