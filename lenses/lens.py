"""Lenses: named, versioned pure functions from one draft to outputs.

A lens never loops over frames and never makes drafts: the engine (``derived``)
maps it over frames and turns its outputs into drafts.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import types
from collections.abc import Callable
from typing import Any

import attrs

from .errors import LensDefinitionError

__all__ = ["Lens", "Output", "FrameContext", "UnavailableLens", "code_fingerprint", "lens", "BATCH_BEHAVIORS",
           "JOB_TYPES"]

BATCH_BEHAVIORS = ("inherit", "disable", "enable")
JOB_TYPES = ("Convert", "Audio", "Video", "Meta")


@attrs.frozen
class Output:
    """One lens output with its own meta (a bare JSON-like value means no meta).

    The keys ``batch`` and ``provenance`` of ``meta`` belong to the engine.
    """

    payload: Any
    meta: Any = None


@attrs.frozen
class FrameContext:
    """Where a call sits, for lenses that declare a ``context`` parameter.

    ``frame_index`` is None for a non-batched call. A lens that reads its
    context is cached per frame position as well as per input draft.
    """

    lens_instance_id: str
    batch_id: str | None
    frame_index: int | None


def _one_of(choices: tuple[str, ...]):
    def check(_inst, attribute, value):
        if value not in choices:
            raise LensDefinitionError(f"{attribute.name} must be one of {list(choices)}, got {value!r}")

    return check


@attrs.frozen(eq=False, repr=False)
class Lens:
    """A lens: ``fn(draft, params) -> iterable of outputs`` plus its identity.

    ``id`` and ``version`` name it in every output's provenance and in every
    batch id, so change ``version`` whenever ``fn`` changes what it computes.
    ``describe``, when given, is a pure ``(draft, params) -> mapping`` that a
    plan shows before anything runs (media lenses give their exact argv).
    A ``Lens`` pickles by reference (module and qualified name) plus its
    ``code_fingerprint``, so worker processes import it instead of receiving
    code, and a worker whose module holds other code says so instead of
    running it (see ``UnavailableLens``).
    """

    id: str
    version: str
    fn: Callable[..., Any]
    params: type | None = None
    batch_behavior: str = attrs.field(default="inherit", validator=_one_of(BATCH_BEHAVIORS))
    job_type: str = attrs.field(default="Convert", validator=_one_of(JOB_TYPES))
    describe: Callable[..., Any] | None = None
    doc: str = ""
    takes_context: bool = False
    _fingerprint: str | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self):
        if not isinstance(self.id, str) or not self.id:
            raise LensDefinitionError(f"lens id must be a non-empty str, got {self.id!r}")
        if not isinstance(self.version, str) or not self.version:
            raise LensDefinitionError(f"lens {self.id!r}: version must be a non-empty str, got {self.version!r}")
        if self.params is not None and not (inspect.isclass(self.params) and attrs.has(self.params)):
            raise LensDefinitionError(f"lens {self.id!r}: params must be an attrs class or None, got {self.params!r}")

    def __call__(self, draft: Any, params: Any = None, context: FrameContext | None = None) -> Any:
        """Call the function directly (no engine): handy in a REPL or a test."""
        if self.takes_context:
            return self.fn(draft, params, context=context or FrameContext("", None, None))
        return self.fn(draft, params)

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, self.version)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Lens):
            return NotImplemented
        return (self.id, self.version, self.fn) == (other.id, other.version, other.fn)

    def __hash__(self) -> int:
        return hash((self.id, self.version))

    def __repr__(self) -> str:
        return f"<Lens {self.id!r} v{self.version} {self.job_type} batch={self.batch_behavior}>"

    @property
    def code_fingerprint(self) -> str:
        """A digest of what the lens runs: ``fn``'s and ``describe``'s code (see ``code_fingerprint``)."""
        fingerprint = self._fingerprint
        if fingerprint is None:
            fingerprint = code_fingerprint(self.fn, self.describe)
            object.__setattr__(self, "_fingerprint", fingerprint)
        return fingerprint

    def shipping_problem(self) -> str | None:
        """Why this lens cannot be sent to a worker process by reference, or None.

        A lens defined in ``__main__`` (a script, REPL or notebook) or inside
        a function (a closure) cannot be imported by a worker; neither can
        one whose module attribute is another object (redefined, or not made
        at module level with ``@lens``).
        """
        module, qualname = getattr(self.fn, "__module__", None), getattr(self.fn, "__qualname__", None)
        move = "move it into a module (a .py file the workers can import), or use SerialExecutor"
        if not module or not qualname:
            return f"lens {self.id!r} cannot be sent to worker processes: its function has no module and name; {move}"
        if module == "__main__":
            return (f"lens {self.id!r} is defined in __main__ (a script, REPL or notebook), which worker processes "
                    f"cannot import; {move}")
        if "<locals>" in qualname:
            return (f"lens {self.id!r} is defined inside a function ({module}.{qualname}), which worker processes "
                    f"cannot import; {move}")
        try:
            found = _lookup(module, qualname)
        except Exception as exc:  # noqa: BLE001 - an import error is the reason
            return f"lens {self.id!r} cannot be sent to worker processes: importing {module} failed ({exc!r}); {move}"
        if found is not self:
            return (f"lens {self.id!r} cannot be sent to worker processes: {module}.{qualname} is not this lens "
                    f"(redefined, or not made at module level with @lens); {move}")
        return None

    def __reduce__(self):
        problem = self.shipping_problem()
        if problem is not None:
            import pickle

            raise pickle.PicklingError(problem)
        return (_arrive, (self.fn.__module__, self.fn.__qualname__, self.id, self.version, self.code_fingerprint))


class UnavailableLens:
    """What a worker unpickles instead of a lens it cannot run as sent.

    Raising while unpickling would break the worker (a process pool loses
    every worker), so the engine's chunk runner gets this and fails each call
    of the chunk with ``reason`` (a ``lensError`` warning).
    """

    __slots__ = ("lens_id", "reason")

    def __init__(self, lens_id: str, reason: str):
        self.lens_id = lens_id
        self.reason = reason

    def __repr__(self) -> str:
        return f"UnavailableLens({self.lens_id!r})"


def _lookup(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _arrive(module: str, qualname: str, lens_id: str, version: str, fingerprint: str) -> Any:
    """Unpickle a lens in a worker: the module's lens, if it is the code that was sent."""
    where = f"{module}.{qualname}"
    try:
        found = _lookup(module, qualname)
    except Exception as exc:  # noqa: BLE001 - reported, not raised: see UnavailableLens
        return UnavailableLens(lens_id, f"lens {lens_id!r}: importing {module} in the worker failed: {exc!r}")
    if not isinstance(found, Lens):
        return UnavailableLens(
            lens_id, f"lens {lens_id!r}: the worker finds no lens at {where} (a lens defined in __main__ or "
            "inside a function cannot be shipped; move it into a module)")
    if found.code_fingerprint != fingerprint or found.key != (lens_id, version):
        return UnavailableLens(
            lens_id,
            f"lens {lens_id!r} v{version}: the worker's {where} is other code (v{found.version}, fingerprint "
            f"{found.code_fingerprint[:12]} instead of {fingerprint[:12]}); it was not run. Restart the workers "
            "after editing a lens module (Dask: client.restart())",
        )
    return found


