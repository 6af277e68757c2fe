"""Did the lens change its input, or try to? (the ``immutable-input`` rule)

``_snapshot``/``_changed`` compare a draft before and after a call;
``_mutation_attempt`` reads an exception that escaped the lens for an attempt
to change a frozen part of the input (item assignment, ``.pop()``, setting an
attribute); ``_watching`` sees every such attempt made during a call, also one
the lens catches and ignores (``try: draft.payload["x"] = 1`` /
``except Exception: pass``).

``_watching`` traces the call (``sys.settrace``, for this thread, only while
the lens runs under ``check_lens``): each exception raised in Python code is
looked at where it is raised. The lens gets the real, frozen ``Draft``,
``PMap`` and ``PVector`` it gets from the engine; nothing is wrapped. A tracer
already set (a debugger) is chained if it is a Python function; another kind
(coverage's C tracer) is set aside for the call and put back after it.
"""

from __future__ import annotations

import dis
import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
from pyrsistent import PMap, PVector

from drafts.draft import Draft

_MUTATORS = frozenset({
    "__setitem__", "__delitem__", "__iadd__", "__ior__", "pop", "popitem", "clear", "setdefault", "sort",
    "reverse", "insert", "add", "discard", "__setattr__", "__delattr__",
})


_ITEM_CHANGE = re.compile(r"'([\w.]+)' object does not support item (assignment|deletion)")


_NAMED_TYPE = re.compile(r"^'([\w.]+)' object ")


_STORE_OPS = {dis.opmap[name]: what for name, what in (
    ("STORE_SUBSCR", "item assignment"), ("DELETE_SUBSCR", "item deletion"),
    ("STORE_ATTR", "attribute assignment"), ("DELETE_ATTR", "attribute deletion"),
) if name in dis.opmap}
"""Opcodes that change a container or an object in place, and what a failure of one attempted."""


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


def _type_names(parts: dict[int, Any]) -> set[str]:
    names = set()
    for part in parts.values():
        t = type(part)
        names.update({t.__name__, f"{t.__module__}.{t.__name__}"})
    return names


def _attempt_where_raised(exc: BaseException, frame: types.FrameType, parts: dict[int, Any],
                          type_names: set[str]) -> str | None:
    """Why ``exc``, raised in (or into) ``frame``, was an attempt to change part of the input, else None."""
    if isinstance(exc, attrs.exceptions.FrozenError):
        target = frame.f_locals.get("self") if frame.f_code.co_name.startswith("_frozen_") else None
        if target is not None and id(target) in parts:
            return f"it set or deleted an attribute of its input draft ({type(exc).__name__}: {exc})"
        return None
    if isinstance(exc, AttributeError) and getattr(exc, "name", None) in _MUTATORS:
        if id(getattr(exc, "obj", None)) in parts:
            return f"it called .{exc.name}() on part of its input ({type(exc).__name__}: {exc})"
    if isinstance(exc, (TypeError, AttributeError)):
        code, offset = frame.f_code.co_code, frame.f_lasti
        what = _STORE_OPS.get(code[offset]) if 0 <= offset < len(code) else None
        named = _NAMED_TYPE.match(str(exc))
        if what and named and named.group(1) in type_names:
            return f"it tried {what} on part of its input ({type(exc).__name__}: {exc})"
    return None


@contextmanager
def _watching(draft: Draft | None) -> Iterator[list[str]]:
    """Collect, while the block runs, why each exception raised in it was an attempt to change ``draft``.

    Yields the list it appends to (one reason per attempt, in order); empty
    for ``draft`` None. Caught exceptions count: the tracer sees each one in
    the frame it is raised in, before any ``except`` clause.
    """
    attempts: list[str] = []
    if draft is None:
        yield attempts
        return
    parts = _parts(draft, {})
    type_names = _type_names(parts)
    seen: set[int] = set()
    previous = sys.gettrace()
    chained = previous if isinstance(previous, (types.FunctionType, types.MethodType)) else None

    def make_local(theirs: Any):
        def local(frame: types.FrameType, event: str, arg: Any):
            nonlocal theirs
            if event == "exception" and id(arg[1]) not in seen:
                reason = _attempt_where_raised(arg[1], frame, parts, type_names)
                if reason is not None:
                    seen.add(id(arg[1]))
                    attempts.append(reason)
            if theirs is not None:
                theirs = theirs(frame, event, arg)
                frame.f_trace_lines = theirs is not None
            return local
        return local

    def on_call(frame: types.FrameType, event: str, arg: Any):
        theirs = chained(frame, event, arg) if chained is not None else None
        frame.f_trace_lines = theirs is not None  # only 'exception' events are of use here
        return make_local(theirs)

    sys.settrace(on_call)
    try:
        yield attempts
    finally:
        sys.settrace(previous)


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
