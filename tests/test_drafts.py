import json
import os
import pickle
import subprocess
import sys

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrsistent import PMap, PVector, pmap

from drafts import Draft, DraftError, draft_from_json, is_packed_carrier, make_draft, pack_drafts
from drafts.canonical import frozen_scalar_map
from drafts.draft import make_draft_extending
from tests.strategies import drafts, json_values, keys


def test_direct_construction_is_refused():
    with pytest.raises(TypeError, match="make_draft"):
        Draft("id", {}, {})


@pytest.mark.parametrize(
    ("payload", "path", "reason"),
    [
        ({"clips": [1, 2, float("nan")]}, "payload['clips'][2]", "nan is not allowed"),
        ({"a": float("inf")}, "payload['a']", "inf is not allowed"),
        ({1: "x"}, "payload", "keys must be str"),
        ({"a": {"b": b"bytes"}}, "payload['a']['b']", "bytes is not JSON-like"),
        ({"a": {1, 2}}, "payload['a']", "set is not JSON-like"),
        ([object()], "payload[0]", "object is not JSON-like"),
        ({"big": 2**64}, "payload['big']", "does not fit in 64 bits"),
        ({"s": "\udc80"}, "payload['s']", "lone surrogate"),
    ],
)
def test_bad_values_name_their_path(payload, path, reason):
    with pytest.raises(DraftError) as info:
        make_draft(payload)
    assert info.value.path == path
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_meta_is_named_in_meta():
    with pytest.raises(DraftError, match=r"meta\['m'\]\[0\]"):
        make_draft({}, {"m": [float("nan")]})
    with pytest.raises(DraftError, match="meta must be a mapping"):
        make_draft({}, ["not", "a", "map"])


def test_nested_draft_contributes_its_id():
    inner = make_draft({"x": 1})
    outer = make_draft({"child": inner})
    assert outer.payload["child"] is inner
    same = make_draft({"child": make_draft({"x": 1})})
    assert outer.id == same.id
    assert outer.id != make_draft({"child": make_draft({"x": 2})}).id


def test_draft_marker_in_user_data_cannot_collide_with_a_nested_draft():
    inner = make_draft({"x": 1})
    impostor = make_draft({"child": {"$draft": inner.id}})
    assert impostor.id != make_draft({"child": inner}).id
    assert draft_from_json(impostor.to_json()) == impostor


def test_types_are_distinguished_in_ids():
    assert make_draft(1).id != make_draft(1.0).id
    assert make_draft(1).id != make_draft(True).id
    assert make_draft([]).id != make_draft({}).id
    assert make_draft((1, 2)).id == make_draft([1, 2]).id


def test_tampered_json_is_refused():
    d = make_draft({"a": 1})
    doc = json.loads(d.to_json())
    doc["payload"]["a"] = 2
    with pytest.raises(DraftError, match="does not match the content"):
        draft_from_json(json.dumps(doc))
    with pytest.raises(DraftError, match="not valid JSON"):
        draft_from_json("{")
    with pytest.raises(DraftError, match="expected an object with keys"):
        draft_from_json('{"payload": 1}')


def test_pack_drafts_and_carrier_detection():
    c = pack_drafts([make_draft({"n": 1}), {"n": 2}], meta={"label": "x"})
    assert is_packed_carrier(c)
    assert c.meta["label"] == "x"
    # Shape alone never makes a carrier.
    assert not is_packed_carrier(make_draft({"values": [1, 2]}))
    assert not is_packed_carrier(make_draft({"values": [1]}, {"carrier": {"kind": "other"}}))
    assert not is_packed_carrier({"meta": {"carrier": {"kind": "packDrafts"}}})
    with pytest.raises(DraftError, match="packDrafts"):
        pack_drafts([], meta={"carrier": {"kind": "zip"}})
    with pytest.raises(DraftError, match="frames must be a sequence"):
        pack_drafts("abc")


