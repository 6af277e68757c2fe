"""One lens call, observed as the engine makes it: output draft ids, or what went wrong.

``_call`` calls the lens once and gives an ``_Outcome`` (``ok``, ``raised``,
``invalid`` or ``failed``) that compares by content, so two calls can be
compared for the ``deterministic`` rule; an ``invalid`` outcome breaks
``valid-outputs``. ``_engine_params`` gives the params instance the engine
would hand the lens.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import orjson

from drafts import make_draft
from drafts.canonical import thaw_canon
from drafts.draft import Draft
from drafts.errors import DraftError
from drafts.store import freeze_params

from ..lens import FrameContext, Lens, Output
from ..params import resolve_params
from ..result import COMPLETED, ExecutionResult

_READ_LIMIT = 500  # outputs read from one call (the engine caps the same way: it reads one past)


_RESERVED_META_KEYS = ("batch", "provenance")


@attrs.frozen
class _Outcome:
    """What one call gave, canonically: output draft ids, or an error text."""

    kind: str  # "ok" | "raised" | "invalid" | "failed"
    ids: tuple[str, ...] = ()
    error: str = ""
    overflow: bool = False
    drafts: tuple[Draft, ...] = attrs.field(default=(), eq=False)

    def signature(self) -> list:
        return [self.kind, list(self.ids), self.error, self.overflow]

    def describe(self) -> str:
        if self.kind == "ok":
            shown = ", ".join(_short_payload(d) for d in self.drafts[:5])
            more = f", … ({len(self.drafts)} in all)" if len(self.drafts) > 5 else ""
            return f"outputs [{shown}{more}]"
        if self.kind == "raised":
            return f"raised {self.error}"
        return f"{self.kind}: {self.error}"


def _short_payload(draft: Draft, limit: int = 80) -> str:
    text = orjson.dumps(thaw_canon(draft.payload, False), option=orjson.OPT_SORT_KEYS).decode()
    if draft.meta:
        text = f"Output({text}, meta={orjson.dumps(thaw_canon(draft.meta, False), option=orjson.OPT_SORT_KEYS).decode()})"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _call(lens: Lens, params: Any, draft: Draft | None, context: FrameContext | None) -> tuple[_Outcome, Any]:
    """Call the lens once, as the engine would, and say what came out."""
    try:
        returned = lens.fn(draft, params, context=context) if lens.takes_context else lens.fn(draft, params)
        if isinstance(returned, ExecutionResult):
            if returned.status != COMPLETED:
                return _Outcome("failed", error=f"{returned.failure_class} failure: {returned.message}"), None
            items = list(itertools.islice(returned.outputs, _READ_LIMIT + 1))
        elif isinstance(returned, (str, bytes, Mapping, Draft, Output)) or not isinstance(returned, Iterable):
            hint = "did it forget to yield?" if returned is None else "wrap a single output in a list"
            return _Outcome(
                "invalid",
                error=f"the lens returned a {type(returned).__name__}; it must return an iterable of outputs "
                f"(yield them, or return a list): {hint}",
            ), None
        else:
            items = list(itertools.islice(returned, _READ_LIMIT + 1))
    except Exception as exc:  # noqa: BLE001 - a lens error is data for the contract, as for the engine
        return _Outcome("raised", error=f"{type(exc).__name__}: {exc}"), exc
    overflow = len(items) > _READ_LIMIT
    made = []
    for index, item in enumerate(items[:_READ_LIMIT]):
        payload, meta = (item.payload, item.meta) if type(item) is Output else (item, None)
        if type(item) is Output and meta is not None:
            if not isinstance(meta, Mapping):
                return _Outcome("invalid", error=f"output {index}: Output.meta must be a mapping or None, "
                                f"got {type(meta).__name__}"), None
            clash = sorted(k for k in _RESERVED_META_KEYS if k in meta)
            if clash:
                return _Outcome("invalid", error=f"output {index}: Output.meta keys {clash} are reserved for "
                                "the engine (it writes batch and provenance meta itself)"), None
        try:
            made.append(make_draft(payload, meta or None))
        except DraftError as exc:
            return _Outcome("invalid", error=f"output {index}: {exc}"), None
    return _Outcome("ok", ids=tuple(d.id for d in made), overflow=overflow, drafts=tuple(made)), None


_INSTANCE = "check"


def _engine_params(lens: Lens, data: Any) -> Any:
    """The params instance the engine would hand the lens for stored ``data``."""
    return resolve_params(lens, freeze_params(data, f"lens {lens.id!r}"))[0]
