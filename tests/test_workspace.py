import pytest
from hypothesis import given
from hypothesis import strategies as st

from derived import recompute_derived
from derived.workspace import Workspace
from drafts import OutputOf, Store, StoreError
from drafts.errors import SessionAlreadyClosed
from drafts.journal import read_journal, replay
from drafts.sessions import SessionManager
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
    with pytest.raises(ParamsError, match="params.bogus: unknown param"):
        ws.apply("a", "text.upper", d, {"bogus": 1})
    ws.apply("a", "text.upper", d)
    before = (ws.store, ws.derived, ws.version)
    with pytest.raises(ParamsError, match="params.times: expected int, got str '2'"):
        ws.apply("r", "test.repeat", d, {"times": "2"})
    with pytest.raises(ParamsError, match="params.field: expected str, got int 3"):
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


# -- journaled workspaces ----------------------------------------------------------------------


def _journaled_session(tmp_path):
    ws = Workspace.open(tmp_path, "ana", "ana@laptop", registry=REG)
    words = ws.pack([{"text": "a"}, {"text": "b"}])
    ws.apply("up", "text.upper", words)
    ws.apply("rep", "test.repeat", OutputOf("up"), {"times": 1})
    ws.set_params("rep", {"times": 2})
    ws.add({"text": "loose"})
    ws.undo()
    ws.undo()
    ws.redo()
    return ws


def test_a_journaled_workspace_resumes_the_same_store_and_history(tmp_path):
    ws = _journaled_session(tmp_path)
    session_id = ws.session_id
    assert session_id is not None
    # The laptop closes without close(): the session stays active and is resumed
    # (detach() gives up the writer's lease as the end of the process would).
    ws.detach()
    again = Workspace.open(tmp_path, "ana", "ana@laptop", registry=REG)
    assert again.session_id == session_id
    assert again.store == ws.store and again.derived == ws.derived
    assert [(v.number, v.change) for v in again.history] == [(v.number, v.change) for v in ws.history]
    assert again.version == ws.version
    expected = ws._history.redo_target().store
    again.redo()  # the redo branch survived too
    assert again.store == expected
    again.detach()


def test_replay_of_a_workspace_journal_gives_an_equal_store_and_derived_state(tmp_path):
    ws = _journaled_session(tmp_path)
    path = tmp_path / "users" / "ana" / "sessions" / f"{ws.session_id}.jsonl"
    replayed = replay(path)
    assert replayed == ws.store
    assert recompute_derived(replayed, registry=REG) == ws.derived
    records = read_journal(path).records
    assert records[0]["event"] == "start" and all(r["performer_id"] == "ana@laptop" for r in records)
    assert [r.get("op") for r in records[1:]] == [
        "add_draft", "add_lens_instance", "add_lens_instance", "set_params", "add_draft", "undo", "undo", "redo",
    ]


def test_close_ends_the_session_and_the_next_open_starts_a_fresh_one(tmp_path):
    ws = _journaled_session(tmp_path)
    first = ws.session_id
    ws.close()
    assert SessionManager(tmp_path).active_session("ana") is None
    fresh = Workspace.open(tmp_path, "ana", "ana@laptop", registry=REG)
    assert fresh.session_id != first and fresh.store.drafts == Store.empty().drafts
    fresh.close()


class _FailingRecorder:
    session_id = "sess_broken"

    def record(self, op, fields):
        raise OSError("disk full")

    def close(self):
        raise OSError("disk full")


def test_a_change_whose_journal_append_fails_changes_nothing():
    ws = Workspace(registry=REG)
    d = ws.add({"text": "x"})
    ws._recorder = _FailingRecorder()
    before = (ws.store, ws.derived, ws.version, ws.history)
    seen = []
    ws.subscribe(seen.append)
    with pytest.raises(OSError, match="disk full"):
        ws.apply("a", "text.upper", d)
    with pytest.raises(OSError, match="disk full"):
        ws.undo()
    assert (ws.store, ws.derived, ws.version, ws.history) == before and seen == []


def test_a_workspace_cannot_write_to_a_session_closed_by_the_system(tmp_path):
    ws = Workspace.open(tmp_path, "ana", "ana@laptop", registry=REG)
    d = ws.add({"text": "x"})
    SessionManager(tmp_path).close_by_system(ws.session_id)
    before = ws.store
    with pytest.raises(SessionAlreadyClosed):
        ws.apply("a", "text.upper", d)
    assert ws.store == before
