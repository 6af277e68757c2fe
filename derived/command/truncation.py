"""What the caps will drop, said from a plan before anything runs.

``caps_notes(session, caps)`` reads a ``BatchPlanSession`` and lists, per lens
instance, every cap that will (or may) truncate its work. ``draftlens plan``
prints them and ``plan --json`` carries them, so nobody learns about a
truncation from a finished run.

The notes come from bounds, walked in plan order (the order assembly spends
the caps in, ``derived.assemble``): for each instance the least and the most
frames it evaluates, outputs it yields and outputs it keeps, and the least and
the most of ``max_total_drafts_per_recompute`` left before it. What the bounds
rest on:

- a frame of a carrier in the store is known; an instance over
  ``OutputOf(X)`` has as many frames as X keeps outputs (within X's bounds);
- a media lens (one with ``describe``) yields exactly one output per frame
  that completes (``derived.schedule._media_rounds`` relies on the same
  rule); a frame the plan already knows fails validation yields none;
- a pure lens yields 0 to ``max_drafts_emitted_per_frame`` outputs per frame,
  and a non-batched pure call 0 to ``max_total_drafts_per_recompute``;
- an outcome the memo holds (the job is ``reused``) yields exactly what it did.

``certain`` (printed "will") means the cap truncates whatever the pure lenses
yield, in every run where no job fails: a failed media job frees what its
output would have taken, and frames past a cap then run to replace it (such a
run exits 1, failed, anyway). "may" means some outcome of the lenses leads to
a truncation and some does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drafts.store import OutputOf

from ..caps import Caps
from ..plan import CHUNK_FRAMES

__all__ = ["caps_notes"]


def _span(lo: int, hi: int, unit: str) -> str:
    return f"{lo} {unit}" if lo == hi else f"{lo} to {hi} {unit}"


def _left(lo: int, hi: int) -> str:
    if hi == 0:
        return "none"
    return f"only {hi}" if lo == hi else f"{lo} to {hi}"


def _frame_yields(ip: Any, caps: Caps) -> tuple[int, int]:
    """``(least, most)`` outputs the evaluated frames of a batch in the store yield.

    After the per-frame cap for a pure lens; a media frame counts its one
    output even when ``max_drafts_emitted_per_frame`` is 0 (the run then names
    whichever cap is tightest, ``derived.assemble.media_keep``).
    """
    fp = ip.frames
    per_frame = caps.max_drafts_emitted_per_frame
    media = ip.lens.describe is not None
    lo = hi = 0
    for chunk_no, start in enumerate(range(0, len(fp.drafts), CHUNK_FRAMES)):
        end = min(start + CHUNK_FRAMES, len(fp.drafts))
        chunk = fp.cached_chunks[chunk_no] if chunk_no < len(fp.cached_chunks) else None
        if chunk is not None:  # reused whole: exactly what it made
            lo += len(chunk.flat)
            hi += len(chunk.flat)
            continue
        for index in range(start, end):
            cached = fp.cached_calls[index] if index < len(fp.cached_calls) else None
            described = fp.described[index] if index < len(fp.described) else None
            if cached is not None:
                n = 0 if cached.error_code is not None else min(len(cached.outputs), per_frame)
                lo, hi = lo + n, hi + n
            elif described and "error" in described:
                continue  # fails validation: never runs, no output
            elif media:  # its one output, if it completes (max_drafts_emitted_per_frame = 0 is noted apart)
                lo, hi = lo + 1, hi + 1
            else:
                hi += per_frame
    return lo, hi


def caps_notes(session: Any, caps: Caps, singles: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """``[{"instance", "cap", "certain", "message"}, ...]`` in plan order.

    ``session`` is a ``BatchPlanSession``; ``singles`` (optional, from
    ``derived.plan.build_plan``) maps a non-batched instance to its
    ``(call key, cached outcome or None, describe dict)``, so a reused call
    counts exactly. ``cap`` names a field of ``Caps``; ``certain`` is True
    when the cap truncates in every run where no job fails (see the module
    docstring for the bounds this rests on), False when it truncates for some
    outcomes of the lenses only. An instance that will not run (a problem in
    the plan) gets no note.
    """
    singles = singles or {}
    notes: list[dict[str, Any]] = []
    recompute = caps.max_total_drafts_per_recompute
    keep = caps.max_total_drafts_per_batch
    per_frame = caps.max_drafts_emitted_per_frame
    limit = caps.max_frames_evaluated
    left_lo = left_hi = recompute  # of max_total_drafts_per_recompute, before the next instance
    kept: dict[str, tuple[int, int]] = {}  # instance -> (least, most) outputs it keeps

    for ip in session._instances:
        if ip.problem is not None:
            kept[ip.instance_id] = (0, 0)
            continue
        media = ip.lens.describe is not None
        iid = ip.instance_id

        def note(cap: str, certain: bool, message: str, _id: str = iid) -> None:
            notes.append({"instance": _id, "cap": cap, "certain": certain, "message": message})

        upstream = ip.source.instance_id if isinstance(ip.source, OutputOf) else None
        origin = f" (the outputs of {upstream!r})" if upstream is not None else ""
        if ip.batched:
            if upstream is None:  # a carrier in the store: its frames are known
                total_lo = total_hi = ip.frames.total
                frames_lo = frames_hi = len(ip.frames.drafts)
                yields_lo, yields_hi = _frame_yields(ip, caps)
            else:  # as many frames as the upstream keeps outputs
                total_lo, total_hi = kept[upstream]
                frames_lo, frames_hi = min(total_lo, limit), min(total_hi, limit)
                yields_lo, yields_hi = (frames_lo, frames_hi) if media else (0, frames_hi * per_frame)
            if total_hi > limit:
                if total_lo > limit:
                    note("max_frames_evaluated", True,
                         f"{_span(total_lo, total_hi, 'frames')}{origin}; only the first {limit} are evaluated "
                         "(max_frames_evaluated)")
                else:
                    note("max_frames_evaluated", False,
                         f"{_span(total_lo, total_hi, 'frames')}{origin}; if more than {limit}, only the first "
                         f"{limit} are evaluated (max_frames_evaluated)")
            if per_frame == 0 and (yields_hi if media else frames_hi) > 0:
                note("max_drafts_emitted_per_frame", media and yields_lo > 0,
                     f"{_span(frames_lo, frames_hi, 'frames')}{origin} but a frame keeps 0 outputs "
                     "(max_drafts_emitted_per_frame = 0): every output they yield is dropped")
            if yields_hi > keep:
                frames = _span(frames_lo, frames_hi, "frames") + origin
                if media and yields_lo > keep:
                    note("max_total_drafts_per_batch", True,
                         f"{frames}, one output each, but a batch keeps {keep} (max_total_drafts_per_batch): "
                         f"at most {keep} clips are processed; the frames past them run only to replace failed "
                         "ones")
                elif media:
                    note("max_total_drafts_per_batch", False,
                         f"{frames}, one output each, but a batch keeps {keep} (max_total_drafts_per_batch): "
                         f"if more than {keep} complete, those past {keep} are not run")
                elif yields_lo > keep:
                    note("max_total_drafts_per_batch", True,
                         f"{frames} yield {'' if yields_lo == yields_hi else 'at least '}{yields_lo} outputs "
                         f"(the cache holds them), but a batch keeps {keep} (max_total_drafts_per_batch): those "
                         f"past {keep} are dropped")
                elif frames_hi > keep:
                    note("max_total_drafts_per_batch", False,
                         f"{frames} but a batch keeps {keep} outputs (max_total_drafts_per_batch): if every frame "
                         f"yields an output, those past {keep} are dropped")
                else:
                    note("max_total_drafts_per_batch", False,
                         f"{frames}, up to {per_frame} outputs each (max_drafts_emitted_per_frame), but a batch "
                         f"keeps {keep} (max_total_drafts_per_batch): if they yield more than {keep} in all, "
                         f"those past {keep} are dropped")
            want_lo, want_hi = min(yields_lo, keep), min(yields_hi, keep)
        else:  # one call: of a draft, of nothing, or of the upstream's outputs packed into a carrier
            _, cached, described = singles.get(iid, (None, None, None))
            if cached is not None:
                n = 0 if cached.error_code is not None else len(cached.outputs)
                want_lo = want_hi = min(n, recompute)
            elif described and "error" in described:
                want_lo = want_hi = 0
            elif media:
                want_lo = want_hi = 1
            else:
                want_lo, want_hi = 0, recompute
        if want_hi > left_lo:
            if media and ip.batched:
                wanted = f"{_span(want_lo, want_hi, 'outputs')}, one per frame{origin},"
            elif ip.batched:
                wanted = f"{_span(want_lo, want_hi, 'outputs')} from {_span(frames_lo, frames_hi, 'frames')}{origin}"
            else:
                wanted = f"{_span(want_lo, want_hi, 'outputs')} from one call{origin}"
            left = _left(left_lo, left_hi)
            certain = want_lo > left_hi
            end = (f"it keeps {'none' if left_hi == 0 else f'at most {left_hi}'}" if certain
                   else "if it yields more than are left, the rest are dropped")
            note("max_total_drafts_per_recompute", certain,
                 f"{wanted} but {left} of the recompute's {recompute} outputs (max_total_drafts_per_recompute) "
                 f"{'is' if left == 'only 1' else 'are'} left for it after the instances before it: {end}")
        if media and ip.batched and per_frame == 0:
            want_lo = want_hi = 0  # noted above: a media frame keeps none
        out_lo, out_hi = min(want_lo, left_lo), min(want_hi, left_hi)
        kept[iid] = (out_lo, out_hi)
        left_lo, left_hi = max(0, left_lo - want_hi), max(0, left_hi - want_lo)
    return notes

