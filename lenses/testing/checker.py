"""``check_lens``: the lens contract as hypothesis properties, and the report of a passing check.

``check_lens(lens)`` draws params and inputs, checks every rule of ``RULES`` on
each (see ``lenses.testing.rules``), ``map-only`` against the engine on drawn
carriers, and ``deterministic`` once more in a fresh process; it raises
``LensContractError`` naming the broken rule, or returns a ``LensCheckReport``.

This module needs hypothesis (a test dependency); ``import lenses`` does not
import it.
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Iterable
from typing import Any

import attrs
import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.strategies import SearchStrategy
from pyrsistent import thaw

from drafts import Store, draft_from_json, make_draft, pack_drafts
from drafts.draft import Draft
from drafts.errors import StoreError

from .. import default_registry
from ..errors import ParamsError
from ..lens import FrameContext, Lens
from ..params import resolve_params
from ..registry import Registry
from .ambient import _CLOCKS, _SEEDS, _ambient, _world_difference
from .calls import (
    _INSTANCE,
    _READ_LIMIT,
    _RESERVED_META_KEYS,
    _call,
    _engine_params,
    _Outcome,
    _short_payload,
)
from .fresh import _run_fresh_process
from .mutation import _changed, _mutation_attempt, _snapshot, _watching
from .rules import RULES, LensCheckError, LensContractError
from .strategies import drafts, object_drafts


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


_DEFAULTS: dict[str, Any] = {"max_examples": None}  # set by the pytest plugin's --lens-examples


_FRESH_LIMIT = 40  # examples carried to the one fresh process


def _copy(draft: Draft | None, sorted_keys: bool) -> Draft | None:
    """A new, equal draft: keys in the original order, or sorted (as JSON gives them back)."""
    if draft is None:
        return None
    if sorted_keys:
        return draft_from_json(draft.to_json())
    payload, meta = draft.thaw()
    return make_draft(payload, meta)


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

        watch = "immutable-input" in rules
        given_draft = _copy(draft, sorted_keys=False)
        before = _snapshot(given_draft)
        with _ambient(0, lens), _watching(given_draft if watch else None) as attempts:
            first, exc = _call(lens, instance, given_draft, self.context)
        if watch:
            self._check_immutable(before, given_draft, exc, example, first, attempts)
        if first.kind == "invalid" and "valid-outputs" in rules:
            raise LensContractError("valid-outputs", f"lens {lens.id!r}: {first.error}", {**example, "got": first.error})
        if first.kind == "raised":
            self.raised += 1
            self.first_error = self.first_error or first.error

        if "deterministic" in rules:
            twin = _copy(draft, sorted_keys=True)
            before = _snapshot(twin)
            with _ambient(0, lens), _watching(twin if watch else None) as attempts:
                second, exc = _call(lens, _engine_params(lens, data), twin, self.context)
            if watch:
                self._check_immutable(before, twin, exc, example, second, attempts)
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
                    f"({_SEEDS[0]}), the environment and working directory as they are, but {third.describe()} "
                    f"with the clock at {_CLOCKS[1]}, random.seed({_SEEDS[1]}), {_world_difference()}. A lens "
                    "may read only "
                    "its draft and params: take times, seeds, settings, user names and paths as params.",
                    {**example, "pinned": first.describe(), "changed": third.describe()},
                )

    def _check_immutable(self, before, draft, exc, example, outcome, attempts) -> None:
        __tracebackhide__ = True
        changed = _changed(before, draft)
        attempt = _mutation_attempt(exc, draft) if exc is not None else None
        if attempt is None and attempts:
            attempt = attempts[0] + (" (and caught the error it raised)" if exc is None else "")
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
        with _ambient(0, lens):  # the world the engine described the jobs in
            refused = _refused_frames(derived, lens, _engine_params(lens, data), carrier, frames_, batch_id)
        expected: list[Draft] = []
        per_frame: list[str] = []
        for index, frame in enumerate(frames_):
            if index in refused:
                per_frame.append(f"left out: the engine refuses it ({refused[index]})")
                continue
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
                f"{', …' if len(expected) > 6 else ''}]"
                f"{_left_out(refused)}. A lens sees one draft and never loops over frames: "
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


def _refused_frames(derived: Any, lens: Lens, params: Any, carrier: Draft, frames_: list,
                    batch_id: str | None) -> dict[int, str]:
    """``{frame index: why}`` for the frames whose jobs the engine refuses to run for where they would write.

    Only a lens with ``describe`` (one that writes files) has such frames: the
    engine's output-claim rule (``derived.claims``: two jobs that would write
    one file both fail validation; so does a job that would replace a media
    source of the store) is applied to what ``describe`` gives for each frame,
    as the engine applies it. Those frames give no outputs under the engine
    by design, so ``map-only`` leaves them out of the comparison instead of
    blaming the lens; the other frames are still compared.
    """
    if lens.describe is None or lens.batch_behavior == "disable":  # "disable": one job for the whole carrier
        return {}
    claims = importlib.import_module("derived.claims")
    named: list[tuple[str, str, int]] = []
    for index, frame in enumerate(frames_):
        draft = frame if type(frame) is Draft else make_draft(frame)
        try:
            if lens.takes_context:
                info = lens.describe(draft, params, FrameContext(_INSTANCE, batch_id, index))
            else:
                info = lens.describe(draft, params)
        except Exception:  # noqa: BLE001 - the engine makes it a validation failure of that frame; not a claim
            continue
        if info and "error" not in info:
            named.extend((claims.who(_INSTANCE, index), path, index) for path in info.get("outputs", ()))
    checker = claims.Claims(claims.media_source_paths([carrier]))
    errors = checker.check([(name, path) for name, path, _ in named])
    refused: dict[int, str] = {}
    for position, message in errors.items():
        refused.setdefault(named[position][2], message)
    return refused


def _left_out(refused: dict[int, str]) -> str:
    if not refused:
        return ""
    shown = ", ".join(str(i) for i in sorted(refused))
    return (f" (frames {shown} not called on their own: the engine refuses their jobs for where they would write, "
            f"e.g. {next(iter(refused.values()))})")


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
