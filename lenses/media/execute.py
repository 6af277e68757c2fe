"""Running a job plan: one FFmpeg run, verification, atomic publication.

The rule this module enforces, in one place: **a job writes only its own
temporary file and, after verification, its own final path, and it never
deletes or replaces a file it did not make** — the one exception being an
earlier output of draftlens at the same final path, with the bytes draftlens
wrote (``ledger``). Seed ``002_f460e4c8ce5728cf.txt``: execution modifies
nothing beyond creating its own outputs, and the ExecutionResult alone says
what happened.

For a job that writes a file:

1. validation — the plan's own error, then what only the run can see: the
   source still holds the bytes its draft recorded (an offline card, a
   swapped take), the output directory exists, and the final path is free or
   holds an earlier output of ours (never the source, never a foreign file);
2. execution — the plan's argv, once (no retries), writing to a temporary
   file this job created exclusively beside the final path
   (``drafts.files``) and recorded in the folder's ledger before FFmpeg
   starts (``leftovers``: what a SIGKILL leaves is then provably ours); a
   non-zero exit fails;
3. verification — the temporary file must be non-empty, whole and hold what
   the source promised (``verify``), read in-process (``written``; a file
   its reader declines by one read-only FFmpeg run on its header, the
   documented fallback); the source must not have changed while FFmpeg read
   it;
4. publication — the file is recorded in the ledger, fsync'd and moved onto
   the final path: with no-replace semantics if the path was free, and only
   if the same earlier output of ours is still there otherwise.

On any failure, and on Ctrl-C / SIGTERM, only the job's own temporary file is
removed: whatever was at the final path before stays as it was (so an
offline source never costs its existing proxy). The message of a failure
ends with the tail of FFmpeg's stderr, with pointer values and progress lines
removed so equal jobs give equal results.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from drafts.canonical import canonical_bytes
from drafts.files import create_temporary, remove_temporary
from drafts.media import MediaError, file_status_key, source_change

from ..result import COMPLETED, FAILED, ExecutionResult
from .argv import decode_argv, header_argv
from .errors import NotWhole
from .jobs import JobPlan
from .ledger import LedgerError, owner_problem, publish_recorded
from .leftovers import claim_temporary, release_temporary
from .mediainfo import (
    audio_streams_with_sound,
    first_stream,
    parse_input_dump,
    with_track_durations,
)
from .posters import video_span
from .run import RunOutcome, run_ffmpeg
from .verify import check_audio, check_proxy, check_thumbnail
from .written import read_written

__all__ = ["run_plan", "stderr_tail", "MEDIA_FIELDS", "FFMPEG_LINES"]

MEDIA_FIELDS = ("container", "duration", "duration_estimated", "start_time", "streams", "timecode")
_CHECKS = {"proxy": check_proxy, "thumbnail": check_thumbnail, "audio": check_audio}
_POINTER = re.compile(r"0x[0-9a-fA-F]{6,}")
_PROGRESS = re.compile(r"^\s*(frame|size)=")
_BLOCK_START = re.compile(r"^(Input|Output) #\d+|^Stream mapping:")
# Encoder chatter: statistics and banners of libx264/x265/libvpx/SVT-AV1, unless they report an error.
_ENCODER_NOISE = re.compile(r"^(\[(libx264|libx265|libvpx[-\w]*|libsvtav1|libopus|libmp3lame) @ [^\]]*\]|x265 \[info\]"
                            r"|Svt\[info\]|\[out#\d+/[^\]]*\] video:|\[aac @ [^\]]*\] Qavg:)")
_ERROR_WORDS = re.compile(r"error|fail|invalid|unsupported|not supported|cannot|could not|unable", re.IGNORECASE)
_CONSEQUENCES = re.compile(r"Task finished with error code|Terminating thread with return code|Press \[q\]")
_TAIL_LINES = 15
_TAIL_CHARS = 2000


def _significant(lines: list[str]) -> list[str]:
    """FFmpeg's stderr without header dumps, stream mappings, progress and encoder statistics."""
    kept: list[str] = []
    in_block = False
    for line in lines:
        if _BLOCK_START.match(line):
            in_block = True
            continue
        if in_block and line[:1] in (" ", "\t"):
            continue
        in_block = False
        if not line.strip() or _PROGRESS.match(line) or _CONSEQUENCES.search(line):
            continue
        if _ENCODER_NOISE.match(line) and not _ERROR_WORDS.search(line):
            continue
        kept.append(line)
    return kept


