import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derived import Caps, DerivedState, recompute_derived
from drafts import OutputOf, Store, make_draft, pack_drafts
from tests import lenses_for_tests as tl
from tests.strategies import frames, stores

REG = tl.registry()


def _store(frames_, lens_id="text.upper", params=None):
    carrier = pack_drafts(frames_)
    return carrier, Store.empty().add_draft(carrier).add_lens_instance("x", lens_id, carrier.id, params)


def _codes(state):
    return [w.code for w in state.warnings]


def test_batch_outputs_carry_batch_meta_in_frame_then_variant_order():
    frame0 = make_draft({"text": "a", "n": 0})
    carrier, store = _store([frame0, {"text": "b", "n": 1}], "test.repeat", {"times": 2})
    state = recompute_derived(store, registry=REG)
    outs = state.outputs("x")
    batch = [dict(d.meta["batch"]) for d in outs]
    batch_id = batch[0]["batchId"]
    assert [(b["frameIndex"], b["variantIndex"]) for b in batch] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(b["kind"] == "mapFrames" and b["batchId"] == batch_id for b in batch)
    assert [b["frameSourceDraftId"] for b in batch] == [frame0.id, frame0.id, None, None]
    assert dict(outs[0].meta["provenance"]) == {"lensId": "test.repeat", "lensVersion": "1", "lensInstanceId": "x"}
    assert outs[0].meta["note"] == "repeat"  # Output meta is kept
    assert state.draft_ids_by_batch_id[batch_id] == tuple(d.id for d in outs)
    assert state.draft_ids_by_batch_frame[(batch_id, 1)] == (outs[2].id, outs[3].id)
    summary = state.batch_summary_by_batch_id[batch_id]
    assert (summary.frames, summary.outputs, summary.outputs_per_frame) == (2, 4, (2, 2))
    assert (summary.lens_instance_id, summary.lens_id, summary.truncated) == ("x", "test.repeat", False)
    assert state.drafts[outs[0].id] is outs[0]


def test_only_packed_carriers_trigger_batching():
    shaped = make_draft({"values": [{"text": "a"}], "text": "whole"})
    store = Store.empty().add_draft(shaped).add_lens_instance("x", "text.upper", shaped.id)
    state = recompute_derived(store, registry=REG)
    (out,) = state.outputs("x")
    assert out.payload["text"] == "WHOLE" and "batch" not in out.meta
    assert state.draft_ids_by_batch_id == {}


def test_batch_behavior_disable_and_enable():
    carrier = pack_drafts([{"n": 1}, {"n": 2}])
    other = make_draft({"values": [1, 2, 3]}, {"carrier": {"kind": "zipDrafts"}})
    store = (
        Store.empty().add_draft(carrier).add_draft(other)
        .add_lens_instance("off", "test.count", carrier.id)
        .add_lens_instance("on", "test.enable", other.id)
        .add_lens_instance("inherit", "test.flaky", other.id)
    )
    state = recompute_derived(store, registry=REG)
    assert [d.payload["count"] for d in state.outputs("off")] == [2]
    assert len(state.outputs("on")) == 3 and all("batch" in d.meta for d in state.outputs("on"))
    assert len(state.outputs("inherit")) == 1 and "batch" not in state.outputs("inherit")[0].meta


def test_source_instances_are_called_once_with_no_draft():
    store = Store.empty().add_lens_instance("src", "core.source", None, {"values": [{"text": "x"}, {"text": "y"}]})
    store = store.add_lens_instance("up", "text.upper", OutputOf("src"))
    state = recompute_derived(store, registry=REG)
    assert [d.payload for d in state.outputs("src")] == [{"text": "x"}, {"text": "y"}]
    assert [d.payload["text"] for d in state.outputs("up")] == ["X", "Y"]
    # OutputOf frames are the upstream drafts themselves.
    assert [d.meta["batch"]["frameSourceDraftId"] for d in state.outputs("up")] == [d.id for d in state.outputs("src")]


