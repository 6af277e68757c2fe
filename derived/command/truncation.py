"""What the caps will drop, said from a plan before anything runs.

``caps_notes(session, caps)`` reads a ``BatchPlanSession`` and lists, per lens
instance, every cap that will (or, for a lens whose output count is unknown
until it runs, may) truncate its batch. ``draftlens plan`` prints them and
``plan --json`` carries them, so nobody learns about a truncation from a
finished run. A media lens yields at most one output per frame, so for it
the notes are exact: frames past the cap run only to replace failed ones.
"""

from __future__ import annotations

from typing import Any

from ..caps import Caps

__all__ = ["caps_notes"]


def caps_notes(session: Any, caps: Caps) -> list[dict[str, Any]]:
    """``[{"instance", "cap", "certain", "message"}, ...]`` in plan order.

    ``certain`` is True when the cap truncates whatever the lens yields (too
    many frames for ``max_frames_evaluated``; more frames than a media lens
    may keep), False when it depends on how many outputs the frames yield.
    Instances that read another instance's outputs have no frame count until
    they run: they get no note here, and a truncation still shows in the run.
    """
    notes: list[dict[str, Any]] = []
    frames_total = 0
    for ip in session._instances:
        if ip.problem is not None or not ip.batched or ip.frames is None:
            continue
        fp = ip.frames
        evaluated = len(fp.drafts)
        frames_total += evaluated

        def note(cap: str, certain: bool, message: str, _id: str = ip.instance_id) -> None:
            notes.append({"instance": _id, "cap": cap, "certain": certain, "message": message})

        if fp.total > evaluated:
            note("max_frames_evaluated", True,
                 f"{fp.total} frames; only the first {evaluated} are evaluated (max_frames_evaluated)")
        keep = caps.max_total_drafts_per_batch
        if evaluated > keep:
            if ip.lens.describe is not None:
                note("max_total_drafts_per_batch", True,
                     f"{evaluated} frames, one output each, but a batch keeps {keep} "
                     f"(max_total_drafts_per_batch): at most {keep} clips are processed; the frames past "
                     "them run only to replace failed ones")
            else:
                note("max_total_drafts_per_batch", False,
                     f"{evaluated} frames but a batch keeps {keep} outputs (max_total_drafts_per_batch): "
                     f"if every frame yields an output, those past {keep} are dropped")
    if frames_total > caps.max_total_drafts_per_recompute:
        notes.append({"instance": None, "cap": "max_total_drafts_per_recompute", "certain": False,
                      "message": f"{frames_total} frames in all but a recompute keeps "
                                 f"{caps.max_total_drafts_per_recompute} outputs (max_total_drafts_per_recompute)"})
    return notes
