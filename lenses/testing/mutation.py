"""Did the lens change its input, or try to? (the ``immutable-input`` rule)

``_snapshot``/``_changed`` compare a draft before and after a call;
``_mutation_attempt`` reads an exception that escaped the lens for an attempt
to change a frozen part of the input (item assignment, ``.pop()``, setting an
attribute); ``_watching`` sees every such attempt made during a call, also one
the lens catches and ignores (``try: draft.payload["x"] = 1`` /
``except Exception: pass``).

The object an attempt was made on is identified, never guessed from its
type: the target of a failed ``x[k] = v``/``del x[k]``/``x.a = v`` and the
first argument of a failed ``operator.setitem``/``delitem``, ``setattr`` or
``delattr`` call are read back from the bytecode of the frame that raised
(straight-line loads of locals, globals, constants, and attributes and items
of drafts, maps and vectors); when that is not possible, nothing is reported
(a false report is worse than a missed rare attempt in a test tool). So a
lens that tries ``out["b"] = 2`` on its own ``PMap`` passes.

``_watching`` traces the call (``sys.settrace``, for this thread, only while
the lens runs under ``check_lens``): each exception raised in Python code is
looked at where it is raised. The lens gets the real, frozen ``Draft``,
``PMap`` and ``PVector`` it gets from the engine; nothing is wrapped. A tracer
already set (a debugger) is chained if it is a Python function; another kind
(coverage's C tracer) is set aside for the call and put back after it.
"""

from __future__ import annotations

import dis
import functools
import operator
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


_MUTATING_CALLS = {operator.setitem: "operator.setitem", operator.delitem: "operator.delitem",
                   setattr: "setattr", delattr: "delattr"}
"""Functions that change their first argument in place, and how a message names them."""


_STORE_OPS = {name: (what, depth) for name, what, depth in (
    ("STORE_SUBSCR", "item assignment", 1), ("DELETE_SUBSCR", "item deletion", 1),
    ("STORE_ATTR", "attribute assignment", 0), ("DELETE_ATTR", "attribute deletion", 0),
)}
"""Opcodes that change a container or an object in place: what a failure of one attempted, and how deep
on the value stack the changed object is (0 = top) when it runs."""


_FROZEN = (Draft, PMap, PVector)

_METHOD_FLAG_ATTR = sys.version_info >= (3, 12)  # LOAD_ATTR's low bit marks a method load (3.12+)

_UNKNOWN = object()

_LOADS = frozenset({"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_DEREF", "LOAD_CLASSDEREF", "LOAD_NAME", "LOAD_GLOBAL",
                    "LOAD_CONST", "LOAD_SMALL_INT", "PUSH_NULL", "LOAD_FAST_LOAD_FAST", "LOAD_FAST_BORROW",
                    "LOAD_FAST_BORROW_LOAD_FAST_BORROW"})

_TRANSPARENT = frozenset({"PRECALL", "EXTENDED_ARG", "NOP", "CACHE", "KW_NAMES", "RESUME"})


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


def _effect(ins: dis.Instruction) -> tuple[int, int] | None:
    """``(popped, pushed)`` value-stack items of the instructions the operand search follows, else None."""
    name, arg = ins.opname, ins.arg or 0
    if name in ("LOAD_FAST_LOAD_FAST", "LOAD_FAST_BORROW_LOAD_FAST_BORROW"):
        return 0, 2
    if name == "LOAD_GLOBAL":
        return 0, 2 if arg & 1 else 1  # a NULL beside the global, for a call
    if name in _LOADS:
        return 0, 1
    if name == "LOAD_METHOD":
        return 1, 2
    if name == "LOAD_ATTR":
        return 1, 2 if _METHOD_FLAG_ATTR and arg & 1 else 1
    if name == "BINARY_SUBSCR":
        return 2, 1
    if name == "CALL":  # the callee, a NULL or self beside it, and the arguments
        return arg + 2, 1
    return None


