"""lenses.testing: the strategies users share with us, and check_lens on good and broken lenses."""

from __future__ import annotations

import datetime
import itertools
import os
import random
import re
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import datetime as bound_datetime
from importlib.metadata import entry_points

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lenses.testing as kit
import tests.strategies
from derived import recompute_derived
from drafts import is_packed_carrier, make_draft, media_draft
from lenses import Output, default_registry, lens
from lenses.testing import LensCheckError, LensContractError, check_lens, json_values
from tests import lenses_for_tests as tl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIELDS = ["text", "n", "items", "values"]

# -- built-in lenses pass ---------------------------------------------------------------------

BUILTIN_CHECKS = {
    "core.source": {
        "params_strategy": st.fixed_dictionaries({"values": st.lists(json_values(4), max_size=3)}),
        "inputs": st.none(),
    },
    "fields.pick": {
        "params_strategy": st.fixed_dictionaries(
            {"fields": st.lists(st.sampled_from(FIELDS), max_size=3)}, optional={"strict": st.booleans()}
        ),
    },
    "fields.rename": {
        "params_strategy": st.fixed_dictionaries(
            {"mapping": st.dictionaries(st.sampled_from(FIELDS), st.sampled_from(["a", "b", "text"]), max_size=2)}
        ),
    },
    "list.split": {
        "params_strategy": st.fixed_dictionaries(
            {"field": st.sampled_from(["items", "values", "text"])}, optional={"keep_others": st.booleans()}
        ),
    },
    "text.format": {
        "params_strategy": st.fixed_dictionaries(
            {"template": st.sampled_from(["<{text}>", "{n}: {text}", "plain"])},
            optional={"into": st.sampled_from(["text", "line"])},
        ),
    },
    "text.upper": {},
}


def _media_checks(media, out):
    """Params and inputs for the media lenses: real clips (one corrupt) and specs writing into ``out``."""
    inputs = st.sampled_from([media_draft(media.av), media_draft(media.small), media_draft(media.corrupt)])
    named = {"naming_template": "{source_name}_{index}_{codec}", "output_directory": str(out)}
    return {
        "media.probe": {"params_strategy": st.just({}), "inputs": inputs},
        "media.proxy": {"params_strategy": st.sampled_from([
            {"codec": "h264", "container": "mp4", "resolution": "half", **named},
            {"codec": "prores_proxy", "container": "mov", "resolution": "quarter", **named},
        ]), "inputs": inputs},
        "media.thumbnail": {"params_strategy": st.just({
            "time_offset": 0.2, "image_format": "png", "naming_template": "{source_name}_{index}_poster",
            "output_directory": str(out)}), "inputs": inputs},
        "media.audio": {"params_strategy": st.just({
            "codec": "pcm_s16le", "container": "wav", "sample_rate": "same", "channels": "same", **named}),
            "inputs": inputs},
    }


MEDIA_LENS_IDS = ("media.probe", "media.proxy", "media.thumbnail", "media.audio")


def test_every_builtin_lens_has_a_check():
    assert set(BUILTIN_CHECKS) | set(MEDIA_LENS_IDS) == set(default_registry)


@pytest.mark.ffmpeg
@pytest.mark.parametrize("lens_id", MEDIA_LENS_IDS)
def test_check_lens_passes_every_media_lens(lens_id, media, tmp_path):
    """The contract holds for FFmpeg lenses too: same spec and clip, same result, in any process."""
    checks = _media_checks(media, tmp_path)[lens_id]
    report = check_lens(default_registry.get(lens_id), max_examples=4, **checks)
    assert report.rules == kit.RULES and report.examples > 0


@pytest.mark.parametrize("lens_id", sorted(BUILTIN_CHECKS))
def test_check_lens_passes_every_builtin_lens(lens_id):
    report = check_lens(default_registry.get(lens_id), **BUILTIN_CHECKS[lens_id])
    assert report.lens_id == lens_id and report.examples > 0
    assert report.fresh_process_examples > 0
    expected = kit.RULES if lens_id != "core.source" else tuple(r for r in kit.RULES if r != "map-only")
    assert report.rules == expected


def test_a_lens_that_raises_deterministically_on_some_inputs_passes():
    report = check_lens(tl.flaky, inputs=st.builds(lambda n: make_draft({"text": "x", "n": n}), st.integers(0, 5)))
    assert 0 < report.raised < report.examples


def test_text_format_of_a_nested_object_does_not_depend_on_key_order():
    """Regression: text.format v1 rendered objects with str(), in PMap iteration order."""
    inputs = st.builds(lambda a, b: make_draft({"text": {b: 1, a: 2}}), st.just("a"), st.just("b"))
    check_lens(default_registry.get("text.format"), st.just({"template": "{text}"}), inputs, fresh_process=False)


# -- broken lenses (module level, so a fresh process can import them) ---------------------------

_CALLS = itertools.count()


