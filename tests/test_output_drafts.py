"""Lens outputs as one small record each (issue 18, "Speed without hidden switches").

An output draft is named from its payload's canonical bytes spliced with the
engine meta's, holds a flat payload as a private dict and its batch meta as a
recipe until first read. None of that may be observable: each output equals
``make_draft(payload, meta)`` in id, payload, meta, JSON and pickling, and
stays deeply immutable. The GC is never switched or tuned by a recompute.
"""

from __future__ import annotations

import enum
import gc
import pickle
import re
import string
import tracemalloc

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrsistent import PMap, pmap, thaw

from derived import Caps, recompute_derived
from derived.evaluate import CallOutcome, call_lens, checked_output
from drafts import Draft, Store, make_draft, pack_drafts
from drafts.draft import check_payload, engine_meta, frozen_payload, output_drafts
from drafts.errors import DraftError
from lenses import Registry, lens
from tests.strategies import drafts, json_values, keys, scalars

names = st.text(alphabet=string.ascii_letters + string.digits + '%"\\.-é\n', min_size=1, max_size=8)
payloads = st.one_of(
    st.dictionaries(keys, scalars, max_size=6),  # flat maps: held as a dict copy, the fast path
    json_values(),
    st.dictionaries(keys, st.one_of(scalars, drafts(max_leaves=4)), max_size=3),  # nested drafts
)
user_metas = st.one_of(st.none(), st.dictionaries(keys.filter(lambda k: k not in ("batch", "provenance")),
                                                  json_values(4), max_size=3))
frame_indexes = st.one_of(st.none(), st.integers(0, 10**9))
source_ids = st.one_of(st.none(), st.text(alphabet="0123456789abcdef", min_size=32, max_size=32), names)


def _expected(payload, meta, lens_id, version, instance_id, batch_id, frame_index, source_id, variant) -> Draft:
    full = dict(meta or {})
    full["provenance"] = {"lensId": lens_id, "lensVersion": version, "lensInstanceId": instance_id}
    if frame_index is not None:
        full["batch"] = {"kind": "mapFrames", "batchId": batch_id, "frameIndex": frame_index,
                         "frameSourceDraftId": source_id, "variantIndex": variant}
    return make_draft(payload, full)


@settings(max_examples=150)
@given(st.lists(st.tuples(payloads, user_metas), min_size=1, max_size=3), names, names, names, names,
       frame_indexes, source_ids, st.booleans())
def test_an_output_draft_equals_make_draft_in_id_payload_meta_json_and_pickling(
    outputs, lens_id, version, instance_id, batch_id, frame_index, source_id, read_meta_first
):
    checked = tuple(checked_output(p, m) for p, m in outputs)
    made = output_drafts(checked, engine_meta(lens_id, version, instance_id, batch_id), frame_index, source_id)
    assert len(made) == len(outputs)
    for variant, (d, (payload, meta)) in enumerate(zip(made, outputs, strict=True)):
        want = _expected(payload, meta, lens_id, version, instance_id, batch_id, frame_index, source_id, variant)
        # Pickled before anything was read: the lazy parts travel as they are.
        back = pickle.loads(pickle.dumps(d))
        if read_meta_first:
            assert d.meta == want.meta
        assert d.id == want.id and d == want and hash(d) == hash(want)
        assert d.payload == want.payload and d.meta == want.meta
        assert d.to_json() == want.to_json()
        assert d._document_depth() == want._document_depth()
        assert make_draft({"nested": d}).id == make_draft({"nested": want}).id
        assert back == want and back.payload == want.payload and back.meta == want.meta
        assert back.to_json() == want.to_json()
        again = pickle.loads(pickle.dumps(d))  # pickled after reading: equal too
        assert again.to_json() == want.to_json() and again.meta == want.meta


@given(payloads, frame_indexes, source_ids)
def test_an_output_drafts_meta_and_payload_are_frozen_and_read_once(payload, frame_index, source_id):
    (d,) = output_drafts((checked_output(payload),), engine_meta("l", "1", "i", "b"), frame_index, source_id)
    meta, frozen = d.meta, d.payload
    assert isinstance(meta, PMap) and d.meta is meta and d.payload is frozen  # one object once read
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        d.meta = {}  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        d.payload = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        meta["provenance"] = 1  # type: ignore[index]
    if frame_index is not None:
        with pytest.raises(TypeError):
            meta["batch"]["frameIndex"] = 1  # type: ignore[index]
        changed = meta.set("batch", meta["batch"].set("frameIndex", -1))
        assert changed["batch"]["frameIndex"] == -1 and d.meta["batch"]["frameIndex"] == frame_index
    assert thaw(d.meta) == thaw(_expected(payload, None, "l", "1", "i", "b", frame_index, source_id, 0).meta)


