import pytest
from hypothesis import given
from hypothesis import strategies as st

from derived import Caps, Memo, plan_session, recompute_derived
from derived.plan import CHUNK_FRAMES
from drafts import OutputOf, Store, make_draft, pack_drafts
from tests import lenses_for_tests as tl
from tests.strategies import stores

REG = tl.registry()
BIG = Caps(max_frames_evaluated=2000, max_total_drafts_per_batch=5000, max_total_drafts_per_recompute=20000)


def _carrier_store(texts, lens_id="test.counted"):
    carrier = pack_drafts([make_draft({"text": t, "n": i}) for i, t in enumerate(texts)])
    store = Store.empty().add_draft(carrier).add_lens_instance("a", lens_id, carrier.id)
    return store.add_lens_instance("b", "test.counted", OutputOf("a"))


def _calls(fn):
    before = tl.CALLS["n"]
    result = fn()
    return result, tl.CALLS["n"] - before


def test_editing_one_frame_reruns_that_frame_and_what_it_changes_downstream():
    texts = [f"t{i}" for i in range(600)]
    memo = Memo()
    first, calls = _calls(lambda: recompute_derived(_carrier_store(texts), registry=REG, memo=memo, caps=BIG))
    assert calls == 1200
    texts[450] = "changed"
    store = _carrier_store(texts)
    plan = plan_session(store, registry=REG, memo=memo, caps=BIG)
    decisions = [plan.job(j).decision for j in plan.job_ids if plan.job(j).lens_instance_id == "a"]
    assert decisions.count("run") == 1 and decisions[450] == "run"
    second, calls = _calls(lambda: recompute_derived(store, registry=REG, memo=memo, caps=BIG))
    assert calls == 2  # the edited frame in "a", and its one changed output in "b"
    assert second == recompute_derived(store, registry=REG, caps=BIG)
    same = [x.id == y.id for x, y in zip(first.outputs("a"), second.outputs("a"), strict=True)]
    assert same.count(False) == 1 and not same[450]


def test_force_like_fresh_memo_runs_everything_and_memo_never_changes_results():
    texts = [f"t{i}" for i in range(CHUNK_FRAMES + 3)]
    store = _carrier_store(texts)
    memo = Memo()
    a = recompute_derived(store, registry=REG, memo=memo, caps=BIG)
    b, calls = _calls(lambda: recompute_derived(store, registry=REG, memo=memo, caps=BIG))
    assert calls == 0 and a == b
    c, calls = _calls(lambda: recompute_derived(store, registry=REG, memo=Memo(), caps=BIG))
    assert calls == 2 * len(texts) and c == a
    forced_plan = plan_session(store, registry=REG, memo=memo, caps=BIG, force=True)
    assert {forced_plan.job(j).decision for j in forced_plan.job_ids} == {"run"}
    d, calls = _calls(lambda: recompute_derived(store, registry=REG, memo=memo, caps=BIG, force=True))
    assert calls == 2 * len(texts) and d == a


def test_lens_errors_are_reused_but_not_rerun():
    carrier = pack_drafts([{"n": 3, "text": "x"}, {"n": 1, "text": "y"}])
    store = Store.empty().add_draft(carrier).add_lens_instance("f", "test.flaky", carrier.id)
    memo = Memo()
    a = recompute_derived(store, registry=REG, memo=memo)
    b = recompute_derived(store, registry=REG, memo=memo)
    assert a == b and [w.code for w in b.warnings] == ["lensError"]


EDITS = st.lists(
    st.tuples(st.sampled_from(["params", "add", "remove", "frames"]), st.integers(0, 4), st.text(max_size=3)),
    max_size=6,
)


def _edit(store, op, k, text):
    ids = list(store.lens_instances)
    if op == "params" and ids:
        iid = ids[k % len(ids)]
        lens_id = store.lens_instances[iid].lens_id
        if lens_id == "test.repeat":
            return store.set_params(iid, {"times": k % 3})
    if op == "add":
        frames = [make_draft({"text": text, "n": k}), {"text": text * 2, "n": k + 1}]
        carrier = pack_drafts(frames)
        store = store.add_draft(carrier)
        source = OutputOf(ids[k % len(ids)]) if ids and k % 2 else carrier.id
        return store.add_lens_instance(f"e{len(ids)}-{k}", "test.repeat", source, {"times": 1})
    if op == "remove" and ids:
        iid = ids[-1]
        if not store.dependents_of(iid):
            return store.remove_lens_instance(iid)
    if op == "frames":
        carrier = pack_drafts([{"text": text, "n": k}])
        return store.add_draft(carrier).add_lens_instance(f"f{len(ids)}-{k}", "text.upper", carrier.id)
    return store


@given(stores(), EDITS, st.sampled_from([Caps(), Caps(3, 4, 12, 2)]))
def test_incremental_result_equals_from_scratch_after_random_edits(store, edits, caps):
    memo = Memo()
    recompute_derived(store, registry=REG, memo=memo, caps=caps)
    for op, k, text in edits:
        store = _edit(store, op, k, text)
        incremental = recompute_derived(store, registry=REG, memo=memo, caps=caps)
        assert incremental == recompute_derived(store, registry=REG, caps=caps)
        assert [d.to_json() for i in incremental.instance_ids for d in incremental.outputs(i)] == [
            d.to_json() for i in incremental.instance_ids for d in recompute_derived(store, registry=REG, caps=caps).outputs(i)
        ]


def test_memo_bound_drops_what_the_latest_recompute_did_not_use_first():
    memo = Memo(max_calls=10)
    recompute_derived(_carrier_store([str(i) for i in range(30)]), registry=REG, memo=memo)
    assert len(memo) == 60  # the working set (30 frames x 2 instances) is kept whole
    recompute_derived(_carrier_store([f"x{i}" for i in range(30)]), registry=REG, memo=memo)
    assert len(memo) == 60 + 10  # plus at most 10 the latest recompute did not use
    # The working set was kept: the same store again runs nothing.
    _, calls = _calls(lambda: recompute_derived(_carrier_store([f"x{i}" for i in range(30)]), registry=REG,
                                                memo=memo))
    assert calls == 0
    with pytest.raises(ValueError, match="max_calls must be an int"):
        Memo("x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_calls must be an int >= 0 or None, got -1"):
        Memo(-1)