def _load(ins: dis.Instruction, slot: int, frame: types.FrameType) -> Any:
    """The value a load instruction pushed (``slot`` 0 = the top one of what it pushed)."""
    name = ins.opname
    if name == "PUSH_NULL":
        return _UNKNOWN
    if name in ("LOAD_CONST", "LOAD_SMALL_INT"):
        return ins.argval
    if name in ("LOAD_FAST_LOAD_FAST", "LOAD_FAST_BORROW_LOAD_FAST_BORROW"):
        names = ins.argval
        return frame.f_locals.get(names[1 - slot], _UNKNOWN) if isinstance(names, tuple) else _UNKNOWN
    if name == "LOAD_GLOBAL":  # either slot: the NULL beside a global is never a container or a callee
        return _global(ins.argval, frame)
    found = frame.f_locals.get(ins.argval, _UNKNOWN)
    if found is _UNKNOWN and name == "LOAD_NAME":
        return _global(ins.argval, frame)
    return found


def _global(name: str, frame: types.FrameType) -> Any:
    found = frame.f_globals.get(name, _UNKNOWN)
    if found is _UNKNOWN and isinstance(frame.f_builtins, dict):
        found = frame.f_builtins.get(name, _UNKNOWN)
    return found


def _operand(instructions: list[dis.Instruction], at: int, depth: int, frame: types.FrameType,
             budget: list[int]) -> Any:
    """The object ``depth`` items below the top of the value stack when ``instructions[at]`` ran, or ``_UNKNOWN``.

    Followed back through straight-line code made of loads (locals, globals,
    constants), attribute loads, subscripts and ``PMap.get`` calls; an
    attribute or item is read again only from a ``Draft``, ``PMap``,
    ``PVector`` or module (reading them runs no code of the lens). Anything
    else (another call, arithmetic, a jump target between) gives ``_UNKNOWN``.
    """
    j = at
    while budget[0] > 0:
        budget[0] -= 1
        if instructions[j].is_jump_target or j == 0:
            return _UNKNOWN
        j -= 1
        ins = instructions[j]
        if ins.opname in _TRANSPARENT:
            continue
        effect = _effect(ins)
        if effect is None:
            return _UNKNOWN
        popped, pushed = effect
        if depth >= pushed:
            depth += popped - pushed
            continue
        slot = depth
        if ins.opname in ("LOAD_ATTR", "LOAD_METHOD"):  # either slot of a method load: the attribute
            owner = _operand(instructions, j, 0, frame, budget)
            if not isinstance(owner, (*_FROZEN, types.ModuleType)):
                return _UNKNOWN
            try:
                return getattr(owner, ins.argval)
            except Exception:  # noqa: BLE001 - not found: nothing to identify
                return _UNKNOWN
        if ins.opname == "BINARY_SUBSCR":
            key = _operand(instructions, j, 0, frame, budget)
            container = _operand(instructions, j, 1, frame, budget)
            if key is _UNKNOWN or not isinstance(container, (PMap, PVector)):
                return _UNKNOWN
            try:
                return container[key]
            except Exception:  # noqa: BLE001 - no such item: nothing to identify
                return _UNKNOWN
        if ins.opname == "CALL":
            return _lookup_call(instructions, j, ins.arg or 0, frame, budget)
        return _load(ins, slot, frame)
    return _UNKNOWN


def _lookup_call(instructions: list[dis.Instruction], at: int, argc: int, frame: types.FrameType,
                 budget: list[int]) -> Any:
    """What ``instructions[at]`` (a CALL) returned, if it was ``PMap.get`` with arguments read back, else ``_UNKNOWN``.

    ``draft.payload.get("items")[0] = 1`` changes part of the input as much as
    ``draft.payload["items"][0] = 1``; ``get`` of a ``PMap`` runs no code of
    the lens, so it is called again here. Other calls are not repeated.
    """
    for depth in (argc, argc + 1):
        callee = _operand(instructions, at, depth, frame, budget)
        if isinstance(callee, types.MethodType) and type(callee.__self__) is PMap and callee.__name__ == "get":
            args = [_operand(instructions, at, argc - 1 - k, frame, budget) for k in range(argc)]
            if any(a is _UNKNOWN for a in args):
                return _UNKNOWN
            try:
                return callee(*args)
            except Exception:  # noqa: BLE001 - an unhashable key, say: nothing to identify
                return _UNKNOWN
    return _UNKNOWN


@functools.lru_cache(maxsize=512)
def _decoded(code: types.CodeType) -> tuple[list[dis.Instruction], dict[int, int]]:
    instructions = list(dis.get_instructions(code))
    return instructions, {ins.offset: index for index, ins in enumerate(instructions)}