def test_chaining_follows_dependencies_not_insertion_alone():
    d = make_draft({"text": "a", "items": [1, 2]})
    store = Store.empty().add_draft(d).add_lens_instance("a", "list.split", d.id, {"field": "items"})
    store = store.add_lens_instance("b", "test.repeat", OutputOf("a"), {"times": 1})
    state = recompute_derived(store, registry=REG)
    assert [x.payload for x in state.outputs("a")] == [1, 2]
    assert state.instance_ids == ("a", "b")


def test_frame_cap_truncates_frames_with_a_warning():
    _, store = _store([{"text": str(i)} for i in range(5)])
    state = recompute_derived(store, registry=REG, caps=Caps(max_frames_evaluated=3))
    assert [d.payload["text"] for d in state.outputs("x")] == ["0", "1", "2"]
    (w,) = state.warnings
    assert (w.code, w.lens_instance_id, w.details["requested"], w.details["evaluated"]) == ("truncatedFrames", "x", 5, 3)
    assert w.batch_id == state.outputs("x")[0].meta["batch"]["batchId"]
    assert state.batch_summary_by_batch_id[w.batch_id].truncated


def test_per_frame_cap_and_a_lens_that_never_stops():
    _, store = _store([{"n": 0}, {"n": 1}], "test.forever")
    state = recompute_derived(store, registry=REG, caps=Caps(max_drafts_emitted_per_frame=3))
    assert [d.payload["n"] for d in state.outputs("x")] == [0, 1, 2, 0, 1, 2]
    assert _codes(state) == ["truncatedFrameOutputs", "truncatedFrameOutputs"]
    assert [w.frame_index for w in state.warnings] == [0, 1]


def test_batch_cap_drops_from_the_end():
    _, store = _store([{"text": str(i), "n": i} for i in range(3)], "test.repeat", {"times": 3})
    state = recompute_derived(store, registry=REG, caps=Caps(max_total_drafts_per_batch=4))
    assert [(d.payload["n"], d.payload["copy"]) for d in state.outputs("x")] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    (w,) = state.warnings
    assert (w.code, w.details["requested"], w.details["emitted"]) == ("truncatedBatchOutputs", 9, 4)
    summary = state.batch_summary_by_batch_id[w.batch_id]
    assert summary.outputs_per_frame == (3, 1, 0) and summary.truncated


def test_recompute_cap_counts_every_output_in_instance_order():
    store = Store.empty().add_lens_instance("a", "core.source", None, {"values": [1, 2, 3]})
    store = store.add_lens_instance("b", "core.source", None, {"values": [4, 5]})
    store = store.add_lens_instance("c", "core.source", None, {"values": [6]})
    state = recompute_derived(store, registry=REG, caps=Caps(max_total_drafts_per_recompute=4))
    assert [d.payload for d in state.outputs("a")] == [1, 2, 3]
    assert [d.payload for d in state.outputs("b")] == [4]
    assert state.outputs("c") == ()
    assert [(w.code, w.lens_instance_id) for w in state.warnings] == [
        ("truncatedRecomputeOutputs", "b"),
        ("truncatedRecomputeOutputs", "c"),
    ]


def test_non_batched_call_is_not_limited_by_the_frame_cap():
    store = Store.empty().add_lens_instance("a", "core.source", None, {"values": list(range(10))})
    state = recompute_derived(store, registry=REG, caps=Caps(max_drafts_emitted_per_frame=2))
    assert len(state.outputs("a")) == 10 and state.warnings == ()


def test_malformed_carrier_evaluates_zero_frames():
    bad = make_draft({"values": "not a list"}, {"carrier": {"kind": "packDrafts"}})
    store = Store.empty().add_draft(bad).add_lens_instance("x", "text.upper", bad.id)
    state = recompute_derived(store, registry=REG)
    assert state.outputs("x") == ()
    assert _codes(state) == ["malformedCarrier"]
    (summary,) = state.batch_summary_by_batch_id.values()
    assert summary.frames == 0


