"""report.html: one self-contained page a video editor would rather look at than read.

Poster frames are embedded as data URIs, so the page can be mailed or moved
on its own. A small script marks each image ``data-loaded`` once it decodes
(and ``data-failed`` if it does not): the browser test reads those marks.
"""

from __future__ import annotations

import base64
import html
import mimetypes
from pathlib import Path
from typing import Any

from pyrsistent import PMap

from ..state import DerivedState
from .runfile import Sources, write_atomically

__all__ = ["write_report", "render_report"]

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222;background:#fafafa}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:1rem}
.clip{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5rem}
.clip img{width:100%;aspect-ratio:16/9;object-fit:contain;background:#111;border-radius:4px}
.clip .noimg{width:100%;aspect-ratio:16/9;background:#333;color:#bbb;display:flex;align-items:center;
 justify-content:center;border-radius:4px}
.status-ok{color:#176f2c}.status-failed{color:#b3261e;font-weight:bold}.status-dropped{color:#8a5a00;font-weight:bold}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;
 vertical-align:top}pre{white-space:pre-wrap;max-width:70ch;margin:0}code{font-size:12px}
"""

_SCRIPT = """
for (const img of document.images) {
  const mark = () => { if (img.naturalWidth > 0) img.dataset.loaded = "1"; else img.dataset.failed = "1"; };
  if (img.complete) mark(); else { img.addEventListener("load", mark); img.addEventListener("error", mark); }
}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _data_uri(path: str) -> str | None:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def _clips(state: DerivedState, pipeline: Any) -> list[dict]:
    """One row per media source frame: name, probe figures, poster, status."""
    frames: dict[str, dict] = {}
    frame_ids: dict[str, list[str]] = {}  # carrier id -> its frames' ids, by frame index
    for _, carrier_id, _ in getattr(pipeline, "sources", ()):
        carrier = pipeline.store.drafts[carrier_id]
        frame_ids[carrier_id] = [getattr(f, "id", None) for f in carrier.payload["values"]]
        for frame in carrier.payload["values"]:
            payload = getattr(frame, "payload", None)
            if isinstance(payload, PMap) and "path" in payload:
                frames[frame.id] = {"name": Path(payload["path"]).name, "duration": None, "resolution": None,
                                    "poster": None, "failures": [], "dropped": []}
    for instance_id in state.instance_ids:
        for d in state.outputs(instance_id):
            batch = d.meta.get("batch")
            clip = frames.get(batch["frameSourceDraftId"]) if batch else None
            if clip is None or not isinstance(d.payload, PMap):
                continue
            if d.payload.get("duration") is not None and clip["duration"] is None:
                clip["duration"] = d.payload["duration"]
                video = [s for s in d.payload.get("streams", ()) if s.get("codec_type") == "video"]
                if video and clip["resolution"] is None:
                    clip["resolution"] = f"{video[0].get('width')}×{video[0].get('height')}"
            path = d.payload.get("path", "")
            if clip["poster"] is None and str(path).lower().endswith((".jpg", ".jpeg", ".png")):
                clip["poster"] = path
    for job_id, result in state.results.items():
        origin = state.job_origins.get(job_id)
        if origin and result.status == "FAILED" and origin[2] in frames:
            frames[origin[2]]["failures"].append((origin[0], result.failure_class))
    # Pure-lens failures on a source's frames (media failures are counted above, from their results).
    for w in state.warnings:
        if w.code in ("lensError", "invalidOutput") and w.frame_index is not None:
            source = pipeline.store.lens_instances[w.lens_instance_id].input
            ids = frame_ids.get(source) if isinstance(source, str) else None
            if ids and w.frame_index < len(ids) and ids[w.frame_index] in frames:
                frames[ids[w.frame_index]]["failures"].append((w.lens_instance_id, w.code))
    _mark_dropped(state, pipeline, frame_ids, frames)
    return list(frames.values())


_DROPPING = ("truncatedBatchOutputs", "truncatedRecomputeOutputs")  # outputs past the cut were dropped


def _mark_dropped(state: DerivedState, pipeline: Any, frame_ids: dict, frames: dict) -> None:
    """Clips whose work caps dropped (frames past ``max_frames_evaluated``, or past the last kept output
    of a truncated batch) are marked dropped by that instance, never "ok"."""
    if not frame_ids:
        return
    for instance_id in state.instance_ids:
        batch_id = state.batch_id_by_instance.get(instance_id)
        summary = state.batch_summary_by_batch_id.get(batch_id) if batch_id else None
        source = pipeline.store.lens_instances[instance_id].input
        ids = frame_ids.get(source) if isinstance(source, str) else None
        if summary is None or not ids:
            continue
        counts = summary.outputs_per_frame
        cut = summary.frames  # frames past max_frames_evaluated were never evaluated
        if any(w.code in _DROPPING or "not_run" in w.details for w in summary.warnings):
            cut = max((i + 1 for i, n in enumerate(counts) if n), default=0)
        for index in range(cut, len(ids)):
            clip = frames.get(ids[index])
            if clip is not None and not any(i == instance_id for i, _ in clip["failures"]):
                clip["dropped"].append(instance_id)


def render_report(state: DerivedState, pipeline: Any = None) -> str:
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>draftlens report</title>"
             f"<style>{_CSS}</style></head><body>"]
    parts.append(f"<h1>draftlens report</h1><p>Plan session <code id=session-id>{_esc(state.plan.session_id)}</code>"
                 f" · {state.plan.job_count} planned jobs · {len(state.warnings)} warnings</p>")
    truncated = [w for w in state.warnings if w.code.startswith("truncated")]
    if truncated:
        parts.append("<p class=status-dropped id=truncated>Caps dropped work: " + "; ".join(
            f"{_esc(w.lens_instance_id)}: {_esc(w.message)}" for w in truncated) + "</p>")
    clips = _clips(state, pipeline)
    if clips:
        parts.append("<h2>Clips</h2><div class=grid id=clips>")
        for clip in clips:
            uri = _data_uri(clip["poster"]) if clip["poster"] else None
            placeholder = "dropped (caps)" if clip["dropped"] and not clip["failures"] else "no poster"
            image = (f"<img alt='poster of {_esc(clip['name'])}' src='{uri}'>" if uri
                     else f"<div class=noimg>{placeholder}</div>")
            status = ""
            if clip["failures"]:
                status = "<span class=status-failed>failed: " + ", ".join(
                    f"{_esc(i)} ({_esc(c)})" for i, c in clip["failures"]) + "</span> "
            if clip["dropped"]:
                status += ("<span class=status-dropped>dropped by caps: " + ", ".join(map(_esc, clip["dropped"]))
                           + "</span>")
            if not status:
                status = "<span class=status-ok>ok</span>"
            duration = f"{clip['duration']:.2f} s" if isinstance(clip["duration"], (int, float)) else "–"
            parts.append(f"<div class=clip data-name='{_esc(clip['name'])}'>{image}<div><b>{_esc(clip['name'])}</b>"
                         f"</div><div>{duration} · {_esc(clip['resolution'] or '–')}</div><div>{status}</div></div>")
        parts.append("</div>")
    failed = [r for r in state.results.values() if r.status == "FAILED"]
    parts.append(f"<h2>Failed jobs ({len(failed)})</h2>")
    if failed:
        sources = Sources(state, getattr(pipeline, "store", None))
        parts.append("<table id=failed><tr><th>instance</th><th>frame</th><th>clip</th><th>class</th><th>exit</th>"
                     "<th>message (stderr tail)</th></tr>")
        for job_id, r in state.results.items():
            if r.status != "FAILED":
                continue
            origin = state.job_origins.get(job_id, ("?", None, None))
            source = sources.of_job(job_id) or {}
            clip = source.get("name") or (source.get("draft_id") or "")[:12]
            parts.append(f"<tr class=failed-job><td>{_esc(origin[0])}</td><td>{_esc(origin[1])}</td>"
                         f"<td class=clip-name>{_esc(clip)}</td>"
                         f"<td class=failure-class>{_esc(r.failure_class)}</td><td>{_esc(r.exit_code)}</td>"
                         f"<td><pre>{_esc(r.message)}</pre></td></tr>")
        parts.append("</table>")
    parts.append(f"<h2>Warnings ({len(state.warnings)})</h2><table id=warnings><tr><th>code</th><th>instance</th>"
                 "<th>frame</th><th>message</th></tr>")
    for w in state.warnings:
        frame = "" if w.frame_index is None else w.frame_index
        parts.append(f"<tr><td>{_esc(w.code)}</td><td>{_esc(w.lens_instance_id)}</td><td>{frame}</td>"
                     f"<td>{_esc(w.message)}</td></tr>")
    parts.append("</table><h2>Batches</h2><table id=batches><tr><th>batch</th><th>instance</th><th>lens</th>"
                 "<th>frames</th><th>outputs</th><th>truncated</th></tr>")
    for batch_id, s in state.batch_summary_by_batch_id.items():
        parts.append(f"<tr><td><code>{_esc(batch_id[:12])}</code></td><td>{_esc(s.lens_instance_id)}</td>"
                     f"<td>{_esc(s.lens_id)}</td><td>{s.frames}</td><td>{s.outputs}</td><td>{s.truncated}</td></tr>")
    parts.append(f"</table><script>{_SCRIPT}</script></body></html>")
    return "".join(parts)


def write_report(path: Path, state: DerivedState, pipeline: Any = None) -> None:
    write_atomically(path, render_report(state, pipeline))