def _instructions(code: types.CodeType, lasti: int) -> tuple[list[dis.Instruction], int] | None:
    """The code's instructions and the index of the one at byte offset ``lasti``, or None."""
    instructions, index = _decoded(code)
    return (instructions, index[lasti]) if lasti in index else None


def _attempt_where_raised(exc: BaseException, frame: types.FrameType, parts: dict[int, Any],
                          lasti: int | None = None) -> str | None:
    """Why ``exc``, raised in (or into) ``frame`` at ``lasti``, was an attempt to change part of the input, else None.

    The changed object is identified, never guessed from a type name: the
    ``self`` of attrs' frozen ``__setattr__``; the ``obj`` of an
    ``AttributeError`` for a mutator method, when the failing instruction
    loads it to call it (merely looking ``items.add`` up is no attempt); the
    target of a failed item or attribute store, and the first argument of a
    failed ``operator.setitem``/``delitem``, ``setattr`` or ``delattr`` call,
    read back from the bytecode (``_operand``). If the target cannot be read
    back (it was computed by a call, say), nothing is reported: a missed rare
    attempt is better than telling an honest lens it changed its input (its
    own ``PMap``, for example).
    """
    if isinstance(exc, attrs.exceptions.FrozenError):
        target = frame.f_locals.get("self") if frame.f_code.co_name.startswith("_frozen_") else None
        if target is not None and id(target) in parts:
            return f"it set or deleted an attribute of its input draft ({type(exc).__name__}: {exc})"
        return None
    if not isinstance(exc, (TypeError, AttributeError)):
        return None
    found = _instructions(frame.f_code, frame.f_lasti if lasti is None else lasti)
    if found is None:
        return None
    instructions, at = found
    ins = instructions[at]
    if isinstance(exc, AttributeError) and getattr(exc, "name", None) in _MUTATORS:
        method_load = ins.opname == "LOAD_METHOD" or (ins.opname == "LOAD_ATTR" and _METHOD_FLAG_ATTR
                                                      and (ins.arg or 0) & 1)
        if method_load and id(getattr(exc, "obj", None)) in parts:
            return f"it called .{exc.name}() on part of its input ({type(exc).__name__}: {exc})"
    if ins.opname in _STORE_OPS:
        what, depth = _STORE_OPS[ins.opname]
        target = _operand(instructions, at, depth, frame, [48])
        if target is not _UNKNOWN and id(target) in parts and parts[id(target)] is target:
            return f"it tried {what} on part of its input ({type(exc).__name__}: {exc})"
    if ins.opname == "CALL" and ins.arg is not None and ins.arg >= 1:
        argc = ins.arg
        for depth in (argc, argc + 1):  # the callee: below its arguments, beside a NULL or a self
            callee = _operand(instructions, at, depth, frame, [48])
            if callee is not _UNKNOWN and _is_mutating_call(callee):
                first = _operand(instructions, at, argc - 1, frame, [48])
                if first is not _UNKNOWN and id(first) in parts and parts[id(first)] is first:
                    return (f"it called {_MUTATING_CALLS[callee]}() on part of its input "
                            f"({type(exc).__name__}: {exc})")
                break
    return None


def _is_mutating_call(callee: Any) -> bool:
    try:
        return callee in _MUTATING_CALLS
    except TypeError:  # unhashable
        return False


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
    seen: set[int] = set()
    previous = sys.gettrace()
    chained = previous if isinstance(previous, (types.FunctionType, types.MethodType)) else None

    def make_local(theirs: Any):
        def local(frame: types.FrameType, event: str, arg: Any):
            nonlocal theirs
            if event == "exception" and id(arg[1]) not in seen:
                reason = _attempt_where_raised(arg[1], frame, parts)
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
    """Why ``exc``, which escaped the lens, is an attempt to change the input, else None.

    Each exception of the chain (``__cause__``/``__context__``, up to 5) is
    judged where it was raised (the innermost frame of its traceback), as
    ``_attempt_where_raised`` judges one the lens caught.
    """
    parts = _parts(draft, {}) if draft is not None else {}
    seen = 0
    while exc is not None and seen < 5:
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:
            reason = _attempt_where_raised(exc, tb.tb_frame, parts, tb.tb_lasti)
            if reason is not None:
                return reason
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
