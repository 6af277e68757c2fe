import attrs
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from drafts import OutputOf, Store, StoreError, make_draft


@attrs.frozen
class UpperParams:
    field: str = "text"


def test_operations_return_new_stores_and_leave_the_old_one():
    d = make_draft({"text": "a"})
    s0 = Store.empty()
    s1 = s0.add_draft(d)
    s2 = s1.add_lens_instance("up", "text.upper", d.id, {"field": "text"})
    s3 = s2.set_params("up", UpperParams(field="other"))
    assert len(s0.drafts) == 0 and list(s1.lens_instances) == []
    assert s2.lens_instances["up"].params == {"field": "text"}
    assert s3.lens_instances["up"].params == {"field": "other"}
    assert s1.add_draft(d) is s1  # content-addressed: adding again changes nothing


@pytest.mark.parametrize(
    ("op", "match"),
    [
        (lambda s, d: s.add_lens_instance("up", "x", d.id), "already exists"),
        (lambda s, d: s.add_lens_instance("n", "x", "missing-id"), "not in the store"),
        (lambda s, d: s.add_lens_instance("n", "x", OutputOf("ghost")), "unknown instance 'ghost'"),
        (lambda s, d: s.add_lens_instance("n", "x", OutputOf("n")), "cycle"),
        (lambda s, d: s.add_lens_instance("", "x", None), "instance_id must be a non-empty str"),
        (lambda s, d: s.add_lens_instance("n", "", None), "lens_id must be a non-empty str"),
        (lambda s, d: s.add_lens_instance("n", "x", 42), "input must be"),
        (lambda s, d: s.add_lens_instance("n", "x", None, {"a": float("nan")}), r"params\['a'\]: nan"),
        (lambda s, d: s.add_lens_instance("n", "x", None, [1, 2]), "params must be a mapping"),
        (lambda s, d: s.set_params("ghost", {}), "unknown lens instance"),
        (lambda s, d: s.remove_lens_instance("ghost"), "unknown lens instance"),
        (lambda s, d: s.remove_lens_instance("up"), "feeds \\['down'\\]"),
        (lambda s, d: s.remove_draft(d.id), "is the input of"),
        (lambda s, d: s.remove_draft("nope"), "unknown draft"),
        (lambda s, d: s.add_draft({"not": "a draft"}), "takes a Draft"),
    ],
)
def test_bad_operations_raise_and_leave_the_store_intact(op, match):
    d = make_draft({"text": "a"})
    store = Store.empty().add_draft(d).add_lens_instance("up", "text.upper", d.id)
    store = store.add_lens_instance("down", "text.upper", OutputOf("up"))
    before = (dict(store.drafts), list(store.lens_instances.items()))
    with pytest.raises(StoreError, match=match):
        op(store, d)
    assert (dict(store.drafts), list(store.lens_instances.items())) == before


def test_instances_keep_insertion_order_and_input_may_be_a_draft():
    d = make_draft({"text": "a"})
    store = Store.empty().add_draft(d)
    for name in ["z", "a", "m"]:
        store = store.add_lens_instance(name, "text.upper", d)
    assert list(store.lens_instances) == ["z", "a", "m"]
    assert store.lens_instances["a"].input == d.id
    assert list(store.set_params("a", {"field": "t"}).lens_instances) == ["z", "a", "m"]


class StoreMachine(RuleBasedStateMachine):
    """Every Store operation against a plain-dict model (pyrsistent's own pattern)."""

    def __init__(self):
        super().__init__()
        self.store = Store.empty()
        self.drafts: dict = {}
        self.instances: dict = {}  # insertion-ordered: id -> (lens, input, params)
        self.history: list = []

    @rule(text=st.text(max_size=3))
    def add_draft(self, text):
        d = make_draft({"text": text})
        self.store = self.store.add_draft(d)
        self.drafts.setdefault(d.id, d)

    @rule(data=st.data(), name=st.sampled_from("abcdef"), params=st.dictionaries(st.sampled_from("xy"), st.integers(0, 3)))
    def add_instance(self, data, name, params):
        choices = [None, *self.drafts, *[OutputOf(i) for i in self.instances]]
        source = data.draw(st.sampled_from(choices))
        before = self.store
        if name in self.instances:
            with pytest.raises(StoreError):
                self.store.add_lens_instance(name, "lens", source, params)
            assert self.store == before
            return
        self.store = self.store.add_lens_instance(name, "lens", source, params)
        self.history.append((before, self._view(before), self._model()))
        self.instances[name] = ("lens", source, params)

    @precondition(lambda self: self.instances)
    @rule(data=st.data(), params=st.dictionaries(st.sampled_from("xy"), st.integers(0, 3)))
    def set_params(self, data, params):
        name = data.draw(st.sampled_from(list(self.instances)))
        self.store = self.store.set_params(name, params)
        lens_id, source, _ = self.instances[name]
        self.instances[name] = (lens_id, source, params)

    @precondition(lambda self: self.instances)
    @rule(data=st.data())
    def remove_instance(self, data):
        name = data.draw(st.sampled_from(list(self.instances)))
        readers = [i for i, (_, s, _) in self.instances.items() if s == OutputOf(name)]
        if readers:
            with pytest.raises(StoreError):
                self.store.remove_lens_instance(name)
            return
        self.store = self.store.remove_lens_instance(name)
        del self.instances[name]

    @staticmethod
    def _view(store):
        instances = [(i, li.lens_id, li.input, dict(li.params)) for i, li in store.lens_instances.items()]
        return set(store.drafts), instances

    def _model(self):
        instances = [(i, lens_id, source, params) for i, (lens_id, source, params) in self.instances.items()]
        return set(self.drafts), instances

    @invariant()
    def matches_model(self):
        assert self._view(self.store) == self._model()

    @invariant()
    def old_versions_are_untouched(self):
        for old, view_then, model_then in self.history:
            assert self._view(old) == view_then
            assert set(old.drafts) <= set(self.drafts) and view_then[1] == model_then[1]


TestStoreMachine = StoreMachine.TestCase
