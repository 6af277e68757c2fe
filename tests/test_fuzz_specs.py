"""Fuzzed spec JSON: only SpecError ever comes out of ``from_json`` (issue 17, item 8).

Specs arrive from pipeline files, journals and HTTP clients; whatever the
JSON holds, the answer is a SpecError that names the field, never a
TypeError from deep inside (``"codec": ["h264"]`` was ``unhashable type``).
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lenses.media import AudioSpec, ProbeSpec, ProxySpec, SpecError, ThumbnailSpec

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)

GOOD = {
    ProxySpec: ProxySpec("h264", "mp4", "half", "{source_name}", "/out"),
    ThumbnailSpec: ThumbnailSpec("{source_name}", "/out", time_offset=1.0),
    AudioSpec: AudioSpec("pcm_s16le", "same", "same", "wav", "{source_name}", "/out"),
    ProbeSpec: ProbeSpec(),
}


@pytest.mark.parametrize("cls", list(GOOD), ids=lambda c: c.__name__)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_field_replaced_by_any_json_value_is_a_spec_error_or_a_spec(cls, data):
    fields = GOOD[cls].to_dict()
    name = data.draw(st.sampled_from(sorted(fields) + ["unknown_field"]), label="field")
    value = data.draw(json_values, label="value")
    mutated = {**fields, name: value}
    if data.draw(st.booleans(), label="drop another field") and len(fields) > 1:
        mutated.pop(data.draw(st.sampled_from(sorted(fields)), label="dropped"), None)
    try:
        spec = cls.from_json(orjson.dumps(mutated))
    except SpecError as exc:
        assert str(exc) and "\n" not in str(exc)[:200]
        return
    assert cls.from_json(spec.to_json()) == spec


@given(text=st.text(max_size=40) | st.binary(max_size=40))
@settings(max_examples=100, deadline=None)
def test_any_text_is_a_spec_error_or_a_spec(text):
    for cls in GOOD:
        try:
            cls.from_json(text)
        except SpecError:
            pass


@pytest.mark.parametrize("field, value", [("codec", ["h264"]), ("container", {}), ("audio", "yes"),
                                          ("threads", 2.5), ("resolution", ["half"]), ("fps_mode", 1)])
def test_the_reported_inputs_are_spec_errors_naming_the_field(field, value):
    data = {**GOOD[ProxySpec].to_dict(), field: value}
    with pytest.raises(SpecError, match=field):
        ProxySpec.from_json(orjson.dumps(data))