@lens("broken.counter")
def counter(draft, params):
    """Nondeterministic: hidden state across calls."""
    yield {"call": next(_CALLS)}


@lens("broken.uuid")
def fresh_uuid(draft, params):
    """Nondeterministic: os.urandom, which no seed pins."""
    yield {"id": str(uuid.uuid4())}


@lens("broken.set_order")
def set_order(draft, params):
    """Deterministic in one process only: set order follows the process's hash seed."""
    yield {"letters": "".join(set(draft.payload["text"]))}


@lens("broken.key_order")
def key_order(draft, params):
    """Depends on the key order of equal payloads."""
    yield {"keys": list(draft.payload)}


@lens("broken.setitem")
def setitem(draft, params):
    draft.payload["seen"] = True
    yield {"ok": True}


@lens("broken.sort")
def sort_items(draft, params):
    draft.payload["items"].sort()
    yield {"ok": True}


@lens("broken.swap_payload")
def swap_payload(draft, params):
    object.__setattr__(draft, "payload", make_draft({"swapped": True}).payload)
    yield {"ok": True}


@lens("broken.loop_frames", batch_behavior="disable")
def loop_frames(draft, params):
    """Loops over a carrier's frames itself instead of letting the engine map it."""
    for frame in draft.payload["values"]:
        yield {"frame": frame}


@lens("broken.clock")
def clock(draft, params):
    yield {"text": draft.payload.get("text") if hasattr(draft.payload, "get") else None, "at": time.time()}


@lens("broken.today")
def today(draft, params):
    yield {"day": datetime.date.today().isoformat()}


@lens("broken.now_bound")
def now_bound(draft, params):
    """Reads the clock through a name bound at import (from datetime import datetime)."""
    yield {"now": bound_datetime.now().isoformat()}


@lens("broken.local_hour")
def local_hour(draft, params):
    yield {"hour": time.localtime().tm_hour}


@lens("broken.random")
def unseeded(draft, params):
    yield {"r": random.random()}


@lens("broken.env")
def env_reader(draft, params):
    yield {"vars": len(os.environ)}


@lens("broken.returns_dict")
def returns_dict(draft, params):
    return {"oops": "not a list"}


@lens("broken.nan")
def nan_output(draft, params):
    yield {"x": float("nan")}


@lens("broken.reserved_meta")
def reserved_meta(draft, params):
    yield Output({"x": 1}, {"provenance": "mine"})


@lens("broken.always_raises")
def always_raises(draft, params):
    raise RuntimeError("never works")
    yield  # pragma: no cover


def _failure(one_lens, **kwargs) -> LensContractError:
    with pytest.raises(LensContractError) as info:
        check_lens(one_lens, **kwargs)
    err = info.value
    assert str(err).startswith(f"[{err.rule}] ") and err.rule in kit.RULES
    return err


@pytest.mark.parametrize("broken", [counter, fresh_uuid, key_order])
def test_nondeterministic_lenses_fail_deterministic(broken):
    err = _failure(broken)
    assert err.rule == "deterministic"
    assert {"params", "input", "first", "second"} <= set(err.counterexample)


def test_a_lens_that_depends_on_the_hash_seed_fails_deterministic_in_a_fresh_process():
    texts = st.text(alphabet="abcdefghijklmnop", min_size=8, max_size=12)
    err = _failure(set_order, inputs=st.builds(lambda t: make_draft({"text": t}), texts))
    assert err.rule == "deterministic" and "fresh Python process" in str(err)
    assert err.counterexample["this_process"] != err.counterexample["fresh_process"]


@pytest.mark.parametrize("broken", [setitem, sort_items, swap_payload])
def test_lenses_that_change_or_try_to_change_their_input_fail_immutable_input(broken):
    inputs = st.builds(lambda t: make_draft({"text": t, "items": [3, 1, 2]}), st.text(max_size=3))
    err = _failure(broken, inputs=inputs)
    assert err.rule == "immutable-input"
    assert err.counterexample["input"].payload["items"] == [3, 1, 2]  # the reported input is the original


def test_a_lens_that_loops_over_frames_itself_fails_map_only():
    err = _failure(loop_frames)
    assert err.rule == "map-only"
    assert {"params", "frames", "engine", "per_frame"} <= set(err.counterexample)
    assert len(err.counterexample["frames"]) == 1  # shrunk to one frame


def test_map_only_can_be_skipped_for_a_lens_meant_to_see_a_carrier_whole():
    report = check_lens(loop_frames, skip=["map-only"])
    assert "map-only" not in report.rules and ("map-only", "skip=") in report.skipped


@pytest.mark.parametrize("broken", [clock, today, now_bound, local_hour, unseeded, env_reader])
def test_lenses_reading_the_clock_seed_or_environment_fail_no_ambient_inputs(broken):
    err = _failure(broken)
    assert err.rule == "no-ambient-inputs"
    assert err.counterexample["pinned"] != err.counterexample["changed"]


