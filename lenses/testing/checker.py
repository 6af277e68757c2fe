"""Property-based testing for lenses: hypothesis strategies and ``check_lens``.

Strategies for drafts, carriers and stores (the ones draftlens' own test-suite
uses), and ``check_lens(lens)``, which runs the lens contract as property tests
and names the rule a lens breaks:

- ``deterministic``: the same input and params give the same outputs, on an
  equal but separately built input and in a fresh Python process;
- ``immutable-input``: the lens never changes (or tries to change) its input;
- ``valid-outputs``: it returns an iterable of JSON-like payloads or
  ``Output(payload, meta)`` that ``make_draft`` accepts;
- ``map-only``: evaluating a ``packDrafts`` carrier equals concatenating the
  lens's outputs for each frame (a lens never loops over frames itself);
- ``no-ambient-inputs``: outputs do not change with the clock, the random
  seed or the environment.

This module needs hypothesis (a test dependency); ``import lenses`` does not
import it.

>>> from lenses.builtins import upper_text
>>> check_lens(upper_text, max_examples=10).rules
('deterministic', 'immutable-input', 'valid-outputs', 'map-only', 'no-ambient-inputs')
"""

from __future__ import annotations

import datetime
import importlib
import itertools
import os
import pickle
import random
import re
import secrets
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.strategies import SearchStrategy
from pyrsistent import PMap, PVector, thaw

from drafts import OutputOf, Store, draft_from_json, make_draft, pack_drafts
from drafts.canonical import INT_MAX, INT_MIN, thaw_canon
from drafts.draft import Draft
from drafts.errors import DraftError, StoreError
from drafts.store import freeze_params

from .. import default_registry
from ..errors import LensError, ParamsError
from ..lens import FrameContext, Lens, Output, _lookup
from ..params import resolve_params
from ..registry import Registry
from ..result import COMPLETED, ExecutionResult

__all__ = [
    "BUILTIN_LENS_PARAMS",
    "RULES",
    "LensCheckError",
    "LensCheckReport",
    "LensContractError",
    "carriers",
    "check_lens",
    "drafts",
    "frames",
    "json_values",
    "keys",
    "object_drafts",
    "scalars",
    "stores",
]

RULES = ("deterministic", "immutable-input", "valid-outputs", "map-only", "no-ambient-inputs")
"""The ids of the contract's rules, in the order ``check_lens`` reports them."""


# -- strategies --------------------------------------------------------------------------

keys = st.text(alphabet=string.ascii_letters + "$_-é", min_size=0, max_size=6)
"""Mapping keys, including the ``$`` prefix that canonical JSON must escape."""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=INT_MIN, max_value=INT_MAX),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
"""JSON-like scalars: None, bool, 64-bit int, finite float, str."""


