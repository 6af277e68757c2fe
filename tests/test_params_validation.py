"""One validation path for params (issue 15, items 2-5): readable one-line messages with key paths."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from derived import Workspace, recompute_derived
from drafts import Store, make_draft, pack_drafts
from lenses import ParamsError, UnknownLensError, default_registry, lens
from lenses.params import resolve_params


def _params_error(lens_id, params):
    with pytest.raises(ParamsError) as info:
        resolve_params(default_registry.get(lens_id), params)
    return info.value


def test_unknown_lens_id_suggests_the_nearest_one():  # item 2
    with pytest.raises(UnknownLensError) as info:
        default_registry.get("text.uper")
    assert str(info.value).startswith("no lens 'text.uper' (did you mean 'text.upper'?); known: core.source")
    assert info.value.suggestion == "text.upper" and info.value.lens_id == "text.uper"
    with pytest.raises(UnknownLensError, match=r"^no lens 'zzz'; known: "):
        default_registry.get("zzz")


def test_a_misspelt_param_names_its_key_and_the_allowed_ones():  # item 3
    err = _params_error("text.format", {"templat": "{text}"})
    assert err.path == ("templat",)
    assert err.problem == "unknown param (did you mean 'template'?); allowed: into, template"
    assert str(err) == ("lens 'text.format': params.templat: unknown param (did you mean 'template'?); "
                        "allowed: into, template")


def test_a_wrong_type_names_the_key_and_what_came():  # items 3 and 5
    err = _params_error("text.upper", {"field": 3})
    assert err.path == ("field",) and err.problem == "expected str, got int 3"


def test_a_media_spec_without_its_required_fields_is_an_error():  # item 3
    err = _params_error("media.proxy", None)
    assert err.path == ()
    assert err.problem.startswith("required params missing: codec, container, resolution, naming_template, "
                                  "output_directory; allowed: audio, codec,")


def test_a_media_spec_field_refused_by_its_validator_is_named():
    err = _params_error("media.proxy", {"codec": "h265", "container": "mp4", "resolution": "half",
                                        "naming_template": "{source_name}", "output_directory": "/tmp/x"})
    assert err.path == ("codec",) and err.problem.startswith("must be one of [")
    err = _params_error("media.proxy", {"codec": "prores_proxy", "container": "mp4", "resolution": "half",
                                        "naming_template": "{source_name}", "output_directory": "/tmp/x"})
    assert err.path == () and "cannot go in container 'mp4'" in err.problem  # a rule across fields


def test_a_str_is_never_split_into_a_list_of_characters():  # item 4
    err = _params_error("fields.pick", {"fields": "text"})
    assert err.path == ("fields",)
    assert err.problem == "expected a list, got str 'text' (write ['text'] for a list of one)"
    err = _params_error("fields.pick", {"fields": ["a", 2]})
    assert err.path == ("fields", 1) and err.problem == "expected str, got int 2"
    assert str(err).startswith("lens 'fields.pick': params.fields[1]: ")


@attrs.frozen
class _Checked:
    n: int = attrs.field(default=1, validator=attrs.validators.instance_of(int))
    ratio: float = 0.5
    tags: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    mode: str | None = None
    table: dict[str, int] = attrs.field(factory=dict)


_checked = lens("test.checked", params=_Checked)(lambda draft, params: [])


@pytest.mark.parametrize(
    ("params", "path", "problem"),
    [
        ({"n": True}, ("n",), "expected int, got bool True"),
        ({"n": 1.5}, ("n",), "expected int, got float 1.5"),
        ({"ratio": "x"}, ("ratio",), "expected float, got str 'x'"),
        ({"mode": 3}, ("mode",), "expected str or null, got int 3"),
        ({"table": {"a": "b"}}, ("table", "a"), "expected int, got str 'b'"),
        ({"table": []}, ("table",), "expected a table, got list []"),
    ],
)
def test_types_come_from_the_params_class_annotations(params, path, problem):
    with pytest.raises(ParamsError) as info:
        resolve_params(_checked, params)
    assert (info.value.path, info.value.problem) == (path, problem)


def test_ints_are_taken_for_floats_and_defaults_are_filled_in():
    instance, data = resolve_params(_checked, {"ratio": 1, "tags": ["a"]})
    assert instance == _Checked(ratio=1, tags=("a",))
    assert data == {"n": 1, "ratio": 1, "tags": ("a",), "mode": None, "table": {}}


@given(st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.integers(), st.text(max_size=12),
                                                       st.lists(st.integers(), max_size=3)), max_size=4))
def test_every_params_failure_is_one_line_with_its_key_path(params):
    """Whatever comes in, a refusal is a ParamsError whose message is one line and ends with its problem."""
    for lens_id in ("text.format", "fields.pick", "media.thumbnail"):
        try:
            resolve_params(default_registry.get(lens_id), params)
        except ParamsError as exc:
            text = str(exc)
            assert "\n" not in text and "Attribute(" not in text
            assert text.endswith(exc.problem) and len(exc.problem) < 400


def test_engine_workspace_and_resolve_params_say_the_same_thing():
    """One validation path: the engine's warning and the Workspace's error carry the same problem."""
    words = pack_drafts([make_draft({"text": "a"})])
    store = Store.empty().add_draft(words).add_lens_instance("fmt", "text.format", words.id, {"templat": "{text}"})
    (warning,) = recompute_derived(store).warnings
    ws = Workspace()
    carrier = ws.pack([{"text": "a"}])
    with pytest.raises(ParamsError) as info:
        ws.apply("fmt", "text.format", carrier, {"templat": "{text}"})
    expected = _params_error("text.format", {"templat": "{text}"})
    assert warning.code == "invalidParams" and warning.message == str(expected)
    assert str(info.value) == f"instance 'fmt': {expected}"
    assert list(ws.store.lens_instances) == []