def test_the_counterexample_is_shrunk():
    err = _failure(clock)
    assert len(err.counterexample["input"].to_json()) <= 64, err.counterexample["input"]  # e.g. payload {}


@pytest.mark.parametrize(
    ("broken", "match"),
    [(returns_dict, "returned a dict"), (nan_output, r"payload\['x'\]: nan"), (reserved_meta, "reserved")],
)
def test_invalid_outputs_fail_valid_outputs(broken, match):
    err = _failure(broken)
    assert err.rule == "valid-outputs"
    assert re.search(match, str(err))


def test_the_ambient_world_is_restored_after_a_check():
    before = (time.time, datetime.datetime, datetime.date, os.environ.get("TZ"), dict(os.environ))
    _failure(clock)
    assert before == (time.time, datetime.datetime, datetime.date, os.environ.get("TZ"), dict(os.environ))
    assert bound_datetime is datetime.datetime


# -- usage errors --------------------------------------------------------------------------------


def test_a_lens_that_raises_on_every_input_makes_the_check_vacuous():
    with pytest.raises(LensCheckError, match=r"raised on all \d+ generated inputs .*inputs="):
        check_lens(always_raises)


def test_required_params_need_a_params_strategy():
    with pytest.raises(LensCheckError, match="params_strategy"):
        check_lens(default_registry.get("list.split"))
    with pytest.raises(TypeError, match="st.just"):
        check_lens(default_registry.get("list.split"), {"field": "items"})


def test_a_lens_that_cannot_be_imported_by_reference_needs_fresh_process_false():
    @lens("local.upper")
    def local_upper(draft, params):
        yield {"text": str(draft.payload.get("text", "")).upper()} if hasattr(draft.payload, "get") else {}

    with pytest.raises(LensCheckError, match="fresh_process=False"):
        check_lens(local_upper)
    assert check_lens(local_upper, fresh_process=False).fresh_process_examples == 0


def test_unknown_rules_in_skip_are_refused():
    with pytest.raises(ValueError, match="unknown rules"):
        check_lens(tl.flaky, skip=["map_only"])


# -- strategies --------------------------------------------------------------------------------


def test_the_suite_uses_the_kit_strategies():
    for name in ["keys", "json_values", "drafts", "frames", "carriers"]:
        assert getattr(tests.strategies, name) is getattr(kit, name)


@settings(max_examples=25)
@given(kit.stores())
def test_default_stores_use_builtin_lenses_only(store):
    assert all(i.lens_id in default_registry for i in store.lens_instances.values())
    assert not [w for w in recompute_derived(store).warnings if w.code == "unknownLens"]


@settings(max_examples=25)
@given(kit.stores(max_instances=2, lens_ids={"test.repeat": {"times": 1}}, max_carriers=1, max_frames=2, max_plain=0))
def test_store_sizes_are_bounded(store):
    assert len(store.lens_instances) <= 2 and len(store.drafts) == 1
    (carrier,) = store.drafts.values()
    assert is_packed_carrier(carrier) and len(carrier.payload["values"]) <= 2
    assert {i.lens_id for i in store.lens_instances.values()} <= {"test.repeat", "core.source"}


@settings(max_examples=25)
@given(kit.carriers(st.integers(0, 3), min_frames=1, max_frames=3))
def test_carriers_take_a_frame_strategy(carrier):
    assert is_packed_carrier(carrier) and 1 <= len(carrier.payload["values"]) <= 3


def test_lenses_does_not_import_the_kit_or_hypothesis():
    code = "import sys, lenses; assert 'lenses.testing' not in sys.modules and 'hypothesis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- the pytest plugin ---------------------------------------------------------------------------


def test_the_pytest_plugin_gives_a_fixture_an_option_and_hypothesis_output(tmp_path):
    (tmp_path / "lens_module_for_plugin.py").write_text(textwrap.dedent("""
        import time
        from lenses import lens

        @lens("plugin.clock")
        def clock(draft, params):
            yield {"at": time.time()}
    """))
    (tmp_path / "test_users_lens.py").write_text(textwrap.dedent("""
        from lenses.builtins import upper_text
        from lenses.testing import check_lens as imported_check_lens
        from lens_module_for_plugin import clock

        def test_good(check_lens):
            report = check_lens(upper_text)
            # 7 examples; if all 7 random inputs lacked "text", up to 300 more search for one it accepts
            assert report.examples == 7 or (report.raised >= 7 and 7 < report.examples <= 307), report

        def test_bad():
            imported_check_lens(clock)
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, str(tmp_path)])}
    # pyproject.toml registers the pytest11 entry point: pytest loads the plugin by itself.
    assert any(e.value == "lenses.pytest_plugin" for e in entry_points(group="pytest11"))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "--lens-examples", "7", "test_users_lens.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "1 failed, 1 passed" in out
    assert "LensContractError: [no-ambient-inputs]" in out
    assert "Falsifying example" in out or "Failing test case" in out