@given(st.dictionaries(keys, scalars, max_size=8), st.dictionaries(keys, scalars, max_size=8))
def test_a_held_payload_is_the_frozen_one_in_key_order(first, second):
    held, data = check_payload(first)
    assert frozen_payload(held) == make_draft(first).payload
    # Equal payloads hold equal tuples and bytes, whatever their key order.
    reordered = dict(reversed(list(first.items())))
    assert check_payload(reordered) == (held, data)
    assert (check_payload(second) == (held, data)) == (second == first)


class _Key(str):
    pass


class _Level(enum.IntEnum):
    HIGH = 2


@pytest.mark.parametrize("payload", [
    {"n": 2**53}, {"n": -(2**53)}, {"n": 2**63 - 1}, {"n": -(2**63)},  # past orjson's strict integers
    {"$n": 1}, {"a": "$x"}, {"a": "$x", "$b": None},  # "$" keys are escaped, "$" values are not
    {_Key("k"): 1}, {"k": _Key("v")}, {"k": _Level.HIGH}, {"k": True, "j": False, "i": None},
])
def test_a_flat_payload_is_held_and_named_as_make_draft_names_it(payload):
    (d,) = output_drafts((checked_output(payload),), engine_meta("l", "1", "i", "b"), 0, None)
    want = make_draft(payload, d.meta)
    assert d.id == want.id and d.payload == want.payload and d.to_json() == want.to_json()
    assert all(type(k) is str for k in d.payload) and all(type(v) in (str, int, bool, type(None))
                                                            for v in d.payload.values())


@pytest.mark.parametrize(("payload", "message"), [
    ({"n": 2**63}, "payload['n']: integer 9223372036854775808 does not fit in 64 bits"),
    ({"n": -(2**63) - 1}, "does not fit in 64 bits"),
    ({"s": "\ud800"}, "payload['s']: string is not valid Unicode"),
    ({1: "x"}, "keys must be str"),
])
def test_a_bad_flat_payload_is_refused_as_make_draft_refuses_it(payload, message):
    with pytest.raises(DraftError, match=re.escape(message)):
        checked_output(payload)
    with pytest.raises(DraftError, match=re.escape(message)):
        make_draft(payload)


def test_an_output_that_cannot_be_named_says_which_and_where():
    bad_meta = checked_output({"n": 1}, {"s": "\ud800"})  # found only when the meta is encoded
    with pytest.raises(DraftError, match=r"output 1: meta\['s'\]: string is not valid Unicode"):
        output_drafts((checked_output({"n": 0}), bad_meta), engine_meta("l", "1", "i", "b"), 0, None)
    with pytest.raises(DraftError, match=r"payload\['s'\]: string is not valid Unicode"):
        check_payload({"s": "\udc80"})
    # A lone surrogate in a name the engine writes takes the general path and is named there.
    with pytest.raises(DraftError, match=r"output 0: meta\['provenance'\]\['lensInstanceId'\]"):
        output_drafts((checked_output({"n": 0}),), engine_meta("l", "1", "\ud800", "b"), 0, None)


def test_a_call_outcome_is_checked_where_the_lens_ran_and_pickles():
    @lens("test.out18", version="1")
    def two(draft, params):
        yield {"b": 2, "a": draft.payload["n"]}
        yield {"deep": [1.5, {"x": None}]}

    outcome = call_lens(two, None, make_draft({"n": 1}), ("i", "b", 0), 8)
    assert type(outcome) is CallOutcome and outcome.error_code is None and len(outcome.outputs) == 2
    assert pickle.loads(pickle.dumps(outcome)) == outcome
    assert outcome.outputs[0] == ({"a": 1, "b": 2}, b'{"a":1,"b":2}', None)


def test_an_output_is_a_copy_the_lens_cannot_change_afterwards():
    kept = {"n": 1}

    @lens("test.keeps18", version="1")
    def keeps(draft, params):
        return [kept]

    outcome = call_lens(keeps, None, make_draft({"n": 1}), ("i", "b", 0), 8)
    (d,) = output_drafts(outcome.outputs, engine_meta("test.keeps18", "1", "i", "b"), 0, None)
    kept["n"] = 2  # the lens's own dict, changed after the call
    kept["x"] = [1]
    assert d.payload == pmap({"n": 1}) and d == make_draft({"n": 1}, d.meta)


# -- through recompute_derived -----------------------------------------------------------------------


@lens("test.inc18", version="1")
def inc(draft, params):
    yield {"n": draft.payload["n"] + 1}


@lens("test.gc18", version="1")
def gc_probe(draft, params):
    SEEN.add((gc.isenabled(), gc.get_threshold()))
    yield {"n": draft.payload["n"]}


