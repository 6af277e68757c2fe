"""The sparse store history (issue 17 item 3) equals a history that keeps every store."""

from hypothesis import given
from hypothesis import strategies as st

from drafts import Store, make_draft
from drafts.history import History

# (kind, n): push a draft / set params, or undo / redo / jump to a version.
STEPS = st.lists(st.tuples(st.sampled_from(["add", "params", "undo", "redo", "jump"]), st.integers(0, 50)),
                 max_size=80)


@given(STEPS, st.integers(1, 5), st.integers(1, 4))
def test_every_version_of_a_sparse_history_is_the_store_that_was_pushed(steps, every, recent):
    sparse = History(checkpoint_every=every, recent_kept=recent)
    model: list[tuple[int, Store]] = [(0, Store.empty())]  # (number, store) of every version, kept
    position = 0
    for kind, n in steps:
        store = sparse.current.store
        if kind in ("add", "params"):
            if kind == "add" or "i" not in store.lens_instances:
                draft = make_draft({"n": n, "at": len(model)})
                op, fields = ("add_draft", {"draft": draft})
                new = store.add_draft(draft)
            else:
                op, fields = ("set_params", {"instance_id": "i", "params": {"n": n}})
                new = store.set_params("i", {"n": n})
            if new is store:
                continue
            sparse.push(kind, new, op, fields)
            number = model[-1][0] + 1  # numbers only grow: counted before the redo branch is dropped
            del model[position + 1:]
            model.append((number, new))
            position = len(model) - 1
            if kind == "add" and len(model) == 3:  # give later steps an instance to change
                new = new.add_lens_instance("i", "text.upper", None)
                sparse.push("apply", new, "add_lens_instance",
                            {"instance_id": "i", "lens_id": "text.upper", "input": None, "params": None})
                model.append((model[-1][0] + 1, new))
                position = len(model) - 1
        elif kind == "undo" and position > 0:
            position -= 1
            sparse.move_to(model[position][0])
        elif kind == "redo" and position < len(model) - 1:
            position += 1
            sparse.move_to(model[position][0])
        elif kind == "jump":
            position = n % len(model)
            sparse.move_to(model[position][0])
        assert sparse.current.number == model[position][0] and sparse.current.store == model[position][1]
    assert [(v.number, v.store) for v in sparse.versions] == model