def test_a_failing_frame_is_isolated():
    _, store = _store([{"text": "a", "n": 1}, {"text": "b", "n": 3}, {"text": "c", "n": 4}], "test.flaky")
    state = recompute_derived(store, registry=REG)
    assert [d.payload["text"] for d in state.outputs("x")] == ["a", "c"]
    (w,) = state.warnings
    assert (w.code, w.frame_index) == ("lensError", 1)
    assert "RuntimeError: n == 3" in w.message
    assert state.outputs("x")[1].meta["batch"]["frameIndex"] == 2


@pytest.mark.parametrize(
    ("lens_id", "match"),
    [
        ("test.bad_output", r"output 1: payload\['bad'\]: nan"),
        ("test.returns_dict", "must return an iterable of outputs, got dict"),
        ("test.reserved_meta", "reserved for the engine"),
    ],
)
def test_invalid_outputs_yield_nothing_for_that_call(lens_id, match):
    _, store = _store([{"text": "a"}, {"text": "b"}], lens_id)
    state = recompute_derived(store, registry=REG)
    assert state.outputs("x") == ()
    assert _codes(state) == ["invalidOutput", "invalidOutput"]
    assert [w.frame_index for w in state.warnings] == [0, 1]
    assert re.search(match, state.warnings[0].message)


def test_unknown_lens_bad_params_and_missing_input_are_warnings():
    d = make_draft({"text": "a"})
    store = (
        Store.empty().add_draft(d)
        .add_lens_instance("unknown", "no.such.lens", d.id)
        .add_lens_instance("badparams", "text.upper", d.id, {"fild": "x"})
        .add_lens_instance("wrongtype", "fields.pick", d.id, {"fields": ["a"], "strict": "yes"})
        .add_lens_instance("downstream", "text.upper", OutputOf("unknown"))
        .add_lens_instance("fine", "text.upper", d.id)
    )
    state = recompute_derived(store, registry=REG)
    by = {w.lens_instance_id: w for w in state.warnings}
    assert by["unknown"].code == "unknownLens" and "no.such.lens" in by["unknown"].message
    assert by["badparams"].code == "invalidParams" and "params.fild: unknown param (did you mean 'field'?); allowed: field" in by["badparams"].message
    assert by["wrongtype"].code == "invalidParams" and "strict" in by["wrongtype"].message
    assert by["downstream"].code == "missingInput" and "unknown" in by["downstream"].message
    assert [x.payload["text"] for x in state.outputs("fine")] == ["A"]
    assert all(state.outputs(i) == () for i in ["unknown", "badparams", "wrongtype", "downstream"])


def test_outputs_of_unknown_instance_is_a_clear_key_error():
    state = recompute_derived(Store.empty(), registry=REG)
    with pytest.raises(KeyError, match="no lens instance 'nope'"):
        state.outputs("nope")


def test_recompute_refuses_a_non_store():
    with pytest.raises(TypeError, match="takes a Store"):
        recompute_derived({"drafts": {}})


def test_batch_id_ignores_input_content_but_not_the_instance():
    _, s1 = _store([{"text": "a"}])
    _, s2 = _store([{"text": "b"}, {"text": "c"}])
    b1 = recompute_derived(s1).batch_id_by_instance["x"]
    b2 = recompute_derived(s2).batch_id_by_instance["x"]
    assert b1 == b2
    carrier = pack_drafts([{"text": "a"}])
    s3 = Store.empty().add_draft(carrier).add_lens_instance("y", "text.upper", carrier.id)
    assert recompute_derived(s3).batch_id_by_instance["y"] != b1


def test_unchanged_frames_keep_their_output_ids_when_another_frame_changes():
    _, s1 = _store([{"text": "a"}, {"text": "b"}])
    _, s2 = _store([{"text": "a"}, {"text": "z"}])
    o1, o2 = recompute_derived(s1).outputs("x"), recompute_derived(s2).outputs("x")
    assert o1[0].id == o2[0].id and o1[1].id != o2[1].id


# -- properties ------------------------------------------------------------------------