SEEN: set = set()
REG = Registry((inc, gc_probe))


def _store(n: int, lens_id: str = "test.inc18", inline: int = 3) -> tuple[Store, Caps, list]:
    frames = [make_draft({"n": i}) if i % inline else {"n": i} for i in range(n)]  # draft and inline frames
    carrier = pack_drafts(frames)
    store = Store.empty().add_draft(carrier).add_lens_instance("x", lens_id, carrier.id)
    return store, Caps(max_frames_evaluated=n, max_total_drafts_per_batch=n, max_total_drafts_per_recompute=n), frames


def test_recompute_outputs_equal_make_draft_of_their_payload_and_meta():
    store, caps, frames = _store(50)
    state = recompute_derived(store, registry=REG, caps=caps)
    outputs = state.outputs("x")
    assert len(outputs) == 50
    for index, d in enumerate(outputs):
        again = make_draft(thaw(d.payload), thaw(d.meta))
        assert again == d and again.to_json() == d.to_json()
        assert d.meta["batch"]["frameIndex"] == index and d.payload["n"] == index + 1
        assert d.meta["batch"]["frameSourceDraftId"] == (frames[index].id if index % 3 else None)
    # Downstream of these outputs (packed as frames): the same carrier as from eager drafts.
    eager = [make_draft(thaw(d.payload), thaw(d.meta)) for d in outputs]
    assert pack_drafts(outputs).id == pack_drafts(eager).id


def test_a_non_batched_output_carries_provenance_only_and_equals_make_draft():
    source = make_draft({"n": 41})
    store = Store.empty().add_draft(source).add_lens_instance("one", "test.inc18", source.id)
    (d,) = recompute_derived(store, registry=REG).outputs("one")
    want = make_draft({"n": 42}, {"provenance": {"lensId": "test.inc18", "lensVersion": "1", "lensInstanceId": "one"}})
    assert d == want and d.meta == want.meta and d.to_json() == want.to_json()
    assert pickle.loads(pickle.dumps(d)).to_json() == want.to_json()


def test_a_recompute_never_switches_or_tunes_the_cyclic_gc():
    SEEN.clear()
    outside = (gc.isenabled(), gc.get_threshold())
    store, caps, _ = _store(2000, "test.gc18")
    recompute_derived(store, registry=REG, caps=caps)
    assert SEEN == {outside}
    assert (gc.isenabled(), gc.get_threshold()) == outside


def test_a_recompute_leaves_one_gc_tracked_object_per_small_output():
    """Fewer tracked objects per output is what keeps the GC's (and the caller's) cost down."""
    n = 5000
    store, caps, _ = _store(n, inline=n + 1)  # draft frames only (the plan keeps a draft per inline frame)
    recompute_derived(store, registry=REG, caps=caps)  # warm caches (lens code fingerprint, imports)
    gc.collect()
    before = len(gc.get_objects())
    state = recompute_derived(store, registry=REG, caps=caps)
    gc.collect()
    grown = len(gc.get_objects()) - before
    assert grown <= 1.05 * n, f"{grown / n:.2f} GC-tracked objects per output"
    d = state.outputs("x")[7]
    assert not gc.is_tracked(d._payload) and not gc.is_tracked(d._meta)


def _traced_recompute(store, caps):
    """``(state, bytes retained, peak bytes)`` of a second recompute of ``store`` (the first warms up)."""
    recompute_derived(store, registry=REG, caps=caps)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        state = recompute_derived(store, registry=REG, caps=caps)
        peak = tracemalloc.get_traced_memory()[1] - before
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return state, retained, peak


def test_a_small_output_retains_at_most_1_kib():
    n = 5000
    store, caps, _ = _store(n)
    state, retained, _ = _traced_recompute(store, caps)
    assert len(state.outputs("x")) == n
    assert retained / n <= 1024, f"{retained / n:.0f} bytes per output"


def test_kept_payload_bytes_cost_their_own_size():
    """orjson returns bytes in a 4 KiB allocation; kept ones (in outcomes, the memo) must not be."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [check_payload({"n": i}) for i in range(1000)] + [check_payload({"n": [i, 1.5]}) for i in range(1000)]
        per_payload = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert per_payload < 400, f"{per_payload:.0f} bytes per checked payload"


def test_a_recompute_peaks_below_2_kib_per_frame_over_its_inputs():
    n = 5000
    store, caps, _ = _store(n, inline=n + 1)
    state, _, peak = _traced_recompute(store, caps)
    assert len(state.outputs("x")) == n
    assert peak / n <= 2048, f"peak {peak / n:.0f} bytes per frame"