def code_fingerprint(*functions: Any) -> str:
    """A hex digest of the code of ``functions`` (None entries skipped), stable across processes.

    It covers each function's module, qualified name, bytecode, constants
    (nested code included), names and simple defaults; not file names or line
    numbers, so moving a lens in its file changes nothing, and not the
    functions it calls. Set-like constants are sorted, so the hash seed never
    shows. Callable objects are fingerprinted by their class's ``__call__``.
    """
    h = hashlib.blake2b(digest_size=16)
    for fn in functions:
        if fn is None:
            continue
        h.update(repr(_function_shape(fn)).encode("utf-8", "backslashreplace"))
    return h.hexdigest()


def _function_shape(fn: Any) -> tuple:
    target = inspect.unwrap(fn) if callable(fn) else fn
    code = getattr(target, "__code__", None)
    if code is None:
        call = type(target).__dict__.get("__call__") or next(
            (c.__dict__["__call__"] for c in type(target).__mro__ if "__call__" in c.__dict__), None)
        code = getattr(call, "__code__", None)
        target_name = f"{type(target).__module__}.{type(target).__qualname__}"
    else:
        target_name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"
    defaults = (getattr(target, "__defaults__", None), getattr(target, "__kwdefaults__", None))
    return (target_name, _code_shape(code) if code is not None else None, _const_shape(defaults))


def _code_shape(code: types.CodeType) -> tuple:
    return (
        code.co_code, code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars,
        code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags,
        getattr(code, "co_exceptiontable", b""),
        tuple(_const_shape(c) for c in code.co_consts),
    )


def _const_shape(value: Any) -> Any:
    if isinstance(value, types.CodeType):
        return _code_shape(value)
    if isinstance(value, (frozenset, set)):
        return ("set", tuple(sorted(repr(_const_shape(v)) for v in value)))
    if isinstance(value, tuple):
        return tuple(_const_shape(v) for v in value)
    if isinstance(value, dict):
        return ("dict", tuple(sorted((repr(k), repr(_const_shape(v))) for k, v in value.items())))
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)) or value is Ellipsis:
        return value
    return ("object", f"{type(value).__module__}.{type(value).__qualname__}")


def lens(
    id: str,  # noqa: A002 - the contract's name
    version: str = "1",
    params: type | None = None,
    batch_behavior: str = "inherit",
    job_type: str = "Convert",
    describe: Callable[..., Any] | None = None,
) -> Callable[[Callable[..., Any]], Lens]:
    """Turn ``fn(draft, params) -> iterable of outputs`` into a ``Lens``.

    >>> @lens("demo.shout", version="1")
    ... def shout(draft, params):
    ...     yield {"text": draft.payload["text"].upper()}
    >>> shout
    <Lens 'demo.shout' v1 Convert batch=inherit>
    """

    def build(fn: Callable[..., Any]) -> Lens:
        if not callable(fn):
            raise LensDefinitionError(f"@lens({id!r}) must decorate a function, got {fn!r}")
        return Lens(
            id=id,
            version=version,
            fn=fn,
            params=params,
            batch_behavior=batch_behavior,
            job_type=job_type,
            describe=describe,
            doc=inspect.getdoc(fn) or "",
            takes_context="context" in inspect.signature(fn).parameters,
        )

    return build