def json_values(max_leaves: int = 20) -> SearchStrategy:
    """JSON-like values (what ``make_draft`` accepts) of at most ``max_leaves`` scalars.

    >>> from hypothesis import find
    >>> find(json_values(max_leaves=4), lambda v: isinstance(v, dict) and len(v) == 2)
    {'': None, 'A': None}
    """
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(keys, inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def drafts(max_leaves: int = 12, nested: bool = True) -> SearchStrategy:
    """Drafts of any JSON-like payload and meta; with ``nested``, some hold drafts.

    >>> from hypothesis import find
    >>> d = find(drafts(), lambda d: isinstance(d.payload, PMap) and any(type(v) is Draft for v in d.payload.values()))
    >>> type(d.payload[""]).__name__
    'Draft'
    """
    flat = st.builds(
        make_draft,
        json_values(max_leaves),
        st.one_of(st.none(), st.dictionaries(keys, json_values(4), max_size=3)),
    )
    if not nested:
        return flat
    return st.builds(
        make_draft,
        st.dictionaries(keys, st.one_of(json_values(4), flat), max_size=3),
        st.none(),
    )


def object_drafts(max_leaves: int = 8) -> SearchStrategy:
    """Drafts whose payload is an object with common fields a lens reads.

    Each of ``text`` (str), ``n`` (int), ``items`` and ``values`` (lists) is
    present or not, next to a few random fields; meta is mostly empty. With
    ``drafts()`` this is ``check_lens``'s default ``inputs``.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=20)
    ... @given(object_drafts())
    ... def test_payloads_are_objects(draft):
    ...     assert isinstance(draft.payload, PMap)
    >>> test_payloads_are_objects()
    """
    common = st.fixed_dictionaries(
        {},
        optional={
            "text": st.text(max_size=8),
            "n": st.integers(-3, 10),
            "items": st.lists(json_values(3), max_size=4),
            "values": st.lists(json_values(3), max_size=3),
        },
    )
    extra = st.dictionaries(keys, json_values(max(1, max_leaves // 2)), max_size=2)
    meta = st.one_of(st.none(), st.dictionaries(keys, json_values(3), max_size=2))
    return st.builds(lambda fields, more, m: make_draft({**more, **fields}, m), common, extra, meta)


def _default_frame() -> SearchStrategy:
    return st.one_of(
        st.builds(lambda t, n: make_draft({"text": t, "n": n}), st.text(max_size=6), st.integers(0, 5)),
        st.builds(lambda t, n: {"text": t, "n": n}, st.text(max_size=6), st.integers(0, 5)),
    )


def frames(max_frames: int = 8, *, min_frames: int = 0, frame: SearchStrategy | None = None) -> SearchStrategy:
    """Lists of carrier frames: drafts, or inline JSON-like values.

    ``frame`` draws one frame; the default is ``{"text": str, "n": int}`` as a
    draft or inline.
    """
    return st.lists(frame if frame is not None else _default_frame(), min_size=min_frames, max_size=max_frames)


def carriers(
    frames: SearchStrategy | None = None, *, min_frames: int = 0, max_frames: int = 8  # noqa: A002
) -> SearchStrategy:
    """``packDrafts`` carriers; ``frames`` draws one frame (see ``frames()``).

    >>> from hypothesis import find
    >>> from drafts import is_packed_carrier
    >>> c = find(carriers(max_frames=3), lambda c: len(c.payload["values"]) == 3)
    >>> is_packed_carrier(c), len(c.payload["values"])
    (True, 3)
    >>> c = find(carriers(st.integers(0, 9), min_frames=2), lambda c: True)
    >>> list(c.payload["values"])
    [0, 0]
    """
    return st.builds(pack_drafts, _frame_lists(max_frames, min_frames=min_frames, frame=frames))


_frame_lists = frames


BUILTIN_LENS_PARAMS: Mapping[str, Any] = {
    "text.upper": {},
    "list.split": {"field": "items"},
    "fields.pick": st.builds(
        lambda fields, strict: {"fields": fields, "strict": strict},
        st.lists(st.sampled_from(["text", "n", "items"]), max_size=2, unique=True),
        st.booleans(),
    ),
    "fields.rename": {"mapping": {"text": "label"}},
    "text.format": st.sampled_from([{"template": "<{text}>"}, {"template": "{n}:{text}", "into": "line"}]),
}
"""Params (a mapping, or a strategy of mappings) ``stores()`` uses for built-in lens ids."""


def _params_table(lens_ids: Any) -> list[tuple[str, SearchStrategy]]:
    if isinstance(lens_ids, Mapping):
        pairs = list(lens_ids.items())
    elif isinstance(lens_ids, str) or not isinstance(lens_ids, Iterable):
        raise TypeError(f"lens_ids must be a sequence of lens ids or a mapping id -> params, got {lens_ids!r}")
    else:
        pairs = [(lens_id, BUILTIN_LENS_PARAMS.get(lens_id, {})) for lens_id in lens_ids]
    if not pairs:
        raise ValueError("lens_ids must name at least one lens")
    return [(i, p if isinstance(p, SearchStrategy) else st.just(p)) for i, p in pairs]


@st.composite
def stores(
    draw,
    max_instances: int = 5,
    lens_ids: Sequence[str] | Mapping[str, Any] = tuple(BUILTIN_LENS_PARAMS),
    *,
    max_carriers: int = 2,
    max_frames: int = 8,
    max_plain: int = 2,
    max_source_values: int = 3,
) -> Store:
    """Random stores: carriers, plain drafts, source instances and ``OutputOf`` chains.

    Instances apply ``lens_ids`` (built-in lenses by default; pass your own
    ids to use a registry of yours) to a carrier, a plain draft or another
    instance's outputs, or are ``core.source`` instances. ``lens_ids`` may map
    each id to its params (a mapping or a strategy of mappings); ids given as
    a sequence take their params from ``BUILTIN_LENS_PARAMS`` (else ``{}``).

    >>> from hypothesis import find
    >>> s = find(stores(max_instances=3), lambda s: len(s.lens_instances) == 3)
    >>> list(s.lens_instances)
    ['i0', 'i1', 'i2']
    """
    table = _params_table(lens_ids)
    params_by_id = dict(table)
    store = Store.empty()
    inputs = []
    for carrier in draw(st.lists(carriers(max_frames=max_frames), min_size=1, max_size=max(1, max_carriers))):
        store = store.add_draft(carrier)
        inputs.append(carrier.id)
    plain = draw(
        st.lists(st.builds(lambda t: make_draft({"text": t, "n": 1}), st.text(max_size=5)), max_size=max_plain)
    )
    for d in plain:
        store = store.add_draft(d)
        inputs.append(d.id)
    for i in range(draw(st.integers(1, max(1, max_instances)))):
        choice = draw(st.sampled_from(["draft", "outputOf", "source"]))
        instance_id = f"i{i}"
        if choice == "source":
            values = draw(
                st.lists(st.builds(lambda t: {"text": t, "n": 2}, st.text(max_size=4)), max_size=max_source_values)
            )
            store = store.add_lens_instance(instance_id, "core.source", None, {"values": values})
            continue
        if choice == "outputOf" and store.lens_instances:
            source = OutputOf(draw(st.sampled_from(list(store.lens_instances))))
        else:
            source = draw(st.sampled_from(inputs))
        lens_id = draw(st.sampled_from([lens_id for lens_id, _ in table]))
        store = store.add_lens_instance(instance_id, lens_id, source, draw(params_by_id[lens_id]))
    return store


# -- errors and the report ------------------------------------------------------------------


class LensContractError(AssertionError):
    """A lens broke a rule of the contract.

    ``rule`` is one of ``RULES``; ``counterexample`` is a dict with the
    (shrunk) ``params`` and ``input`` (or ``frames``) and what was observed.
    An ``AssertionError``, so pytest shows it as a test failure.
    """

    def __init__(self, rule: str, message: str, counterexample: Mapping[str, Any] | None = None):
        super().__init__(f"[{rule}] {message}")
        self.rule = rule
        self.counterexample = dict(counterexample or {})


class LensCheckError(LensError, ValueError):
    """``check_lens`` cannot check this lens as asked (say why and what to pass)."""


@attrs.frozen
class LensCheckReport:
    """What a passing ``check_lens`` ran.

    ``rules``: the rules checked; ``examples``: generated (params, input)
    examples; ``raised``: how many of them made the lens raise (allowed: the
    engine turns it into a warning); ``fresh_process_examples``: how many were
    re-run in a fresh process; ``skipped``: ``(rule, reason)`` pairs.
    """

    lens_id: str
    rules: tuple[str, ...]
    examples: int
    raised: int
    fresh_process_examples: int
    skipped: tuple[tuple[str, str], ...] = ()


# -- one call, observed ------------------------------------------------------------------------

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


# -- ambient inputs: the clock, the random seed, the environment ---------------------------------

_REAL = {
    "time": time.time,
    "time_ns": time.time_ns,
    "localtime": time.localtime,
    "gmtime": time.gmtime,
    "ctime": time.ctime,
    "asctime": time.asctime,
    "strftime": time.strftime,
    "datetime": datetime.datetime,
    "date": datetime.date,
}
_CLOCKS = (1_700_000_000.25, 1_734_567_890.75)  # 2023-11-14 and 2024-12-19, at other times of day
_SEEDS = (0, 987_654_321)
_EXTRA_ENV = f"DRAFTLENS_CHECK_{secrets.token_hex(4).upper()}"
_now = [_CLOCKS[0]]


class _DelegatingMeta(type):
    """Keeps ``isinstance(real_datetime, datetime.datetime)`` true while the class is pinned."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls.__mro__[1])

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls.__mro__[1])


class _PinnedDatetime(datetime.datetime, metaclass=_DelegatingMeta):
    @classmethod
    def now(cls, tz=None):
        return _REAL["datetime"].fromtimestamp(_now[0], tz)

    @classmethod
    def today(cls):
        return _REAL["datetime"].fromtimestamp(_now[0])

    @classmethod
    def utcnow(cls):
        return _REAL["datetime"].fromtimestamp(_now[0], datetime.UTC).replace(tzinfo=None)


class _PinnedDate(datetime.date, metaclass=_DelegatingMeta):
    @classmethod
    def today(cls):
        return _REAL["date"].fromtimestamp(_now[0])


def _pinned_time_functions() -> dict[str, Any]:
    def with_now(real):
        return lambda t=None: real(_now[0] if t is None else t)

    return {
        "time": lambda: _now[0],
        "time_ns": lambda: int(_now[0] * 1_000_000_000),
        "localtime": with_now(_REAL["localtime"]),
        "gmtime": with_now(_REAL["gmtime"]),
        "ctime": with_now(_REAL["ctime"]),
        "asctime": lambda t=None: _REAL["asctime"](_REAL["localtime"](_now[0]) if t is None else t),
        "strftime": lambda fmt, t=None: _REAL["strftime"](fmt, _REAL["localtime"](_now[0]) if t is None else t),
    }


_PINNED = _pinned_time_functions()


def _other_tz() -> str:
    return "DLW+11" if os.environ.get("TZ") == "DLT-13:45" else "DLT-13:45"


@contextmanager
def _ambient(which: int, lens: Lens):
    """Run with ambient world ``which``: 0 is pinned, 1 differs in clock, seed, TZ and environment.

    Both are pinned (not left as they are) so that two runs in world 0 are
    comparable: a difference between them is nondeterminism, a difference
    between worlds 0 and 1 is an ambient input. Names the lens's module
    bound itself (``from time import time``) are pinned too.
    """
    _now[0] = _CLOCKS[which]
    random_state = random.getstate()
    random.seed(_SEEDS[which])
    saved: list[tuple[Any, str, Any]] = []

    def put(owner: Any, name: str, value: Any) -> None:
        if isinstance(owner, MutableMapping):
            saved.append((owner, name, owner.get(name, _MISSING)))
            owner[name] = value
        else:
            saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, value)

    fn_globals = getattr(lens.fn, "__globals__", {})
    real_by_id = {id(v): k for k, v in _REAL.items()}
    env = {_EXTRA_ENV: "1", "TZ": _other_tz()} if which else {}
    try:
        for name, value in _PINNED.items():
            put(time, name, value)
        put(datetime, "datetime", _PinnedDatetime)
        put(datetime, "date", _PinnedDate)
        for name, value in list(fn_globals.items()):
            real = real_by_id.get(id(value))
            if real is not None and value is _REAL[real]:
                put(fn_globals, name, _PINNED.get(real) or {"datetime": _PinnedDatetime, "date": _PinnedDate}[real])
        for name, value in env.items():
            put(os.environ, name, value)
        if env and hasattr(time, "tzset"):
            time.tzset()
        yield
    finally:
        for owner, name, value in reversed(saved):
            if isinstance(owner, MutableMapping):
                if value is _MISSING:
                    owner.pop(name, None)
                else:
                    owner[name] = value
            else:
                setattr(owner, name, value)
        if env and hasattr(time, "tzset"):
            time.tzset()
        random.setstate(random_state)


_MISSING = object()


# -- immutable input -------------------------------------------------------------------------------

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


# -- check_lens --------------------------------------------------------------------------------------

_DEFAULTS: dict[str, Any] = {"max_examples": None}  # set by the pytest plugin's --lens-examples
_FRESH_LIMIT = 40  # examples carried to the one fresh process
_INSTANCE = "check"


def _copy(draft: Draft | None, sorted_keys: bool) -> Draft | None:
    """A new, equal draft: keys in the original order, or sorted (as JSON gives them back)."""
    if draft is None:
        return None
    if sorted_keys:
        return draft_from_json(draft.to_json())
    payload, meta = draft.thaw()
    return make_draft(payload, meta)


def _engine_params(lens: Lens, data: Any) -> Any:
    """The params instance the engine would hand the lens for stored ``data``."""
    return resolve_params(lens, freeze_params(data, f"lens {lens.id!r}"))[0]


def _example(params: Any, draft: Draft | None) -> dict[str, Any]:
    return {"params": params, "input": draft}


class _Checker:
    """The state of one ``check_lens`` run (counts and examples for the fresh process)."""

    def __init__(self, lens: Lens, rules: tuple[str, ...]):
        self.lens = lens
        self.rules = rules
        self.examples = 0
        self.raised = 0
        self.first_error = ""
        self.saw_draft = False
        self.collected: dict[tuple, tuple[Any, Draft | None, _Outcome]] = {}
        self.context = FrameContext(_INSTANCE, None, None) if lens.takes_context else None

    # params ------------------------------------------------------------------------------------------
    def resolve(self, params: Any) -> tuple[Any, dict]:
        try:
            _, data = resolve_params(self.lens, params)
            return _engine_params(self.lens, data), data
        except (ParamsError, StoreError) as exc:
            msg = (f"params_strategy gave params lens {self.lens.id!r} refuses ({exc}); "
                   "make params_strategy draw only valid params")
            raise LensCheckError(msg) from None

    # one input -----------------------------------------------------------------------------------------
    def check_input(self, params: Any, draft: Draft | None) -> None:
        __tracebackhide__ = True  # pytest shows the user's test, not the kit
        lens, rules = self.lens, self.rules
        if draft is not None and type(draft) is not Draft:
            raise TypeError(f"inputs must draw Drafts (or None for a source lens), got {type(draft).__name__}; "
                            "e.g. st.builds(make_draft, ...)")
        instance, data = self.resolve(params)
        example = _example(data, draft)
        self.examples += 1
        self.saw_draft = self.saw_draft or draft is not None

        given_draft = _copy(draft, sorted_keys=False)
        before = _snapshot(given_draft)
        with _ambient(0, lens):
            first, exc = _call(lens, instance, given_draft, self.context)
        if "immutable-input" in rules:
            self._check_immutable(before, given_draft, exc, example, first)
        if first.kind == "invalid" and "valid-outputs" in rules:
            raise LensContractError("valid-outputs", f"lens {lens.id!r}: {first.error}", {**example, "got": first.error})
        if first.kind == "raised":
            self.raised += 1
            self.first_error = self.first_error or first.error

        if "deterministic" in rules:
            twin = _copy(draft, sorted_keys=True)
            before = _snapshot(twin)
            with _ambient(0, lens):
                second, exc = _call(lens, _engine_params(lens, data), twin, self.context)
            if "immutable-input" in rules:
                self._check_immutable(before, twin, exc, example, second)
            if second != first:
                raise LensContractError(
                    "deterministic",
                    f"lens {lens.id!r} gave different results for equal inputs: first call {first.describe()}; "
                    f"second call (an equal, separately built input and params) {second.describe()}. "
                    "Outputs may depend only on the draft and params (not on call counts, object ids, "
                    "dict/set order or os.urandom).",
                    {**example, "first": first.describe(), "second": second.describe()},
                )
            key = (orjson.dumps(data, option=orjson.OPT_SORT_KEYS), draft.id if draft is not None else None)
            if len(self.collected) < _FRESH_LIMIT and key not in self.collected:
                self.collected[key] = (data, draft, first)

        if "no-ambient-inputs" in rules:
            third_draft = _copy(draft, sorted_keys=False)
            with _ambient(1, lens):
                third, _ = _call(lens, _engine_params(lens, data), third_draft, self.context)
            if third != first:
                raise LensContractError(
                    "no-ambient-inputs",
                    f"lens {lens.id!r} gave {first.describe()} with the clock at {_CLOCKS[0]}, random.seed"
                    f"({_SEEDS[0]}) and the environment as is, but {third.describe()} with the clock at "
                    f"{_CLOCKS[1]}, random.seed({_SEEDS[1]}), TZ={_other_tz()!r} and an extra environment "
                    "variable. A lens may read only its draft and params: take times, seeds and settings "
                    "as params.",
                    {**example, "pinned": first.describe(), "changed": third.describe()},
                )

    def _check_immutable(self, before, draft, exc, example, outcome) -> None:
        __tracebackhide__ = True
        changed = _changed(before, draft)
        attempt = _mutation_attempt(exc, draft) if exc is not None else None
        if changed or attempt:
            why = f"the input draft was changed: {changed}" if changed else f"the lens tried to change its input: {attempt}"
            raise LensContractError(
                "immutable-input",
                f"lens {self.lens.id!r}: {why}. Drafts are frozen: build a new value (payload.set(...), "
                "or a dict from draft.thaw()) and yield it.",
                {**example, "got": outcome.describe()},
            )

    # map-only -----------------------------------------------------------------------------------------
    def check_frames(self, params: Any, frames_: list) -> None:
        __tracebackhide__ = True
        # The engine is needed to evaluate a carrier, but data flows one way
        # (lenses never import derived at module level: tests/test_api.py
        # pins it), so it is imported here, when a check runs.
        derived = importlib.import_module("derived")
        lens = self.lens
        _, data = self.resolve(params)
        carrier = pack_drafts(frames_)
        store = Store.empty().add_draft(carrier).add_lens_instance(_INSTANCE, lens.id, carrier.id, data)
        n = max(1, len(frames_))
        caps = derived.Caps(
            max_frames_evaluated=len(frames_),
            max_total_drafts_per_batch=_READ_LIMIT * n,
            max_total_drafts_per_recompute=_READ_LIMIT * n,
            max_drafts_emitted_per_frame=_READ_LIMIT,
        )
        with _ambient(0, lens):
            state = derived.recompute_derived(store, registry=_registry_with(lens), caps=caps)
        problems = [w for w in state.warnings if w.code in ("invalidParams", "unknownLens", "missingInput")]
        if problems:
            raise LensCheckError(f"the engine could not evaluate lens {lens.id!r}: {problems[0]}")
        got = [_strip_engine_meta(d) for d in state.outputs(_INSTANCE)]
        batch_id = state.batch_id_by_instance.get(_INSTANCE)
        expected: list[Draft] = []
        per_frame: list[str] = []
        for index, frame in enumerate(frames_):
            draft = frame if type(frame) is Draft else make_draft(frame)
            context = FrameContext(_INSTANCE, batch_id, index) if lens.takes_context else None
            with _ambient(0, lens):
                outcome, _ = _call(lens, _engine_params(lens, data), draft, context)
            per_frame.append(outcome.describe())
            if outcome.kind == "ok":
                expected.extend(outcome.drafts)
        if [d.id for d in got] != [d.id for d in expected]:
            shown_got = "[" + ", ".join(_short_payload(d) for d in got[:6]) + (", …" if len(got) > 6 else "") + "]"
            raise LensContractError(
                "map-only",
                f"lens {lens.id!r} (batch_behavior={lens.batch_behavior!r}): evaluating a packDrafts carrier "
                f"of {len(frames_)} frame{'s' if len(frames_) != 1 else ''} gave {shown_got}, but calling the lens on each frame and "
                f"concatenating gives [{', '.join(_short_payload(d) for d in expected[:6])}"
                f"{', …' if len(expected) > 6 else ''}]. A lens sees one draft and never loops over frames: "
                "the engine maps it over a carrier.",
                {"params": data, "frames": list(frames_), "engine": [d.payload for d in got],
                 "per_frame": per_frame},
            )

    # deterministic, in a fresh process -------------------------------------------------------------------
    def check_fresh_process(self) -> int:
        __tracebackhide__ = True
        lens = self.lens
        examples = sorted(self.collected.values(), key=lambda e: len(_json_of(e[1])) + len(orjson.dumps(e[0])))
        request = {
            "lens": [lens.fn.__module__, lens.fn.__qualname__],
            "examples": [[data, _json_of(draft).decode() if draft is not None else None] for data, draft, _ in examples],
            "context": self.context is not None,
        }
        results = _run_fresh_process(lens, request)
        for (data, draft, mine), (theirs, shown) in zip(examples, results, strict=True):
            if mine.signature() != theirs:
                raise LensContractError(
                    "deterministic",
                    f"lens {lens.id!r} gave {mine.describe()} in this process but {shown} in a fresh Python "
                    "process (another hash seed) for the same input and params. Outputs may not depend on "
                    "set or dict iteration order, hash(), object ids or per-process state. (The smallest "
                    "failing input of those tried.)",
                    {**_example(data, draft), "this_process": mine.describe(), "fresh_process": shown},
                )
        return len(examples)


def _json_of(draft: Draft | None) -> bytes:
    return draft.to_json() if draft is not None else b"null"


def _strip_engine_meta(draft: Draft) -> Draft:
    meta = {k: v for k, v in draft.meta.items() if k not in _RESERVED_META_KEYS}
    return make_draft(draft.payload, meta or None)


def _registry_with(lens: Lens) -> Registry:
    if lens.id in default_registry and default_registry.get(lens.id) != lens:
        registry = Registry(tuple(default_registry.get(i) for i in default_registry if i != lens.id))
    else:
        registry = default_registry.copy()
    registry.register(lens)
    return registry


def _other_hash_seed() -> str:
    current = os.environ.get("PYTHONHASHSEED")
    return "20241" if current != "20241" else "20242"


def _run_fresh_process(lens: Lens, request: dict) -> list:
    paths = [os.path.abspath(p or os.curdir) for p in sys.path]
    env = {**os.environ, "PYTHONHASHSEED": _other_hash_seed(), "PYTHONPATH": os.pathsep.join(paths)}
    with tempfile.TemporaryDirectory(prefix="draftlens-check-") as tmp:
        out_path = os.path.join(tmp, "results.json")
        request = {**request, "out": out_path}
        code = "from lenses.testing.checker import _fresh_process_main; _fresh_process_main()"
        try:
            proc = subprocess.run(
                [sys.executable, "-c", code], input=orjson.dumps(request), capture_output=True, env=env,
                timeout=600, check=False,
            )
        except subprocess.TimeoutExpired:
            raise LensCheckError(f"lens {lens.id!r}: the fresh-process run took over 600 s") from None
        if proc.returncode != 0 or not os.path.exists(out_path):
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-8:]
            msg = (f"lens {lens.id!r}: the fresh Python process that re-runs the lens failed "
                   f"(exit code {proc.returncode}):\n" + "\n".join(tail))
            raise LensCheckError(msg)
        with open(out_path, "rb") as f:
            return orjson.loads(f.read())


def _fresh_process_main() -> None:
    """Entry point of the fresh process: run the examples, write their signatures."""
    request = orjson.loads(sys.stdin.buffer.read())
    lens = _lookup(*request["lens"])
    context = FrameContext(_INSTANCE, None, None) if request["context"] else None
    out = []
    for data, text in request["examples"]:
        draft = draft_from_json(text) if text is not None else None
        with _ambient(0, lens):
            outcome, _ = _call(lens, _engine_params(lens, data), draft, context)
        out.append([outcome.signature(), outcome.describe()])
    with open(request["out"], "wb") as f:
        f.write(orjson.dumps(out))


def _params_strategy(lens: Lens, params_strategy: Any) -> SearchStrategy:
    if params_strategy is not None:
        if not isinstance(params_strategy, SearchStrategy):
            raise TypeError(
                f"params_strategy must be a hypothesis strategy of params (mappings or {_params_name(lens)} "
                f"instances), got {type(params_strategy).__name__}; for fixed params use st.just(...)"
            )
        return params_strategy
    try:
        resolve_params(lens, {})
    except ParamsError as exc:
        msg = (f"lens {lens.id!r} has params without defaults ({exc}); pass params_strategy=, e.g. "
               f"st.fixed_dictionaries({{...}}) or st.builds({_params_name(lens)}, ...)")
        raise LensCheckError(msg) from None
    return st.just({})


def _params_name(lens: Lens) -> str:
    return lens.params.__name__ if lens.params is not None else "params"


def _settings(max_examples: int | None) -> settings:
    # The explain phase re-draws a failing example hundreds of times to mark
    # which parts do not matter; for drafts and frame lists that costs seconds
    # per failure, so check_lens leaves it out (the failing example is shown).
    overrides: dict[str, Any] = {
        "phases": tuple(p for p in settings().phases if p != Phase.explain),
        "deadline": None,
        "report_multiple_bugs": False,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    }
    n = max_examples if max_examples is not None else _DEFAULTS["max_examples"]
    if n is not None:
        overrides["max_examples"] = n
    return settings(**overrides)


def _run_property(fn, hyp_settings: settings, strategies: dict[str, SearchStrategy], lens: Lens) -> None:
    __tracebackhide__ = True
    # Distinct database keys per lens, so a saved failure replays for the lens it belongs to.
    fn._hypothesis_internal_add_digest = f"{lens.fn.__module__}.{lens.fn.__qualname__}:{lens.id}".encode()
    test = hyp_settings(given(**strategies)(fn))
    try:
        test()
    except Flaky as exc:
        inner = [e for e in getattr(exc, "exceptions", ()) if isinstance(e, LensContractError)]
        example = inner[0].counterexample if inner else {}
        detail = f" (first failure: {inner[0]})" if inner else ""
        raise LensContractError(
            "deterministic",
            f"lens {lens.id!r} failed the contract on an input, then passed on the same input when re-run"
            f"{detail}; its outputs depend on something other than its draft and params",
            example,
        ) from exc


def _find_accepted(checker: _Checker, params_st: SearchStrategy, inputs: SearchStrategy) -> tuple | None:
    """``(params, draft)`` the lens does not raise on, from up to 300 more draws, or None."""
    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    def accepts(pair: tuple) -> bool:
        raised = checker.raised
        try:
            checker.check_input(*pair)
        except LensContractError:
            return True  # not vacuous, and broken: the caller re-runs it and reports the rule
        return checker.raised == raised

    try:
        return find(st.tuples(params_st, inputs), accepts,
                    settings=settings(max_examples=300, database=None, deadline=None,
                                      suppress_health_check=list(HealthCheck)))
    except NoSuchExample:
        return None


def check_lens(
    lens: Lens,
    params_strategy: SearchStrategy | None = None,
    inputs: SearchStrategy | None = None,
    *,
    max_examples: int | None = None,
    fresh_process: bool = True,
    skip: Iterable[str] = (),
) -> LensCheckReport:
    """Property-test ``lens`` against the contract; raise ``LensContractError`` naming the broken rule.

    ``params_strategy`` draws params (mappings or instances of the lens's
    params class); by default the class's defaults are used, and a lens with
    required params needs a strategy. ``inputs`` draws input drafts (default:
    ``object_drafts()`` and ``drafts()``; draw ``None`` for a source lens).
    Frames for ``map-only`` come from ``inputs`` too (as drafts and inline).
    A lens may raise on an input (the engine makes it a warning) as long as it
    raises the same way each time; raising on every input proves nothing and
    is a ``LensCheckError``.

    ``max_examples`` defaults to the hypothesis profile's (``--lens-examples``
    with the pytest plugin). ``fresh_process=False`` skips re-running the lens
    in a fresh Python process (needed for a lens that cannot be imported by
    reference, e.g. one defined in a doctest). ``skip`` names rules not to
    check, e.g. ``skip=("map-only",)`` for a ``batch_behavior="disable"`` lens
    that is meant to see a carrier whole.

    Call it from a plain test, not from inside ``@given``; hypothesis' report
    (the failing example) is attached to the error.

    >>> import time
    >>> from lenses import lens
    >>> @lens("demo.stamp")
    ... def stamp(draft, params):
    ...     yield {"at": time.time()}
    >>> try:
    ...     check_lens(stamp, max_examples=5, fresh_process=False)
    ... except LensContractError as err:
    ...     print(err.rule)
    no-ambient-inputs
    """
    __tracebackhide__ = True
    if not isinstance(lens, Lens):
        raise TypeError(f"check_lens takes a Lens (made with @lens), got {type(lens).__name__}")
    skip = tuple(skip)
    unknown = sorted(set(skip) - set(RULES))
    if unknown:
        raise ValueError(f"skip names unknown rules {unknown}; the rules are {list(RULES)}")
    rules = tuple(r for r in RULES if r not in skip)
    params_st = _params_strategy(lens, params_strategy)
    if inputs is None:
        inputs = st.one_of(object_drafts(), object_drafts(), drafts(max_leaves=8))
    elif not isinstance(inputs, SearchStrategy):
        raise TypeError(f"inputs must be a hypothesis strategy of input drafts (or None), got {type(inputs).__name__}")
    fresh = fresh_process and "deterministic" in rules
    if fresh:
        _check_importable(lens)
    skipped = [(r, "skip=") for r in skip]
    checker = _Checker(lens, rules)
    hyp_settings = _settings(max_examples)

    def lens_contract(params, draft):
        __tracebackhide__ = True
        checker.check_input(params, draft)

    _run_property(lens_contract, hyp_settings, {"params": params_st, "draft": inputs}, lens)
    if checker.examples and checker.raised == checker.examples:
        # Random inputs can all miss what a lens accepts by chance; look harder before calling it vacuous.
        accepted = _find_accepted(checker, params_st, inputs)
        if accepted is not None:
            checker.check_input(*accepted)  # the contract on an input the lens accepts (raises if broken)
    if checker.examples and checker.raised == checker.examples:
        msg = (f"lens {lens.id!r} raised on all {checker.examples} generated inputs (e.g. {checker.first_error}), "
               "so the check proves nothing; pass inputs= a strategy of drafts it accepts, e.g. "
               "inputs=st.builds(make_draft, st.fixed_dictionaries({'text': st.text()}))")
        raise LensCheckError(msg)

    if "map-only" in rules:
        if checker.saw_draft:
            frame = inputs.filter(lambda d: type(d) is Draft)
            frame = st.one_of(frame, frame.map(lambda d: d if d.meta else thaw(d.payload)))

            def lens_map_only(params, frames):
                __tracebackhide__ = True
                checker.check_frames(params, frames)

            frames_st = st.lists(frame, max_size=6)
            _run_property(lens_map_only, hyp_settings, {"params": params_st, "frames": frames_st}, lens)
        else:
            rules = tuple(r for r in rules if r != "map-only")
            skipped.append(("map-only", "inputs drew no drafts (a source lens)"))

    fresh_examples = checker.check_fresh_process() if fresh and checker.collected else 0
    return LensCheckReport(lens.id, rules, checker.examples, checker.raised, fresh_examples, tuple(skipped))


def _check_importable(lens: Lens) -> None:
    try:
        pickle.dumps(lens)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        msg = (f"lens {lens.id!r} cannot be imported by reference, so a fresh process cannot re-run it ({exc}); "
               "define it at module level in an importable module, or pass fresh_process=False")
        raise LensCheckError(msg) from None
    if lens.fn.__module__ == "__main__":
        raise LensCheckError(
            f"lens {lens.id!r} is defined in __main__, which a fresh process cannot import; "
            "move it to a module or pass fresh_process=False"
        )
