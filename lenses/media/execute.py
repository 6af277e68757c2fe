"""Running a job plan: one FFmpeg run, verification, atomic publication.

For a job that writes a file:

1. validation — the plan's own error, then what only the run can see: the
   source is still there with the size the draft recorded, the output
   directory exists, the output is not the source;
2. execution — the plan's argv, once (no retries), writing
   ``<stem>.partial.<ext>`` beside the final path; a non-zero exit fails;
3. verification — the partial file must exist, probe (one read-only FFmpeg
   run on its header) and hold what the source promised (``verify``);
4. publication — fsync, fingerprint, ``os.replace`` onto the final path.

On any failure the partial file is deleted and nothing is left at the final
path (an older file there is removed too: a FAILED job has no output). The
result is an ExecutionResult either way; its message ends with the tail of
FFmpeg's stderr, with pointer values and progress lines removed so equal jobs
give equal results.
"""

from __future__ import annotations

import os
import re
import stat
import time
from typing import Any

from drafts.media import MediaError, fingerprint_file

from ..result import COMPLETED, FAILED, ExecutionResult
from .argv import header_argv
from .jobs import JobPlan
from .mediainfo import parse_input_dump
from .run import RunOutcome, run_ffmpeg
from .verify import check_audio, check_proxy, check_thumbnail

__all__ = ["run_plan", "stderr_tail", "MEDIA_FIELDS"]

MEDIA_FIELDS = ("container", "duration", "start_time", "streams", "timecode")
_CHECKS = {"proxy": check_proxy, "thumbnail": check_thumbnail, "audio": check_audio}
_POINTER = re.compile(r"0x[0-9a-fA-F]{6,}")
_PROGRESS = re.compile(r"^\s*(frame|size)=")
_TAIL_LINES = 15
_TAIL_CHARS = 2000


def stderr_tail(stderr: str) -> str:
    """The last lines of FFmpeg's stderr, made deterministic (no pointers, no progress)."""
    lines = [_POINTER.sub("0x…", line.rstrip()) for line in stderr.splitlines()]
    lines = [line for line in lines if line.strip() and not _PROGRESS.match(line)]
    text = "\n".join(lines[-_TAIL_LINES:])
    return text[-_TAIL_CHARS:]


def _message(reason: str, stderr: str = "") -> str:
    tail = stderr_tail(stderr) if stderr else ""
    return f"{reason}\n--- ffmpeg stderr (last lines) ---\n{tail}" if tail else reason


def _result(plan: JobPlan, started: float, status: str, failure_class: str | None, message: str,
            exit_code: int | None = None, outputs: tuple = ()) -> ExecutionResult:
    return ExecutionResult(
        job_id=None, status=status, failure_class=failure_class, command=plan.argv, engine=plan.engine,
        exit_code=exit_code, outputs=outputs, message=message, duration_s=time.perf_counter() - started,
    )


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:  # gone already, or never creatable: nothing is there
        pass


def _cleanup(plan: JobPlan) -> None:
    for partial in plan.partials:
        _remove(partial)
    for final in plan.outputs:
        if not _is_source(plan, final):
            _remove(final)


def _is_source(plan: JobPlan, path: str) -> bool:
    try:
        return os.path.samefile(path, plan.source["path"])
    except OSError:
        return False


def _source_problem(plan: JobPlan) -> str | None:
    path, size = plan.source["path"], plan.source["size"]
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"{path}: the source has vanished since it was ingested"
    except OSError as exc:
        return f"{path}: the source cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        return f"{path}: the source is no longer a regular file"
    if st.st_size != size:
        return f"{path}: the source changed since it was ingested (now {st.st_size} bytes, the draft says {size}); make a new media_draft"
    return None


def _output_problem(plan: JobPlan) -> str | None:
    for final in plan.outputs:
        directory = os.path.dirname(final)
        if not os.path.isdir(directory):
            return f"output directory {directory} does not exist or is not a directory (it is not created for you)"
        if _is_source(plan, final):
            return f"the output {final} is the source file itself; change naming_template or output_directory"
    return None


