"""Hypothesis strategies shared by the test suite (one source of truth).

Re-exported for users as ``lenses.testing`` once that lands.
"""

from __future__ import annotations

import string

from hypothesis import strategies as st

from drafts import OutputOf, Store, make_draft, pack_drafts
from drafts.canonical import INT_MAX, INT_MIN

keys = st.text(alphabet=string.ascii_letters + "$_-é", min_size=0, max_size=6)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=INT_MIN, max_value=INT_MAX),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)


def json_values(max_leaves: int = 20):
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(keys, inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def drafts(max_leaves: int = 12, nested: bool = True):
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


def frames(max_frames: int = 8):
    frame = st.one_of(
        st.builds(lambda t, n: make_draft({"text": t, "n": n}), st.text(max_size=6), st.integers(0, 5)),
        st.builds(lambda t, n: {"text": t, "n": n}, st.text(max_size=6), st.integers(0, 5)),
    )
    return st.lists(frame, max_size=max_frames)


def carriers(max_frames: int = 8):
    return st.builds(pack_drafts, frames(max_frames))


@st.composite
def stores(draw, max_instances: int = 5, lens_ids=("text.upper", "test.repeat", "test.flaky", "list.split")):
    """Random stores: carriers, plain drafts, source instances and OutputOf chains."""
    store = Store.empty()
    inputs = []
    for carrier in draw(st.lists(carriers(), min_size=1, max_size=2)):
        store = store.add_draft(carrier)
        inputs.append(carrier.id)
    plain = draw(st.lists(st.builds(lambda t: make_draft({"text": t, "n": 1}), st.text(max_size=5)), max_size=2))
    for d in plain:
        store = store.add_draft(d)
        inputs.append(d.id)
    for i in range(draw(st.integers(1, max_instances))):
        choice = draw(st.sampled_from(["draft", "outputOf", "source"]))
        instance_id = f"i{i}"
        if choice == "source":
            values = draw(st.lists(st.builds(lambda t: {"text": t, "n": 2}, st.text(max_size=4)), max_size=3))
            store = store.add_lens_instance(instance_id, "core.source", None, {"values": values})
            continue
        if choice == "outputOf" and store.lens_instances:
            source = OutputOf(draw(st.sampled_from(list(store.lens_instances))))
        else:
            source = draw(st.sampled_from(inputs))
        lens_id = draw(st.sampled_from(list(lens_ids)))
        params = {"field": "items"} if lens_id == "list.split" else {}
        if lens_id == "test.repeat":
            params = {"times": draw(st.integers(0, 3))}
        store = store.add_lens_instance(instance_id, lens_id, source, params)
    return store