@given(st.dictionaries(keys, st.integers(-(2**63), 2**63 - 1), max_size=20), st.dictionaries(keys, st.integers(), max_size=12))
def test_our_pmaps_behave_like_pyrsistents(plain, more):
    """canonical.py lays out PMap buckets itself (one bucket for small maps)."""
    for built in (frozen_scalar_map(plain), make_draft(plain).payload):
        reference = pmap(plain)
        assert built == reference and reference == built and dict(built) == plain
        assert hash(built) == hash(reference) and len(built) == len(plain)
        assert all(built[k] == v and k in built for k, v in plain.items())
        assert "not-a-key-" not in built and built.get("not-a-key-") is None
        grown, ref_grown = built, reference
        for k, v in more.items():
            grown, ref_grown = grown.set(k, v), ref_grown.set(k, v)
        assert grown == ref_grown and dict(grown) == {**plain, **more}
        ev = built.evolver()
        for k, v in more.items():
            ev[k] = v
        assert ev.persistent() == ref_grown
        for k in list(plain)[:3]:
            assert built.remove(k) == reference.remove(k)
            assert built.discard(k) == reference.discard(k)
        assert built.update(more) == reference.update(more) and built.discard("absent-") == reference
        assert built.evolver().persistent() is built
        assert pickle.loads(pickle.dumps(built)) == reference
        assert sorted(built.keys()) == sorted(reference.keys()) and sorted(built.items()) == sorted(reference.items())
        assert dict(built) == plain  # the original is unchanged


@given(json_values(), st.one_of(st.none(), st.dictionaries(keys, json_values(4), max_size=3)))
def test_make_draft_extending_equals_make_draft(payload, meta):
    prov = {"lensId": "l", "lensVersion": "1", "lensInstanceId": "i"}
    batch = {"kind": "mapFrames", "batchId": "b", "frameIndex": 0, "frameSourceDraftId": None, "variantIndex": 1}
    meta = {k: v for k, v in (meta or {}).items() if k not in ("provenance", "batch")}
    fast = make_draft_extending(payload, meta, {"provenance": (pmap(prov), prov), "batch": (frozen_scalar_map(batch), batch)})
    slow = make_draft(payload, {**meta, "provenance": prov, "batch": batch})
    assert fast == slow and fast.meta == slow.meta and fast.payload == slow.payload


@given(drafts())
def test_json_round_trip_gives_an_equal_draft(draft):
    back = draft_from_json(draft.to_json())
    assert back == draft
    assert back.to_json() == draft.to_json()


def _all_frozen(value):
    if isinstance(value, PMap):
        return all(isinstance(k, str) and _all_frozen(v) for k, v in value.items())
    if isinstance(value, PVector):
        return all(_all_frozen(v) for v in value)
    if isinstance(value, Draft):
        return _all_frozen(value.payload) and _all_frozen(value.meta)
    return value is None or isinstance(value, (bool, int, float, str))


@given(json_values(), json_values())
def test_drafts_are_deeply_immutable(payload, other):
    source = {"p": payload, "list": [payload]}
    d = make_draft(source)
    before = d.to_json()
    assert _all_frozen(d.payload) and isinstance(d.meta, PMap)
    # Changing the input afterwards does not reach the draft.
    source["p"] = other
    source["list"].append(other)
    assert d.to_json() == before
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        d.payload = other
    with pytest.raises((TypeError, AttributeError)):
        d.payload["p"] = 1  # type: ignore[index]


_ID_SCRIPT = """
import sys, json
sys.path.insert(0, {root!r})
from drafts import draft_from_json
for line in sys.stdin:
    print(draft_from_json(line.strip()).id)
"""


@settings(max_examples=8)
@given(st.lists(drafts(max_leaves=6), min_size=1, max_size=8))
def test_ids_are_equal_across_processes_with_different_hash_seeds(batch):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = "\n".join(d.to_json().decode() for d in batch) + "\n"
    seen = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", _ID_SCRIPT.format(root=root)], input=text, capture_output=True, text=True,
            env=env, check=True,
        )
        seen.append(out.stdout.split())
    assert seen[0] == seen[1] == [d.id for d in batch]