def _media_fields(info: dict[str, Any]) -> dict[str, Any]:
    return {key: info[key] for key in MEDIA_FIELDS}


def run_plan(plan: JobPlan) -> ExecutionResult:
    """Run one planned job and say what happened; never raises for a media problem."""
    started = time.perf_counter()
    if plan.error is not None:
        return _result(plan, started, FAILED, "validation", plan.error)
    problem = _source_problem(plan) or _output_problem(plan)
    if problem is not None:
        _cleanup(plan)
        return _result(plan, started, FAILED, "validation", problem)
    try:
        return _run(plan, started)
    except BaseException:
        _cleanup(plan)
        raise


def _run(plan: JobPlan, started: float) -> ExecutionResult:
    outcome = run_ffmpeg(plan.argv)
    if outcome.exit_code is None:
        _cleanup(plan)
        return _result(plan, started, FAILED, "execution", outcome.launch_error or "FFmpeg did not start")
    if outcome.exit_code != 0:
        _cleanup(plan)
        why = f"FFmpeg exited with code {outcome.exit_code}"
        return _result(plan, started, FAILED, "execution", _message(why, outcome.stderr), outcome.exit_code)
    source_info = parse_input_dump(outcome.stderr)
    if plan.kind == "probe":
        return _probe_result(plan, started, outcome, source_info)
    failure = _verify(plan, outcome, source_info)
    if isinstance(failure, str):
        _cleanup(plan)
        return _result(plan, started, FAILED, "verification", failure, outcome.exit_code)
    summary, info = failure
    try:
        payload = _publish(plan, info)
    except (OSError, MediaError) as exc:
        _cleanup(plan)
        return _result(plan, started, FAILED, "execution", f"could not publish {plan.outputs[0]}: {exc}",
                       outcome.exit_code)
    return _result(plan, started, COMPLETED, None, f"verified {plan.outputs[0]}: {summary}", outcome.exit_code,
                   (payload,))


def _probe_result(plan: JobPlan, started: float, outcome: RunOutcome, info: dict | None) -> ExecutionResult:
    if info is None:
        why = f"FFmpeg opened {plan.source['path']} but printed no header dump to read"
        return _result(plan, started, FAILED, "execution", _message(why, outcome.stderr), outcome.exit_code)
    payload = {key: plan.source[key] for key in ("path", "size", "fingerprint")} | _media_fields(info)
    streams = ", ".join(f"{s['codec_type']}:{s['codec_name'] or '?'}" for s in info["streams"]) or "no streams"
    return _result(plan, started, COMPLETED, None, f"probed {plan.source['path']}: {info['container']}, "
                   f"{info['duration']} s, {streams}", outcome.exit_code, (payload,))


def _verify(plan: JobPlan, outcome: RunOutcome, source_info: dict | None) -> str | tuple[str, dict]:
    partial = plan.partials[0]
    if source_info is None:
        return _message("FFmpeg printed no header dump of the source, so the output cannot be checked against it",
                        outcome.stderr)
    try:
        size = os.path.getsize(partial)
    except OSError:
        size = 0
    if size == 0:
        return _message(f"FFmpeg exited 0 but wrote nothing to {partial} (e.g. a seek past the end, or no "
                        "matching stream)", outcome.stderr)
    check = run_ffmpeg(header_argv(plan.engine_path, partial))
    info = parse_input_dump(check.stderr) if check.exit_code is not None else None
    if info is None:
        return _message(f"the output {partial} does not probe (FFmpeg could not read its header)", check.stderr)
    problems, summary = _CHECKS[plan.kind](plan.spec, source_info, info)
    if problems:
        return _message("the output does not match the source: " + "; ".join(problems), outcome.stderr)
    return summary, info


def _publish(plan: JobPlan, info: dict[str, Any]) -> dict[str, Any]:
    partial, final = plan.partials[0], plan.outputs[0]
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)  # the bytes are durable before the final name points at them
    finally:
        os.close(fd)
    size, fingerprint = fingerprint_file(partial)
    os.replace(partial, final)
    return {"path": final, "size": size, "fingerprint": fingerprint} | _media_fields(info)