def stderr_tail(stderr: str) -> str:
    """FFmpeg's error lines, deterministic: the last significant lines (no dumps, no encoder
    statistics, no progress), pointer values masked so equal jobs give equal messages."""
    lines = _significant([_POINTER.sub("0x…", line.rstrip()) for line in stderr.splitlines()])
    text = "\n".join(lines[-_TAIL_LINES:])
    return text[-_TAIL_CHARS:]


FFMPEG_LINES = "--- ffmpeg stderr (last lines) ---"
"""The line of a failure message after which FFmpeg's own error lines follow (``stderr_tail``)."""


def _message(reason: str, stderr: str = "") -> str:
    tail = stderr_tail(stderr) if stderr else ""
    return f"{reason}\n{FFMPEG_LINES}\n{tail}" if tail else reason


def _result(plan: JobPlan, started: float, status: str, failure_class: str | None, message: str,
            exit_code: int | None = None, outputs: tuple = ()) -> ExecutionResult:
    return ExecutionResult(
        job_id=None, status=status, failure_class=failure_class, command=plan.argv, engine=plan.engine,
        exit_code=exit_code, outputs=outputs, message=message, duration_s=time.perf_counter() - started,
    )


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _source_problem(plan: JobPlan) -> str | None:
    source = plan.source
    return source_change(source["path"], source["size"], source["fingerprint"])


def _output_problem(plan: JobPlan) -> tuple[str | None, os.stat_result | None]:
    """Why the job may not write its final path, or ``(None, status of an earlier output of ours)``."""
    final = plan.outputs[0]
    directory = os.path.dirname(final)
    if not os.path.isdir(directory):
        return f"output directory {directory} does not exist or is not a directory (it is not created for you)", None
    if _same_file(final, plan.source["path"]) or os.path.realpath(final) == os.path.realpath(plan.source["path"]):
        return f"the output {final} is the source file itself; change naming_template or output_directory", None
    return owner_problem(final, plan.source["path"])


def _status(path: str) -> tuple | None:
    try:
        return file_status_key(path, os.stat(path))
    except OSError:
        return None


def _media_fields(info: dict[str, Any]) -> dict[str, Any]:
    return {key: info[key] for key in MEDIA_FIELDS}


def run_plan(plan: JobPlan) -> ExecutionResult:
    """Run one planned job and say what happened; never raises for a media problem.

    Interrupts (KeyboardInterrupt, SystemExit) still propagate, after the
    FFmpeg child is killed and the job's temporary file removed.
    """
    started = time.perf_counter()
    if plan.error is not None:
        return _result(plan, started, FAILED, "validation", plan.error)
    problem = _source_problem(plan)
    if problem is not None:
        return _result(plan, started, FAILED, "validation", problem)
    if plan.kind == "probe":
        return _probe(plan, started)
    problem, earlier = _output_problem(plan)
    if problem is not None:
        return _result(plan, started, FAILED, "validation", problem)
    final = plan.outputs[0]
    temp = None
    try:  # one try from before the file exists: a stop signal at any point still removes it
        try:
            fd, temp = create_temporary(os.path.dirname(final), os.path.basename(final))
        except OSError as exc:
            return _result(plan, started, FAILED, "execution",
                           f"cannot create a temporary file in {os.path.dirname(final)}: {exc.strerror or exc}")
        try:  # recorded before FFmpeg writes a byte: if this process is killed outright, the next run knows it
            claim_temporary(temp, final, fd)
        except BaseException as exc:
            os.close(fd)
            if not isinstance(exc, LedgerError):
                raise
            return _result(plan, started, FAILED, "execution",
                           f"cannot record the temporary file {temp}, so nothing was run: {exc}")
        return _write(plan, started, fd, temp, earlier)
    finally:
        if temp is not None:
            remove_temporary(temp)  # published already (then gone), or failed: never left behind
            try:
                release_temporary(temp)
            except LedgerError:  # the row now matches no file; the next sweep drops it (``leftovers``)
                pass


