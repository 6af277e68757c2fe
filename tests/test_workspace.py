import pytest
from hypothesis import given
from hypothesis import strategies as st

from derived import recompute_derived
from derived.workspace import Workspace
from drafts import OutputOf, StoreError
from lenses import ParamsError, UnknownLensError
from tests import lenses_for_tests as tl

REG = tl.registry()


def test_changes_recompute_and_notify_subscribers():
    ws = Workspace(registry=REG)
    seen = []
    unsubscribe = ws.subscribe(seen.append)
    words = ws.pack([{"text": "a"}, {"text": "b"}])
    ws.apply("up", "text.upper", words)
    ws.apply("rep", "test.repeat", OutputOf("up"), {"times": 1})
    assert [d.payload["text"] for d in ws.derived.outputs("rep")] == ["A", "B"]
    ws.set_params("rep", {"times": 2})
    assert len(ws.derived.outputs("rep")) == 4
    assert len(seen) == 4 and seen[-1] is ws.derived
    unsubscribe()
    ws.remove("rep")
    assert len(seen) == 4 and "rep" not in ws.store.lens_instances
    assert ws.derived == recompute_derived(ws.store, registry=REG)


def test_bad_changes_raise_and_change_nothing():
    ws = Workspace(registry=REG)
    d = ws.add({"text": "x"})
    before = (ws.store, ws.derived, ws.version)
    with pytest.raises(UnknownLensError):
        ws.apply("a", "no.such.lens", d)
    with pytest.raises(ParamsError, match="unknown params"):
        ws.apply("a", "text.upper", d, {"bogus": 1})
    ws.apply("a", "text.upper", d)
    before = (ws.store, ws.derived, ws.version)
    with pytest.raises(ParamsError, match="must be <class 'int'>"):
        ws.apply("r", "test.repeat", d, {"times": "2"})
    with pytest.raises(ParamsError, match="'field' must be <class 'str'>"):
        ws.set_params("a", {"field": 3})
    with pytest.raises(StoreError, match="already exists"):
        ws.apply("a", "text.upper", d)
    with pytest.raises(StoreError, match="unknown lens instance"):
        ws.remove("ghost")
    assert (ws.store, ws.derived, ws.version) == before


def test_undo_redo_and_history():
    ws = Workspace(registry=REG)
    d = ws.add({"text": "x"})
    ws.apply("a", "text.upper", d)
    ws.undo()
    assert list(ws.store.lens_instances) == [] and ws.derived.instance_ids == ()
    ws.redo()
    assert list(ws.store.lens_instances) == ["a"]
    ws.undo()
    ws.apply("b", "text.upper", d)  # a new change drops the redo branch
    with pytest.raises(IndexError, match="nothing to redo"):
        ws.redo()
    assert [v.change.split()[0] for v in ws.history] == ["start", "add", "apply"]
    assert [v.number for v in ws.history] == [0, 1, 3]
    ws.undo()
    ws.undo()
    with pytest.raises(IndexError, match="nothing to undo"):
        ws.undo()


def test_closed_workspace_refuses_changes_and_display():
    ws = Workspace(registry=REG)
    d = ws.add({"text": "<b>"})
    ws.apply("a", "text.upper", d)
    assert "Workspace(version=2" in repr(ws) and "a: 1" in repr(ws)
    page = ws._repr_html_()
    assert "<table>" in page and "&lt;B&gt;" in page and "<b>&lt;" not in page
    ws.close()
    with pytest.raises(RuntimeError, match="closed"):
        ws.add({"x": 1})


@given(st.lists(st.sampled_from(["add", "apply", "undo", "redo", "remove", "params"]), max_size=12))
def test_workspace_derived_state_always_equals_a_fresh_recompute(ops):
    ws = Workspace(registry=REG)
    carrier = ws.pack([{"text": "a", "n": 1}, {"text": "b", "n": 3}])
    count = 0
    for op in ops:
        try:
            if op == "add":
                ws.add({"text": str(count)})
            elif op == "apply":
                source = OutputOf(list(ws.store.lens_instances)[-1]) if ws.store.lens_instances else carrier
                ws.apply(f"i{count}", "test.repeat", source, {"times": 1})
            elif op == "undo":
                ws.undo()
            elif op == "redo":
                ws.redo()
            elif op == "remove" and ws.store.lens_instances:
                ws.remove(list(ws.store.lens_instances)[-1])
            elif op == "params" and ws.store.lens_instances:
                ws.set_params(list(ws.store.lens_instances)[-1], {"times": count % 3})
        except (IndexError, StoreError):
            pass
        count += 1
        assert ws.derived == recompute_derived(ws.store, registry=REG)
