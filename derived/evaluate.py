"""One lens call, isolated: whatever the lens does, the caller gets a CallOutcome.

This is the unit an executor runs (and a memo caches). It is pure: same lens,
params, input draft and context give the same outcome.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from drafts.draft import Draft
from lenses.lens import FrameContext, Lens, Output
from lenses.result import COMPLETED, ExecutionResult

__all__ = ["CallOutcome", "call_lens", "RESERVED_META_KEYS"]

RESERVED_META_KEYS = ("batch", "provenance")
_GENERATOR = type(x for x in ())
_PLAIN_ITERABLES = (_GENERATOR, list, tuple)


@attrs.frozen
class CallOutcome:
    """What one call gave: plain ``(payload, meta)`` outputs, or an error.

    ``overflow`` says the call yielded more than the limit it was read to;
    ``result`` is the ExecutionResult of a job-running (media) lens;
    ``worker_failed`` marks a call lost with its worker (never cached);
    ``details`` are ``(key, value)`` pairs for the warning (a ``lensError``
    carries the exception type and message, the lens's file and line, and a
    short traceback).
    """

    outputs: tuple = ()
    error_code: str | None = None
    error: str | None = None
    overflow: bool = False
    result: ExecutionResult | None = None
    worker_failed: bool = False
    details: tuple = ()


def call_lens(lens: Lens, params: Any, draft: Draft | None, context: Any, limit: int) -> CallOutcome:
    """Call ``lens`` once and read at most ``limit + 1`` outputs.

    ``context`` is a ``FrameContext``, or a ``(instance_id, batch_id,
    frame_index)`` tuple turned into one only for a lens that asks for it.
    Reading stops one past the limit, so a lens that yields forever cannot
    hang a recompute; the cap decides what is kept.
    """
    try:
        if lens.takes_context:
            if type(context) is tuple:
                context = FrameContext(*context)
            returned = lens.fn(draft, params, context=context)
        else:
            returned = lens.fn(draft, params)
        if type(returned) in _PLAIN_ITERABLES:
            pass
        elif isinstance(returned, ExecutionResult):
            return _from_result(returned, limit)
        elif isinstance(returned, (str, bytes, Mapping, Draft, Output)) or not isinstance(returned, Iterable):
            return CallOutcome(
                error_code="invalidOutput",
                error=f"lens must return an iterable of outputs, got {type(returned).__name__} "
                "(wrap a single output in a list, or yield it)",
            )
        items = returned[: limit + 1] if type(returned) is list else list(itertools.islice(returned, limit + 1))
    except Exception as exc:  # noqa: BLE001 - a lens error is data, not a crash
        return _lens_error(lens, exc)
    overflow = len(items) > limit
    if overflow:
        del items[limit:]
    outputs = []
    for index, item in enumerate(items):
        if type(item) is Output:
            meta = item.meta
            if meta is not None and not isinstance(meta, Mapping):
                return _invalid(index, f"Output.meta must be a mapping or None, got {type(meta).__name__}")
            if meta:
                clash = sorted(k for k in RESERVED_META_KEYS if k in meta)
                if clash:
                    return _invalid(index, f"Output.meta keys {clash} are reserved for the engine")
            outputs.append((item.payload, meta or None))
        else:
            outputs.append((item, None))
    return CallOutcome(outputs=tuple(outputs), overflow=overflow)


def _relative_file(filename: str, module: str) -> str:
    """A source file as its module path (``pkg/mod.py``), the same on every machine.

    Absolute paths differ between hosts and installs; derived state must not.
    """
    parts = filename.replace("\\", "/").split("/")
    depth = module.count(".") + 1 + (parts[-1] == "__init__.py")
    return "/".join(parts[-depth:])


def _lens_error(lens: Lens, exc: Exception) -> CallOutcome:
    """A ``lensError`` outcome: exception type and message, the lens's file and line, a short traceback.

    The line is the last one the traceback passed in the lens's own file (where
    the lens called what raised, or raised itself); the traceback starts at
    the lens's function. Files are shown by module path, never absolute.
    """
    code = getattr(lens.fn, "__code__", None)
    module = getattr(lens.fn, "__module__", "") or ""
    lens_file = code.co_filename if code is not None else None
    frames = []
    line = code.co_firstlineno if code is not None else None
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None  # skip call_lens itself
    while tb is not None:
        frame_code = tb.tb_frame.f_code
        name = module if frame_code.co_filename == lens_file else tb.tb_frame.f_globals.get("__name__", "")
        frames.append(f"{_relative_file(frame_code.co_filename, name)}:{tb.tb_lineno} in {frame_code.co_name}")
        if frame_code.co_filename == lens_file:
            line = tb.tb_lineno
        tb = tb.tb_next
    where = _relative_file(lens_file, module) if lens_file else "?"
    text = f"{type(exc).__name__}: {exc}"
    return CallOutcome(
        error_code="lensError",
        error=f"{text} (at {where}:{line})",
        details=(("exception_type", type(exc).__name__), ("exception_message", str(exc)),
                 ("lens_file", where), ("lens_line", line), ("traceback", tuple(frames[-8:]))),
    )


def _invalid(index: int, message: str) -> CallOutcome:
    return CallOutcome(error_code="invalidOutput", error=f"output {index}: {message}")


def _from_result(result: ExecutionResult, limit: int) -> CallOutcome:
    if result.status != COMPLETED:
        return CallOutcome(
            error_code="executionFailed",
            error=f"{result.failure_class} failure: {result.message}",
            result=result,
        )
    outputs = tuple((payload, None) for payload in result.outputs)
    return CallOutcome(outputs=outputs[:limit], overflow=len(outputs) > limit, result=result)
