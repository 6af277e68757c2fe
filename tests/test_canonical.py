"""The canonical form is the project's own (issue 14, item 1): golden vectors, the
reference encoder, the float format, and independence from orjson's float writing."""

import math
import re
import struct

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drafts import Draft, DraftError, make_draft
from drafts.canonical import (
    MAX_DEPTH,
    canonical_bytes,
    encode_reference,
    format_float,
    freeze_with_canon,
)
from drafts.draft import ID_SCHEME, draft_from_json
from tests.golden import vectors
from tests.strategies import drafts, json_values

GOLDEN = vectors.load()


def _plain(value):
    """Canonical plain data with raw floats: what encode_reference takes."""
    if type(value) is Draft:
        return {"$draft": value.id}
    if isinstance(value, dict):
        return {("$" + k if k[:1] == "$" else k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _raw_floats(canon):
    if type(canon) is float:
        yield canon
    elif isinstance(canon, dict):
        for v in canon.values():
            yield from _raw_floats(v)
    elif isinstance(canon, list):
        for v in canon:
            yield from _raw_floats(v)


def test_golden_vectors_are_a_few_hundred_values_with_floats_across_the_range():
    floats = [vectors.untag(r["value"]) for r in GOLDEN if r["value"][0] == "f"]
    assert len(GOLDEN) >= 300 and len(floats) >= 200
    exponents = {math.frexp(f)[1] for f in floats if f}
    assert min(exponents) < -1000 and max(exponents) > 1000  # subnormals to near the largest float


@pytest.mark.parametrize("row", GOLDEN, ids=[r["id"][:8] for r in GOLDEN])
def test_golden_vectors_keep_their_canonical_bytes_and_ids(row):
    value = vectors.untag(row["value"])
    canon = freeze_with_canon(value, "payload", Draft)[1]
    assert canonical_bytes(canon).decode("utf-8") == row["canonical"]
    assert encode_reference(_plain(value)).decode("utf-8") == row["canonical"]
    draft = make_draft(value)
    assert draft.id == row["id"]
    assert draft_from_json(draft.to_json()) == draft


def test_ids_never_depend_on_how_orjson_writes_floats():
    # Issue 14, item 1: orjson <= 3.11.6 wrote 1e16, later releases 1e+16, so the id of
    # make_draft({"x": 1e16}) depended on the installed release. Now orjson never writes a float.
    row = next(r for r in GOLDEN if r["value"] == vectors.tag({"big": 1e16, "small": 1e-7, "mid": 0.00001}))
    assert row["canonical"] == '{"big":1e+16,"mid":0.00001,"small":1e-7}'
    assert make_draft({"big": 1e16, "small": 1e-7, "mid": 0.00001}).id == row["id"]
    assert list(_raw_floats(freeze_with_canon({"x": [1e16, {"y": 0.5}]}, "payload", Draft)[1])) == []


def test_text_written_by_another_orjson_release_reads_back_to_the_same_draft():
    draft = make_draft({"x": 1e16, "y": [1e22, -2.5e-7]})
    text = draft.to_json()
    assert b"1e+16" in text
    old_style = text.replace(b"1e+16", b"1e16").replace(b"1e+22", b"1E22")
    assert draft_from_json(old_style) == draft


@settings(max_examples=300)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_float_reads_back_exactly_and_is_never_an_int(x):
    text = format_float(x)
    assert float(text) == x and math.copysign(1, float(text)) == math.copysign(1, x)
    assert re.fullmatch(r"-?(\d+\.\d+|\d(\.\d+)?e[+-][1-9]\d*)", text), text
    assert "." in text or "e" in text


@settings(max_examples=300)
@given(st.integers(0, 2**64 - 1))
def test_format_float_uses_the_shortest_round_trip_digits(bits):
    x = struct.unpack("<d", bits.to_bytes(8, "little"))[0]
    if not math.isfinite(x):
        return
    digits = re.sub(r"e.*|[-.]", "", format_float(x)).strip("0")
    assert len(digits) == len(re.sub(r"e.*|[-.]", "", repr(x)).strip("0"))


@settings(max_examples=150)
@given(json_values(max_leaves=25))
def test_the_fast_encoder_equals_the_reference_definition(value):
    canon = freeze_with_canon(value, "payload", Draft)[1]
    assert list(_raw_floats(canon)) == []
    assert canonical_bytes(canon) == encode_reference(_plain(value))


@settings(max_examples=60)
@given(drafts())
def test_draft_documents_are_canonical_json(draft):
    text = draft.to_json()
    assert text == encode_reference(_reference_document(draft))


def _reference_document(draft):
    from pyrsistent import thaw

    def embed(value):
        if type(value) is Draft:
            return {"$draft": _reference_document(value)}
        if isinstance(value, dict):
            return {("$" + k if k[:1] == "$" else k): embed(v) for k, v in value.items()}
        if isinstance(value, list):
            return [embed(v) for v in value]
        return value

    return {"id": draft.id, "payload": embed(thaw(draft.payload)), "meta": embed(thaw(draft.meta))}


def test_the_id_scheme_is_named():
    assert ID_SCHEME == "draftlens.draft.v1"


def test_orjson_is_only_asked_to_write_what_it_cannot_change():
    # Strings, ints, null and booleans: the reference encoder pins them too (the golden vectors),
    # so if a future orjson wrote them differently these tests would fail instead of ids changing.
    assert orjson.dumps("\x00\x1f\x7f\u2028é😀") == encode_reference("\x00\x1f\x7f\u2028é😀")
    assert MAX_DEPTH == 100


def test_text_from_a_draftlens_whose_ids_depended_on_orjson_is_explained_not_called_changed():
    # orjson <= 3.11.6 wrote 1e16 as '1e16': the id an older draftlens gave this content then.
    import hashlib

    old_bytes = b'[{"x":1e16,"y":[0.5,1e-7]},{}]'
    old_id = hashlib.blake2b(b"draftlens.draft.v1\n" + old_bytes, digest_size=16).hexdigest()
    text = b'{"id":"%s","meta":{},"payload":{"x":1e16,"y":[0.5,1e-7]}}' % old_id.encode()
    with pytest.raises(DraftError, match=r"orjson \(<= 3.11.6 writes the float 1e16 as '1e16'\)") as info:
        draft_from_json(text)
    assert make_draft({"x": 1e16, "y": [0.5, 1e-7]}).id in str(info.value)
    assert "changed after it was written" not in str(info.value)
    tampered = text.replace(b"0.5", b"0.25")
    with pytest.raises(DraftError, match="changed after it was written"):
        draft_from_json(tampered)
