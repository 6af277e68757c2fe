"""Output claims: every media job's final path, checked across the whole store.

Before anything runs, the plan knows the final path of every media job it can
describe. Two jobs anywhere in the store (any instances, any sources) that
would write one file both fail validation, each naming the other; a job whose
final path is — after resolving links — any media source in the store fails
validation naming that source. Nothing is written for either.

Jobs of an instance that reads another instance's outputs are described only
when those outputs exist; their paths are checked then, against every path
claimed so far (and an earlier job that already ran keeps its result: the
later one fails, naming it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from pyrsistent import PMap

from drafts.carrier import is_packed_carrier
from drafts.draft import Draft
from drafts.media import MEDIA_KEYS

__all__ = ["Claims", "media_source_paths", "who"]

def who(instance_id: str, frame_index: int | None) -> str:
    """How a job is named in messages."""
    if frame_index is None:
        return f"instance {instance_id!r}"
    return f"instance {instance_id!r} frame {frame_index}"


def _media_path(value: Any) -> str | None:
    payload = value.payload if isinstance(value, Draft) else value
    if isinstance(payload, (PMap, Mapping)) and all(k in payload for k in MEDIA_KEYS):
        path = payload["path"]
        if isinstance(path, str) and os.path.isabs(path):
            return path
    return None


def media_source_paths(drafts: Iterable[Draft]) -> dict[str, str]:
    """``{resolved path: path as given}`` of every media file the drafts name (carrier frames too)."""
    found: dict[str, str] = {}
    for draft in drafts:
        values = [draft]
        if is_packed_carrier(draft):
            frames = draft.payload.get("values")
            if isinstance(frames, Iterable):
                values.extend(frames)
        for value in values:
            path = _media_path(value)
            if path is not None:
                found.setdefault(os.path.realpath(path), path)
    return found


class Claims:
    """Which job will write which path (keyed by resolved path), and the store's media sources."""

    def __init__(self, sources: Mapping[str, str]):
        self.sources = dict(sources)
        self.claimed: dict[str, list[tuple[str, str]]] = {}  # resolved path -> [(who, path as given)]

    def check(self, jobs: list[tuple[str, str]]) -> dict[int, str]:
        """Claim ``(who, final path)`` for each job: ``{job position: validation error}`` for those that may not write.

        Jobs checked in one call collide with each other and all fail; a job
        that collides with a claim of an earlier call fails alone (the earlier
        job may have run already, and its result stands).
        """
        errors: dict[int, str] = {}
        new: dict[str, list[int]] = {}
        for position, (_, path) in enumerate(jobs):
            resolved = os.path.realpath(path)
            source = self.sources.get(resolved)
            if source is not None:
                errors[position] = (f"the output {path} would replace the media source {source}, which this store "
                                    "reads; change naming_template or output_directory")
            new.setdefault(resolved, []).append(position)
        for resolved, positions in new.items():
            earlier = self.claimed.get(resolved, [])
            writers = [jobs[p][0] for p in positions]
            if len(positions) + len(earlier) > 1:
                everyone = [w for w, _ in earlier] + writers
                for position in positions:
                    others = [w for w in everyone if w != jobs[position][0]]
                    errors.setdefault(position, (
                        f"{jobs[position][1]} would also be written by {', '.join(others)}; every job needs its "
                        "own output: change naming_template (e.g. add {index}) or output_directory"))
            self.claimed.setdefault(resolved, []).extend((jobs[p][0], jobs[p][1]) for p in positions)
        return errors
