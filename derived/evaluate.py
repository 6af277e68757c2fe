"""One lens call, isolated: whatever the lens does, the caller gets a CallOutcome.

This is the unit an executor runs (and a memo caches). It is pure: same lens,
params, input draft and context give the same outcome. Outputs are checked
here, where the lens ran (``check_output``), so what travels back from a
worker is frozen JSON-like data, and a bad output is that call's
``invalidOutput`` and nothing else's.

Exceptions: any ``BaseException`` a lens raises is that call's ``lensError``
(``SystemExit`` included: a lens never ends a worker or the caller), except
``KeyboardInterrupt``, which means "stop": the recompute raises it, on every
executor, and nothing of that recompute reaches the memo.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Set
from typing import Any, NamedTuple

from drafts.draft import Draft, check_output, check_payload
from drafts.errors import DraftError
from lenses.lens import FrameContext, Lens, Output
from lenses.result import COMPLETED, ExecutionResult

from .signals import Terminated

__all__ = ["CallOutcome", "checked_output", "call_lens", "describe_exception", "RESERVED_META_KEYS", "INTERRUPTED"]

RESERVED_META_KEYS = ("batch", "provenance")
INTERRUPTED = "interrupted"
"""``CallOutcome.error_code`` of a call the lens ended with KeyboardInterrupt (never a warning)."""
_GENERATOR = type(x for x in ())
_PLAIN_ITERABLES = (_GENERATOR, list, tuple)


def describe_exception(exc: BaseException) -> str:
    """``"TypeName: message"`` of any exception, even one whose ``__str__`` raises.

    A message that is not valid Unicode (a lone surrogate) is escaped, so the
    warning can always be printed and written as JSON.
    """
    name = getattr(type(exc), "__name__", "Exception")
    try:
        text = str(exc)
    except BaseException as inner:  # noqa: BLE001 - a broken __str__ must not crash the recompute
        text = f"<str() of this exception raised {getattr(type(inner), '__name__', 'an exception')}>"
    if type(text) is not str:
        text = "<str() of this exception returned no str>"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return f"{name}: {text}"


def checked_output(payload: Any, meta: Any = None) -> tuple[Any, bytes, Any]:
    """One output, checked and frozen as ``make_draft`` would check it: a draft-to-be.

    Returns the plain tuple ``(held payload, payload bytes, frozen meta or
    None)`` that ``CallOutcome.outputs`` holds: the payload as
    ``drafts.draft.check_payload`` holds it (``frozen_payload`` gives the
    frozen value), its canonical bytes, which the output's id is spliced
    from (``drafts.draft.output_drafts``), and the frozen user meta. Raises
    DraftError naming the path of the first bad value. A plain tuple of
    immutable data, so it pickles as is and, once the cyclic GC has seen it,
    is no longer tracked: a call leaves one tracked object (its outcome)
    until its outputs are assembled.
    """
    return check_output(payload, meta)


class CallOutcome(NamedTuple):
    """What one call gave: checked outputs (``checked_output`` tuples), or an error.

    ``overflow`` says the call yielded more than the limit it was read to;
    ``result`` is the ExecutionResult of a job-running (media) lens;
    ``worker_failed`` marks a call lost with its worker, or a lens that could
    not reach one (never cached); ``details`` are ``(key, value)`` pairs for
    the warning (a ``lensError`` carries the exception type and message, the
    lens's file and line, and a short traceback).

    A named tuple (immutable, equal field by field) because one is made per
    call: building it is one C call, where a frozen attrs class set seven
    slots one by one (see benchmarks/README.md).
    """

    outputs: tuple = ()
    error_code: str | None = None
    error: str | None = None
    overflow: bool = False
    result: ExecutionResult | None = None
    worker_failed: bool = False
    details: tuple = ()


_new_tuple = tuple.__new__  # a CallOutcome from all seven fields, without the keyword handling
_islice = itertools.islice


def call_lens(lens: Lens, params: Any, draft: Draft | None, context: Any, limit: int) -> CallOutcome:
    """Call ``lens`` once, read at most ``limit + 1`` outputs and check the kept ones.

    ``context`` is a ``FrameContext``, or a ``(instance_id, batch_id,
    frame_index)`` tuple turned into one only for a lens that asks for it.
    Reading stops one past the limit, so a lens that yields forever cannot
    hang a recompute; the cap decides what is kept. A lens must return a
    list, a tuple, a generator or another ordered iterable; a ``set`` (or any
    ``collections.abc.Set``) is ``invalidOutput``, since its order changes
    from process to process.
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
        elif isinstance(returned, Set):
            return CallOutcome(
                error_code="invalidOutput",
                error=f"lens returned a {type(returned).__name__}, an unordered collection (a set's order changes "
                "from process to process); return a list (e.g. sorted(...)) or yield the outputs",
            )
        elif isinstance(returned, (str, bytes, Mapping, Draft, Output)) or not isinstance(returned, Iterable):
            return CallOutcome(
                error_code="invalidOutput",
                error=f"lens must return an iterable of outputs, got {type(returned).__name__} "
                "(wrap a single output in a list, or yield it)",
            )
        items = returned[: limit + 1] if type(returned) is list else list(_islice(returned, limit + 1))
    except KeyboardInterrupt:
        return CallOutcome(error_code=INTERRUPTED, error="KeyboardInterrupt raised in the lens")
    except Terminated:  # SIGTERM/SIGHUP: the job cleaned up on the way here; the whole run stops
        raise
    except BaseException as exc:  # noqa: BLE001 - a lens error (even SystemExit) is data, not a crash
        return _lens_error(lens, exc)
    overflow = len(items) > limit
    if overflow:
        del items[limit:]
    outputs = []
    for index, item in enumerate(items):
        try:
            if type(item) is Output:
                meta = item.meta
                if meta is not None and not isinstance(meta, Mapping):
                    return _invalid(index, f"Output.meta must be a mapping or None, got {type(meta).__name__}")
                if meta:
                    clash = sorted(k for k in RESERVED_META_KEYS if k in meta)
                    if clash:
                        return _invalid(index, f"Output.meta keys {clash} are reserved for the engine")
                outputs.append(check_output(item.payload, meta))
            else:
                held, payload_bytes = check_payload(item)  # check_output without meta
                outputs.append((held, payload_bytes, None))
        except DraftError as exc:
            return _invalid(index, str(exc))
    return _new_tuple(CallOutcome, (tuple(outputs), None, None, overflow, None, False, ()))  # CallOutcome(...)


def _relative_file(filename: str, module: str) -> str:
    """A source file as its module path (``pkg/mod.py``), the same on every machine.

    Absolute paths differ between hosts and installs; derived state must not.
    """
    parts = filename.replace("\\", "/").split("/")
    depth = module.count(".") + 1 + (parts[-1] == "__init__.py")
    return "/".join(parts[-depth:])


def _lens_error(lens: Lens, exc: BaseException) -> CallOutcome:
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
    text = describe_exception(exc)  # safe even when the exception's __str__ raises
    return CallOutcome(
        error_code="lensError",
        error=f"{text} (at {where}:{line})",
        details=(("exception_type", type(exc).__name__), ("exception_message", text.split(": ", 1)[1]),
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
    outputs = []
    for index, payload in enumerate(result.outputs[:limit]):
        try:
            outputs.append(check_output(payload, None))
        except DraftError as exc:
            return CallOutcome(error_code="invalidOutput", error=f"output {index}: {exc}", result=result)
    return CallOutcome(outputs=tuple(outputs), overflow=len(result.outputs) > limit, result=result)
