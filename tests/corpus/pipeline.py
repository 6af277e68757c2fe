"""Run the four media lenses over corpus files, the way a user would, and say what happened per file.

One store: the files as media drafts packed into one carrier, ``media.probe``
on it, ``media.proxy`` and ``media.audio`` on it, and ``media.thumbnail`` on
the probe outputs (``OutputOf("probe")``), then one ``recompute_derived``.
Each result is traced back to its file through ``DerivedState.job_origins``
(the input draft of the job carries the file's path).
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

LENSES = ("probe", "proxy", "thumbnail", "audio")
NOT_RUN = "NOT_RUN"
"""The table entry of a thumbnail whose probe failed: no probe output, so no thumbnail job."""


@attrs.frozen
class Outcome:
    """What one lens did for one file: ``status`` COMPLETED or FAILED, failure class, message, output paths."""

    status: str
    failure_class: str | None
    message: str
    outputs: tuple[str, ...]

    @property
    def label(self) -> str:
        """``"COMPLETED"`` or ``"FAILED:<class>"``: the entry of the expectations table."""
        return self.status if self.failure_class is None else f"{self.status}:{self.failure_class}"

    @property
    def first_line(self) -> str:
        return next((line for line in self.message.splitlines() if line.strip()), "")


def specs(outdir: Path) -> dict:
    """The specs of the corpus run, one output folder per lens (created here)."""
    from lenses.media import AudioSpec, ProxySpec, ThumbnailSpec

    folders = {name: outdir / name for name in ("proxy", "thumbnail", "audio")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "proxy": ProxySpec("h264", "mp4", "half", "{source_name}_{index}", str(folders["proxy"])),
        "thumbnail": ThumbnailSpec("{source_name}_{index}", str(folders["thumbnail"]), time_fraction=0.5,
                                   size="320", image_format="jpg"),
        "audio": AudioSpec("pcm_s16le", "same", "same", "wav", "{source_name}_{index}", str(folders["audio"])),
    }


def run_corpus(paths: list[Path], outdir: Path, executor=None) -> dict[str, dict[str, Outcome]]:
    """``{file name: {lens: Outcome}}`` for every file; a thumbnail that had no job is absent.

    ``paths`` are absolute paths of distinct file names. ``executor`` is passed
    to ``recompute_derived`` (default serial).
    """
    from derived import recompute_derived
    from drafts import OutputOf, Store, media_draft, pack_drafts

    spec = specs(outdir)
    clips = pack_drafts([media_draft(str(p)) for p in paths])
    store = (Store.empty().add_draft(clips)
             .add_lens_instance("probe", "media.probe", clips.id)
             .add_lens_instance("proxy", "media.proxy", clips.id, spec["proxy"])
             .add_lens_instance("thumbnail", "media.thumbnail", OutputOf("probe"), spec["thumbnail"])
             .add_lens_instance("audio", "media.audio", clips.id, spec["audio"]))
    state = recompute_derived(store, executor=executor)

    by_path = {str(p): p.name for p in paths}
    drafts = {d.id: d for d in clips.payload["values"]}
    drafts.update({d.id: d for d in state.outputs("probe")})
    table: dict[str, dict[str, Outcome]] = {p.name: {} for p in paths}
    for job_id, result in state.results.items():
        instance, frame, input_id = state.job_origins[job_id]
        source = drafts[input_id].payload["path"] if input_id in drafts else str(paths[frame])
        name = by_path[source]
        if instance in table[name]:
            raise AssertionError(f"two {instance} results for {name}")
        table[name][instance] = Outcome(
            status=str(result.status),
            failure_class=result.failure_class,
            message=result.message or "",
            outputs=tuple(payload["path"] for payload in result.outputs),
        )
    return table


def labels(table: dict[str, dict[str, Outcome]]) -> dict[str, dict[str, str]]:
    """The expectations-table form: ``{file: {lens: "COMPLETED" | "FAILED:<class>" | "NOT_RUN"}}``."""
    return {name: {lens: (row[lens].label if lens in row else NOT_RUN) for lens in LENSES}
            for name, row in sorted(table.items())}


def decode_errors(path: str, ffmpeg: str) -> str:
    """FFmpeg's error output for a full decode of ``path`` (``-v error -xerror ... -f null -``); "" when clean."""
    import subprocess

    done = subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-xerror", "-i", path, "-f", "null", "-"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0 or done.stderr.strip():
        return f"exit {done.returncode}: {done.stderr.strip()[-2000:]}"
    return ""


def corpus_paths(manifest: dict, cache: Path) -> tuple[list[Path], list[str]]:
    """The manifest files the cache holds (verified), and the ids it does not."""
    from tests.corpus.fetch import cached_ok, file_path

    present, missing = [], []
    for entry in manifest["files"]:
        (present if cached_ok(entry, cache) else missing).append(entry["id"])
    return [Path(os.path.abspath(file_path({"id": i}, cache))) for i in present], missing


_ERROR_WORDS = ("error", "invalid", "does not match", "unsupported", "not supported", "not implemented", "failed",
                "could not", "cannot", "no such")
_NOT_ERRORS = ("Stream #", "Input #", "Output #", "Duration:", "Metadata:", "Replay Gain", "muxing overhead")


def cause(outcome: Outcome) -> str:
    """The first line of a failure message, plus FFmpeg's first error line when the message carries its stderr."""
    lines = outcome.message.splitlines()
    head = outcome.first_line
    marker = next((i for i, line in enumerate(lines) if line.startswith("--- ffmpeg stderr")), None)
    if marker is None:
        return head
    errors = [line.strip() for line in lines[marker + 1:]
              if any(w in line.lower() for w in _ERROR_WORDS) and not any(n in line for n in _NOT_ERRORS)]
    return f"{head} / {errors[0]}" if errors else f"{head} / (no FFmpeg error line in the message)"