def _probe(plan: JobPlan, started: float) -> ExecutionResult:
    outcome = run_ffmpeg(plan.argv, die_with_parent=False)  # a header read: bounded, writes nothing (``run``)
    failed = _failed_run(plan, started, outcome)
    if failed is not None:
        return failed
    info = parse_input_dump(outcome.stderr)
    if info is not None:  # each stream's own duration where an MP4/MOV header states it
        info = with_track_durations(info, plan.source["path"])
    if info is None:
        why = f"FFmpeg opened {plan.source['path']} but printed no header dump to read"
        return _result(plan, started, FAILED, "execution", _message(why, outcome.stderr), outcome.exit_code)
    payload = ({key: plan.source[key] for key in ("path", "size", "fingerprint")} | _media_fields(info)
               | {"source_index": plan.index})
    streams = ", ".join(f"{s['codec_type']}:{s['codec_name'] or '?'}" for s in info["streams"]) or "no streams"
    return _result(plan, started, COMPLETED, None, f"probed {plan.source['path']}: {info['container']}, "
                   f"{info['duration']} s, {streams}", outcome.exit_code, (payload,))


def _failed_run(plan: JobPlan, started: float, outcome: RunOutcome) -> ExecutionResult | None:
    if outcome.exit_code is None:
        return _result(plan, started, FAILED, "execution", outcome.launch_error or "FFmpeg did not start")
    if outcome.exit_code != 0:
        missing = _missing_stream(plan, outcome.stderr)
        if missing is not None:  # the same fault a probed frame gets before the run: same class
            return _result(plan, started, FAILED, "validation", _message(missing, outcome.stderr), outcome.exit_code)
        why = f"FFmpeg exited with code {outcome.exit_code}"
        return _result(plan, started, FAILED, "execution", _message(why, outcome.stderr), outcome.exit_code)
    return None


def _missing_stream(plan: JobPlan, stderr: str) -> str | None:
    """The job needs a stream the source does not have, as FFmpeg's header read of it shows; else None."""
    info = parse_input_dump(stderr)
    if info is None or plan.kind == "probe":
        return None
    kinds = [s.get("codec_type") for s in info["streams"]]
    name = plan.source["path"]
    if plan.kind in ("proxy", "thumbnail") and first_stream(info, "video") is None:
        return f"{name}: the source has no video stream (streams: {kinds}); use media.audio for its sound"
    if plan.kind == "audio" and not audio_streams_with_sound(info):
        return f"{name}: the source has no audio stream with sound (streams: {kinds})"
    video = first_stream(info, "video")
    if plan.kind == "proxy" and plan.spec.container == "mxf" and plan.spec.fps_mode == "same-as-source":
        from .jobs import mxf_rate_problem

        problem = mxf_rate_problem(video, name)
        if problem is not None:
            return problem
    if plan.kind == "proxy" and "0:a?" in plan.argv:
        silent = [s["index"] for s in info["streams"] if s.get("codec_type") == "audio"
                  and s not in audio_streams_with_sound(info)]
        if silent:
            return (f"{name}: audio stream(s) {silent} hold no sound (a track listed with no packets), which FFmpeg "
                    "cannot map; give the proxy a media.probe output (then only audio with sound is mapped), "
                    "or set audio=False")
    return None


