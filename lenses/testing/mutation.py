"""Did the lens change its input, or try to? (the ``immutable-input`` rule)

``_snapshot``/``_changed`` compare a draft before and after a call;
``_mutation_attempt`` reads an exception for an attempt to change a frozen part
of the input (item assignment, ``.pop()``, setting an attribute).
"""

from __future__ import annotations

import re
from typing import Any

import attrs
from pyrsistent import PMap, PVector

from drafts.draft import Draft

_MUTATORS = frozenset({
    "__setitem__", "__delitem__", "__iadd__", "__ior__", "pop", "popitem", "clear", "setdefault", "sort",
    "reverse", "insert", "add", "discard", "__setattr__", "__delattr__",
})


_ITEM_CHANGE = re.compile(r"'([\w.]+)' object does not support item (assignment|deletion)")


def _parts(value: Any, out: dict[int, Any]) -> dict[int, Any]:
    """Every container and draft reachable from a value, by id (kept alive)."""
    if isinstance(value, (PMap, PVector, Draft)):
        if id(value) in out:
            return out
        out[id(value)] = value
        if type(value) is Draft:
            _parts(value.payload, out)
            _parts(value.meta, out)
        else:
            for v in value.values() if isinstance(value, PMap) else value:
                _parts(v, out)
    return out


def _mutation_attempt(exc: BaseException, draft: Draft | None) -> str | None:
    """Why ``exc`` is an attempt to change the input (or params), else None."""
    parts = _parts(draft, {}) if draft is not None else {}
    type_names = set()
    for part in parts.values():
        t = type(part)
        type_names.update({t.__name__, f"{t.__module__}.{t.__name__}"})
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, attrs.exceptions.FrozenError):
            return f"it set an attribute of a frozen value ({type(exc).__name__}: {exc})"
        if isinstance(exc, AttributeError) and getattr(exc, "name", None) in _MUTATORS:
            if id(getattr(exc, "obj", None)) in parts:
                return f"it called .{exc.name}() on part of its input ({type(exc).__name__}: {exc})"
        if isinstance(exc, TypeError):
            match = _ITEM_CHANGE.search(str(exc))
            if match and match.group(1) in type_names:
                return f"it tried item {match.group(2)} on part of its input (TypeError: {exc})"
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _snapshot(draft: Draft | None) -> Any:
    if draft is None:
        return None
    return (draft.id, draft.to_json(), draft.payload, draft.meta)


def _changed(before: Any, draft: Draft | None) -> str | None:
    if before is None:
        return None
    draft_id, text, payload, meta = before
    if draft.id != draft_id:
        return f"its id changed from {draft_id!r} to {draft.id!r}"
    if draft.payload is not payload or draft.meta is not meta:
        return "its payload or meta was replaced by another object"
    if draft.to_json() != text:
        return "its content changed (a nested value or draft was changed in place)"
    return None
