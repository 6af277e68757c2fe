"""Hypothesis strategies for JSON-like values, drafts, carriers and stores.

The ones draftlens' own test-suite uses (``tests/strategies.py`` re-exports
them), and ``check_lens``'s default inputs (``object_drafts()`` and
``drafts()``).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from drafts import OutputOf, Store, make_draft, pack_drafts
from drafts.canonical import INT_MAX, INT_MIN

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
    >>> from pyrsistent import PMap
    >>> from drafts import Draft
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
    >>> from pyrsistent import PMap
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
