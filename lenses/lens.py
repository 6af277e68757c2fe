"""Lenses: named, versioned pure functions from one draft to outputs.

A lens never loops over frames and never makes drafts: the engine (``derived``)
maps it over frames and turns its outputs into drafts.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import attrs

from .errors import LensDefinitionError

__all__ = ["Lens", "Output", "FrameContext", "lens", "BATCH_BEHAVIORS", "JOB_TYPES"]

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
    A ``Lens`` pickles by reference (module and qualified name), so worker
    processes import it instead of receiving code.
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

    def __reduce__(self):
        module, qualname = self.fn.__module__, self.fn.__qualname__
        if _lookup(module, qualname) is not self:
            import pickle

            raise pickle.PicklingError(
                f"lens {self.id!r} cannot be pickled by reference: {module}.{qualname} is not this lens "
                "(define lenses at module level with @lens so worker processes can import them)"
            )
        return (_lookup, (module, qualname))


def _lookup(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


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