SMALL = Caps(max_frames_evaluated=6, max_total_drafts_per_batch=9, max_total_drafts_per_recompute=25,
             max_drafts_emitted_per_frame=2)


@given(stores(), st.sampled_from([Caps(), SMALL]))
def test_recompute_twice_gives_equal_derived_state(store, caps):
    assert recompute_derived(store, registry=REG, caps=caps) == recompute_derived(store, registry=REG, caps=caps)


@given(stores())
def test_the_store_is_unchanged_by_recompute(store):
    before = (store, [d.to_json() for d in store.drafts.values()], list(store.lens_instances.items()))
    recompute_derived(store, registry=REG, caps=SMALL)
    assert before == (store, [d.to_json() for d in store.drafts.values()], list(store.lens_instances.items()))


@given(frames(), st.sampled_from(["text.upper", "test.repeat", "test.flaky"]))
def test_batch_outputs_are_the_concatenation_of_frame_outputs(frames_, lens_id):
    carrier, store = _store(frames_, lens_id)
    batched = recompute_derived(store, registry=REG)
    lens = REG.get(lens_id)
    from lenses.params import resolve_params

    params, _ = resolve_params(lens, store.lens_instances["x"].params)
    expected = []
    for frame in frames_:
        draft = frame if hasattr(frame, "id") else make_draft(frame)
        try:
            expected.extend(lens(draft, params))
        except Exception:  # noqa: BLE001 - the frame yields nothing, like in a batch
            pass
    got = [d.payload for d in batched.outputs("x")]
    want = [o.payload if hasattr(o, "payload") and not hasattr(o, "id") else o for o in expected]
    assert got == [make_draft(w).payload for w in want]


@given(frames(max_frames=10), st.integers(0, 8), st.integers(0, 12), st.integers(0, 3), st.integers(0, 15))
def test_capped_outputs_are_a_prefix_of_uncapped_outputs(frames_, max_frames, per_batch, per_frame, total):
    _, store = _store(frames_, "test.repeat", {"times": 3})
    big = Caps(max_frames_evaluated=100, max_total_drafts_per_batch=1000, max_total_drafts_per_recompute=1000,
               max_drafts_emitted_per_frame=100)
    full = recompute_derived(store, registry=REG, caps=big).outputs("x")
    caps = Caps(max_frames, per_batch, total, per_frame)
    capped = recompute_derived(store, registry=REG, caps=caps).outputs("x")
    # Apply the caps to the uncapped order by hand: frames, then per frame, then batch, then total.
    kept = [d for d in full if d.meta["batch"]["frameIndex"] < max_frames and d.meta["batch"]["variantIndex"] < per_frame]
    kept = kept[: min(per_batch, total)]
    assert [d.id for d in capped] == [d.id for d in kept]


@settings(max_examples=30)
@given(stores())
def test_derived_state_is_equal_for_equal_stores_built_separately(store):
    import pickle

    copy = pickle.loads(pickle.dumps(store))
    assert isinstance(recompute_derived(copy, registry=REG), DerivedState)
    assert recompute_derived(copy, registry=REG) == recompute_derived(store, registry=REG)


def test_batch_frame_index_is_a_read_only_mapping_in_order():
    _, store = _store([{"text": "a", "n": 0}, {"text": "b", "n": 3}, {"text": "c", "n": 1}], "test.flaky")
    state = recompute_derived(store, registry=REG)
    index = state.draft_ids_by_batch_frame
    (batch_id,) = state.draft_ids_by_batch_id
    outs = state.outputs("x")
    assert list(index) == [(batch_id, 0), (batch_id, 1), (batch_id, 2)] and len(index) == 3
    assert dict(index) == {(batch_id, 0): (outs[0].id,), (batch_id, 1): (), (batch_id, 2): (outs[1].id,)}
    for missing in [(batch_id, 3), (batch_id, -1), ("nope", 0), "junk", (batch_id, "0")]:
        assert missing not in index
    assert not hasattr(index, "__setitem__")
