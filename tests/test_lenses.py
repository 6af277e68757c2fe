import pickle

import attrs
import pytest
from pyrsistent import pmap

from drafts import make_draft
from lenses import (
    DuplicateLensError,
    Lens,
    Output,
    ParamsError,
    Registry,
    UnknownLensError,
    default_registry,
    lens,
)
from lenses.errors import LensDefinitionError
from lenses.params import resolve_params
from tests import lenses_for_tests as tl


def test_lens_decorator_builds_a_lens_and_checks_its_settings():
    assert isinstance(tl.repeat, Lens) and tl.repeat.id == "test.repeat" and tl.repeat.params is tl.RepeatParams
    with pytest.raises(LensDefinitionError, match="batch_behavior must be one of"):
        lens("x", batch_behavior="sometimes")(lambda d, p: [])
    with pytest.raises(LensDefinitionError, match="job_type must be one of"):
        lens("x", job_type="Render")(lambda d, p: [])
    with pytest.raises(LensDefinitionError, match="params must be an attrs class"):
        lens("x", params=dict)(lambda d, p: [])
    with pytest.raises(LensDefinitionError, match="non-empty str"):
        lens("", version="1")(lambda d, p: [])


def test_lenses_pickle_by_reference():
    assert pickle.loads(pickle.dumps(tl.repeat)) is tl.repeat
    assert pickle.loads(pickle.dumps(default_registry.get("text.upper"))) is default_registry.get("text.upper")
    local = lens("local.only")(lambda d, p: [])
    with pytest.raises(pickle.PicklingError, match="move it into a module"):
        pickle.dumps(local)


def test_registry_register_get_and_duplicates():
    reg = Registry()
    assert len(reg) == 0
    reg.register(tl.repeat)
    reg.register(tl.repeat)  # the same lens again is fine
    assert reg.get("test.repeat") is tl.repeat and "test.repeat" in reg
    impostor = lens("test.repeat", version="2")(lambda d, p: [])
    with pytest.raises(DuplicateLensError, match="already has id 'test.repeat'"):
        reg.register(impostor)
    with pytest.raises(UnknownLensError, match="no lens 'nope'"):
        reg.get("nope")
    with pytest.raises(TypeError, match="takes a Lens"):
        reg.register(lambda d, p: [])
    assert list(default_registry) == sorted(default_registry)
    copy = default_registry.copy()
    copy.register(tl.flaky)
    assert "test.flaky" in copy and "test.flaky" not in default_registry


def test_params_are_resolved_with_defaults_and_checked():
    params, data = resolve_params(tl.repeat, pmap())
    assert params == tl.RepeatParams(times=2) and data == {"times": 2}
    with pytest.raises(ParamsError, match=r"params.x: unknown param; allowed: times$"):
        resolve_params(tl.repeat, pmap({"x": 1}))
    with pytest.raises(ParamsError, match="params.times: expected int, got str '3'"):
        resolve_params(tl.repeat, pmap({"times": "3"}))
    with pytest.raises(ParamsError, match=r"params.fields: required param missing; allowed: fields, strict"):
        resolve_params(default_registry.get("fields.pick"), pmap())
    with pytest.raises(ParamsError, match="takes no params"):
        resolve_params(tl.flaky, pmap({"a": 1}))


def test_params_validate_method_is_called():
    @attrs.frozen
    class P:
        n: int = 1

        def validate(self):
            if self.n < 0:
                raise ValueError("n must be >= 0")

    checked = lens("x.validated", params=P)(lambda d, p: [])
    with pytest.raises(ParamsError, match="n must be >= 0"):
        resolve_params(checked, pmap({"n": -1}))


def _run(lens_id, payload, **params):
    one = default_registry.get(lens_id)
    resolved, _ = resolve_params(one, pmap(params))
    return list(one(make_draft(payload) if payload is not None else None, resolved))


def test_builtin_source_pick_rename():
    assert _run("core.source", None, values=[{"a": 1}, 2]) == [{"a": 1}, 2]
    assert _run("fields.pick", {"a": 1, "b": 2, "c": 3}, fields=["c", "a"]) == [{"c": 3, "a": 1}]
    assert _run("fields.pick", {"a": 1}, fields=["a", "z"], strict=False) == [{"a": 1}]
    with pytest.raises(KeyError, match="strict=false"):
        _run("fields.pick", {"a": 1}, fields=["z"])
    assert _run("fields.rename", {"a": 1, "b": 2}, mapping={"a": "x"}) == [{"x": 1, "b": 2}]
    with pytest.raises(ValueError, match="would merge"):
        _run("fields.rename", {"a": 1, "b": 2}, mapping={"a": "b"})


def test_builtin_split_format_upper():
    assert _run("list.split", {"items": [1, 2], "k": 0}, field="items") == [1, 2]
    assert _run("list.split", {"items": [1], "k": 0}, field="items", keep_others=True) == [{"items": 1, "k": 0}]
    with pytest.raises(TypeError, match=r"^payload\['items'\] must be a list, got str$"):
        _run("list.split", {"items": "no"}, field="items")
    assert _run("text.format", {"name": "clip", "n": 3}, template="{name}-{n:03d}")[0]["text"] == "clip-003"
    with pytest.raises(ParamsError, match="plain field name"):
        _run("text.format", {"a": 1}, template="{a.__class__}")
    with pytest.raises(KeyError, match="names field 'b'"):
        _run("text.format", {"a": 1}, template="{b}")
    assert _run("text.upper", {"text": "abc"})[0]["text"] == "ABC"
    with pytest.raises(TypeError, match="needs a draft whose payload is an object"):
        _run("text.upper", ["list"])
    with pytest.raises(TypeError, match=r"^payload\['text'\] must be a str, got int$"):
        _run("text.upper", {"text": 7})
    with pytest.raises(TypeError, match=r"^payload\['label'\] must be a str, got NoneType$"):
        _run("text.upper", {"text": "a"}, field="label")


def test_output_and_frame_context():
    assert Output({"a": 1}).meta is None
    seen = lens("ctx.test")(lambda draft, params, context: [context.frame_index])
    assert seen.takes_context and list(seen(None)) == [None]
