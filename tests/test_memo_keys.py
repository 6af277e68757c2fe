"""A cached outcome is reused only when everything that can change it is equal (issue 13, item 2).

Each test here gave a wrong result before the memo keys were completed: it
compares a recompute that reused a memo with a recompute from scratch.
"""

from __future__ import annotations

from derived import Caps, Memo, recompute_derived
from drafts import Store, make_draft, pack_drafts
from lenses import lens
from tests import lenses_for_tests as tl


@lens("test.where", version="1")
def where(draft, params, context):
    """Reads its FrameContext: each output names its instance, batch and frame."""
    yield {"instance": context.lens_instance_id, "batch": context.batch_id, "frame": context.frame_index,
           "text": draft.payload.get("text")}


def _registry():
    reg = tl.registry()
    reg.register(where)
    return reg


REG = _registry()


def _warnings(state):
    return sorted((w.code, w.lens_instance_id, w.frame_index) for w in state.warnings)


def test_caps_small_then_default_with_one_memo_gives_the_untruncated_result():
    frames = pack_drafts([make_draft({"text": t}) for t in "ab"])
    store = Store.empty().add_draft(frames).add_lens_instance("r", "test.repeat", frames.id, {"times": 5})
    memo = Memo()
    small = recompute_derived(store, registry=REG, caps=Caps(max_drafts_emitted_per_frame=2), memo=memo)
    assert len(small.outputs("r")) == 4 and any(w.code == "truncatedFrameOutputs" for w in small.warnings)
    again = recompute_derived(store, registry=REG, memo=memo)
    fresh = recompute_derived(store, registry=REG)
    assert again == fresh
    assert len(again.outputs("r")) == 10 and _warnings(again) == []


def test_recompute_cap_small_then_default_with_one_memo_gives_the_untruncated_single_call():
    one = make_draft({"text": "x"})
    store = Store.empty().add_draft(one).add_lens_instance("r", "test.repeat", one.id, {"times": 5})
    memo = Memo()
    small = recompute_derived(store, registry=REG, caps=Caps(max_total_drafts_per_recompute=2), memo=memo)
    assert len(small.outputs("r")) == 2
    again = recompute_derived(store, registry=REG, memo=memo)
    assert again == recompute_derived(store, registry=REG)
    assert len(again.outputs("r")) == 5 and _warnings(again) == []


def test_two_instances_of_a_context_reading_lens_get_their_own_outputs():
    frames = pack_drafts([make_draft({"text": t}) for t in "ab"])
    only_x = Store.empty().add_draft(frames).add_lens_instance("x", "test.where", frames.id)
    store = only_x.add_lens_instance("y", "test.where", frames.id)
    memo = Memo()
    recompute_derived(only_x, registry=REG, memo=memo)
    state = recompute_derived(store, registry=REG, memo=memo)
    assert [d.payload["instance"] for d in state.outputs("y")] == ["y", "y"]
    assert state == recompute_derived(store, registry=REG)


def test_a_renamed_instance_of_a_context_reading_lens_reports_its_new_name():
    frames = pack_drafts([make_draft({"text": t}) for t in "ab"])
    one = make_draft({"text": "solo"})
    base = Store.empty().add_draft(frames).add_draft(one)
    memo = Memo()
    recompute_derived(base.add_lens_instance("old", "test.where", frames.id)
                      .add_lens_instance("old1", "test.where", one.id), registry=REG, memo=memo)
    renamed = base.add_lens_instance("new", "test.where", frames.id).add_lens_instance("new1", "test.where", one.id)
    state = recompute_derived(renamed, registry=REG, memo=memo)
    assert [d.payload["instance"] for d in state.outputs("new")] == ["new", "new"]
    assert [d.payload["instance"] for d in state.outputs("new1")] == ["new1"]
    assert state == recompute_derived(renamed, registry=REG)


def test_inline_frames_and_draft_frames_of_equal_content_keep_their_own_frame_source():
    drafts = [make_draft({"text": t}) for t in "ab"]
    as_drafts = pack_drafts(drafts)
    inline = pack_drafts([{"text": t} for t in "ab"])
    memo = Memo()
    first = recompute_derived(Store.empty().add_draft(as_drafts).add_lens_instance("u", "text.upper", as_drafts.id),
                              registry=REG, memo=memo)
    assert [d.meta["batch"]["frameSourceDraftId"] for d in first.outputs("u")] == [d.id for d in drafts]
    store = Store.empty().add_draft(inline).add_lens_instance("u", "text.upper", inline.id)
    second = recompute_derived(store, registry=REG, memo=memo)
    assert [d.meta["batch"]["frameSourceDraftId"] for d in second.outputs("u")] == [None, None]
    assert second == recompute_derived(store, registry=REG)
    # And back: the Draft frames get their ids again.
    third = recompute_derived(Store.empty().add_draft(as_drafts).add_lens_instance("u", "text.upper", as_drafts.id),
                              registry=REG, memo=memo)
    assert [d.meta["batch"]["frameSourceDraftId"] for d in third.outputs("u")] == [d.id for d in drafts]
