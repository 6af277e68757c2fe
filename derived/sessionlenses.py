"""Lenses of your own in journaled sessions: record where they came from, import them on replay.

A journaled ``Workspace.apply`` of a lens that is not built in adds the
optional field ``lens_module`` (``{"module": name, "path": folder}``, from
``lensmodules.lens_origin``) to its ``add_lens_instance`` record;
``draftlens sessions replay`` imports those modules (each folder first on the
import path) before it recomputes, so the replayed session finds its lenses
instead of reporting ``unknownLens``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lenses.lens import Lens
from lenses.registry import Registry

from .lensmodules import import_lens_modules, lens_origin

__all__ = ["LENS_MODULE_FIELD", "origin_fields", "recorded_lens_modules"]

LENS_MODULE_FIELD = "lens_module"


def origin_fields(registry: Registry, lens_id: str) -> dict[str, Any]:
    """``{"lens_module": origin}`` for a lens of the user's own, ``{}`` for a built-in one."""
    lens: Lens = registry.get(lens_id)
    origin = lens_origin(lens)
    return {LENS_MODULE_FIELD: origin} if origin is not None else {}


def recorded_lens_modules(records: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, tuple[Lens, ...]], ...]:
    """Import every module the records name (once each, in first-seen order) and return their lenses.

    Errors: ``LensModuleError`` naming the module and the journal field when a
    module can no longer be imported.
    """
    seen: dict[str, str | None] = {}
    for record in records:
        origin = record.get(LENS_MODULE_FIELD) if record.get("op") == "add_lens_instance" else None
        if isinstance(origin, Mapping) and origin.get("module") not in seen:
            seen[origin["module"]] = origin.get("path")
    groups = []
    for module, path in seen.items():
        groups.extend(import_lens_modules([module], Path(path) if path else None, f"journal {LENS_MODULE_FIELD}"))
    return tuple(groups)