def _write(plan: JobPlan, started: float, fd: int, temp: str, earlier: os.stat_result | None) -> ExecutionResult:
    source_before = _status(plan.source["path"])
    try:
        outcome = run_ffmpeg(plan.argv, stdout=fd)
    finally:
        os.close(fd)
    failed = _failed_run(plan, started, outcome)
    if failed is not None:
        return failed
    if _status(plan.source["path"]) != source_before:
        return _result(plan, started, FAILED, "verification",
                       f"{plan.source['path']}: the source changed or went offline while FFmpeg read it (a copy still "
                       "being written, a card unplugged); nothing was published",
                       outcome.exit_code)
    checked = _verify(plan, outcome, temp)
    if isinstance(checked, str):
        failure = "validation" if isinstance(checked, _Refused) else "verification"
        return _result(plan, started, FAILED, failure, checked, outcome.exit_code)
    summary, info = checked
    final = plan.outputs[0]
    try:
        payload = _publish(plan, temp, final, info, earlier)
    except FileExistsError:
        return _result(plan, started, FAILED, "execution",
                       f"{final} was created by someone else while the job ran; it is left as it is and nothing "
                       "was published", outcome.exit_code)
    except (OSError, MediaError) as exc:
        return _result(plan, started, FAILED, "execution", f"could not publish {final}: {exc}", outcome.exit_code)
    return _result(plan, started, COMPLETED, None, f"verified {final}: {summary}", outcome.exit_code, (payload,))


class _Refused(str):
    """A finding of ``_verify`` that is the spec's fault, not the source's: the job fails validation."""


def _past_the_end(plan: JobPlan, source_info: dict) -> str | None:
    """A plain draft's poster asked at or past the video's end, as FFmpeg's read of the source this run shows."""
    if plan.kind != "thumbnail" or plan.spec.time_offset is None:
        return None
    end = video_span(source_info).end
    if end is None or plan.spec.time_offset < end:
        return None
    return (f"{plan.source['path']}: time_offset {plan.spec.time_offset} s is not before the end of the video "
            f"({end} s)")


def _verify(plan: JobPlan, outcome: RunOutcome, temp: str) -> str | tuple[str, dict]:
    source_info = parse_input_dump(outcome.stderr)
    if source_info is not None:
        source_info = with_track_durations(source_info, plan.source["path"])
    if source_info is None:
        return _message("FFmpeg printed no header dump of the source, so the output cannot be checked against it",
                        outcome.stderr)
    try:
        size = os.path.getsize(temp)
    except OSError:
        size = 0
    if size == 0:
        late = _past_the_end(plan, source_info)
        if late is not None:  # the same fault a probed frame gets before the run: same class
            return _Refused(_message(late, outcome.stderr))
        return _message("FFmpeg exited 0 but wrote nothing (e.g. a seek past the end, or no matching stream)",
                        outcome.stderr)
    try:
        info, fallback = read_written(plan.kind, plan.spec, temp, outcome.stderr)
    except NotWhole as exc:
        return _message(f"the output is not a whole {plan.spec.extension} file: {exc}", outcome.stderr)
    if info is None:  # the documented fallback: FFmpeg reads the header it wrote (one more process)
        check = run_ffmpeg(header_argv(plan.engine_path, temp), die_with_parent=False)
        info = parse_input_dump(check.stderr) if check.exit_code is not None else None
        if info is None:
            return _message("the output does not probe (FFmpeg could not read its header)", check.stderr)
    checked = _CHECKS[plan.kind](plan.spec, source_info, info)
    if checked.problems:
        return _message("the output does not match the source: " + "; ".join(checked.problems), outcome.stderr)
    if checked.needs_decode:
        decoded = run_ffmpeg(decode_argv(plan.engine_path, temp))
        errors = stderr_tail(decoded.stderr)
        if decoded.exit_code != 0 or errors:
            return _message(f"the output does not decode cleanly (FFmpeg exit code {decoded.exit_code}), and the "
                            "source states no duration to check it against", decoded.stderr)
    return checked.summary + (f" ({fallback})" if fallback else ""), info


def _job_key(plan: JobPlan) -> str:
    """What made a file: the exact argv and the source's fingerprint (for the ledger)."""
    from hashlib import blake2b

    data = canonical_bytes([list(plan.argv), plan.source["fingerprint"]])
    return f"{plan.kind}:{blake2b(data, digest_size=16).hexdigest()}"


def _publish(plan: JobPlan, temp: str, final: str, info: dict[str, Any],
             earlier: os.stat_result | None) -> dict[str, Any]:
    size, fingerprint = publish_recorded(temp, final, earlier, _job_key(plan), plan.source["path"])
    return ({"path": final, "size": size, "fingerprint": fingerprint} | _media_fields(info)
            | {"source_index": plan.index})
