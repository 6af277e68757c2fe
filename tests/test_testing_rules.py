"""lenses.testing rules that promised more than they checked (review 18, item 10).

- ``no-ambient-inputs`` changed only ``TZ`` and one made-up variable: a lens
  reading ``HOME``, ``USER``, ``LANG``, ``PWD`` or the working directory passed.
  World 1 now runs the call in a changed copy of the whole environment and a
  fresh working directory; lenses that need the environment to import and to
  run programs still pass.
- ``immutable-input`` saw only the exception that escaped the lens: one that
  caught its own ``draft.payload["x"] = 1`` passed. Every attempt made during
  the call is now seen where it is raised, caught or not.
- ``map-only`` blamed a lens that writes files (media.thumbnail with
  ``naming_template = "{source_name}"``) for the engine's own refusal of two
  frames that would write one file (review 30, item 7).
- ``immutable-input`` matched a failed store by the target's type name, so a
  lens assigning into its own ``PMap`` was told it changed its input, and a
  mere lookup of ``items.add`` counted as a call; a swallowed
  ``operator.setitem(draft.payload, ...)`` was missed (review 30, items 6, 8).

The lenses are module-level so the fresh process can import them.
"""

from __future__ import annotations

import getpass
import importlib
import locale
import operator
import os
import pathlib
import subprocess
import sys
import time

import pytest
from hypothesis import strategies as st
from pyrsistent import pmap, pvector

from derived import recompute_derived
from drafts import make_draft, pack_drafts
from drafts.draft import Draft
from drafts.store import Store
from lenses import Registry, lens
from lenses.testing import LensContractError, check_lens

TEXTS = st.builds(lambda t: make_draft({"text": t, "items": [3, 1, 2]}), st.text(max_size=3))


def _failure(one_lens, **kwargs) -> LensContractError:
    with pytest.raises(LensContractError) as info:
        check_lens(one_lens, inputs=TEXTS, max_examples=10, **kwargs)
    return info.value


# -- no-ambient-inputs: the environment as a whole, the working directory, TZ -------------------------------


@lens("ambient.home")
def home(draft, params):
    yield {"u": os.environ.get("HOME", "")}


@lens("ambient.user")
def user(draft, params):
    yield {"u": getpass.getuser()}


@lens("ambient.lang")
def lang(draft, params):
    yield {"u": os.environ.get("LANG", "")}


@lens("ambient.pwd")
def pwd(draft, params):
    yield {"u": os.environ.get("PWD", "")}


@lens("ambient.cwd")
def cwd(draft, params):
    yield {"u": os.getcwd()}


@lens("ambient.relative_path")
def relative_path(draft, params):
    """Reads a relative path: what it finds depends on the working directory."""
    yield {"u": sorted(os.listdir("."))[:3]}


@lens("ambient.path_home")
def path_home(draft, params):
    yield {"u": str(pathlib.Path.home())}


@lens("ambient.some_variable")
def some_variable(draft, params):
    """Reads a variable of its own (present in the test's environment)."""
    yield {"u": os.environ.get("DRAFTLENS_TEST_SETTING", "")}


@lens("ambient.tzname")
def tzname(draft, params):
    yield {"u": list(time.tzname)}


@lens("ambient.locale")
def locale_reader(draft, params):
    """Sets the locale from the environment (LC_ALL, LANG), as `locale.setlocale(LC_ALL, "")` does."""
    before = locale.setlocale(locale.LC_CTYPE)
    try:
        yield {"u": locale.setlocale(locale.LC_CTYPE, "")}
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


@pytest.mark.parametrize("broken", [home, user, lang, pwd, cwd, relative_path, path_home, some_variable, tzname,
                                    locale_reader], ids=lambda one: one.id)
def test_lenses_reading_the_environment_or_working_directory_fail_no_ambient_inputs(broken, monkeypatch):
    monkeypatch.setenv("DRAFTLENS_TEST_SETTING", "fast")
    err = _failure(broken, fresh_process=False)
    assert err.rule == "no-ambient-inputs", err
    assert err.counterexample["pinned"] != err.counterexample["changed"]
    assert "a fresh working directory, and every environment variable (HOME, USER, LANG" in str(err)


@lens("ambient.missing_variables")
def missing_variables(draft, params):
    yield {name: os.environ.get(name) for name in ("HOME", "USER", "LOGNAME", "LANG", "LC_ALL")}


def test_variables_missing_from_the_environment_are_set_in_the_changed_world(monkeypatch):
    for name in ("HOME", "USER", "LOGNAME", "LANG", "LC_ALL"):
        monkeypatch.delenv(name, raising=False)
    err = _failure(missing_variables, fresh_process=False)
    assert err.rule == "no-ambient-inputs"
    assert err.counterexample["pinned"] == ('outputs [{"HOME":null,"LANG":null,"LC_ALL":null,"LOGNAME":null,'
                                            '"USER":null}]')


@lens("ambient.python_child")
def python_child(draft, params):
    """Runs a Python program that imports this project: needs PATH, the interpreter's and the loader's variables."""
    out = subprocess.run([sys.executable, "-c", "import drafts, lenses; print(drafts.__name__, lenses.__name__)"],
                         capture_output=True, text=True, check=True, timeout=120)
    yield {"text": draft.payload["text"], "child": out.stdout.strip()}


def test_a_lens_that_runs_a_python_program_importing_the_project_still_passes():
    report = check_lens(python_child, inputs=TEXTS, max_examples=3, skip=("map-only",))
    assert "no-ambient-inputs" in report.rules and report.raised == 0


LAZY_MODULE = "draftlens_lazy_settings"


@lens("ambient.lazy_import")
def lazy_import(draft, params):
    """Imports a module found through a relative ``sys.path`` entry, afresh on each call."""
    sys.modules.pop(LAZY_MODULE, None)
    importlib.invalidate_caches()
    module = importlib.import_module(LAZY_MODULE)
    yield {"text": draft.payload["text"], "scale": module.SCALE}


def test_a_lens_importing_through_a_relative_sys_path_entry_still_passes(tmp_path, monkeypatch):
    (tmp_path / f"{LAZY_MODULE}.py").write_text("SCALE = 3\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    monkeypatch.delitem(sys.modules, LAZY_MODULE, raising=False)
    report = check_lens(lazy_import, inputs=TEXTS, max_examples=5, skip=("map-only",))
    assert report.raised == 0 and report.fresh_process_examples > 0


def test_the_environment_working_directory_and_sys_path_are_restored_after_a_check():
    before = (dict(os.environ), os.getcwd(), list(sys.path), time.tzname)
    _failure(cwd, fresh_process=False)
    _failure(home, fresh_process=False)
    assert (dict(os.environ), os.getcwd(), list(sys.path), time.tzname) == before


# -- immutable-input: attempts the lens catches -------------------------------------------------------------


@lens("mutate.caught_setitem")
def caught_setitem(draft, params):
    try:
        draft.payload["x"] = 1
    except Exception:  # noqa: BLE001 - the attempt the rule must see anyway
        pass
    yield {"ok": True}


@lens("mutate.caught_delitem")
def caught_delitem(draft, params):
    try:
        del draft.payload["text"]
    except TypeError:
        pass
    yield {"ok": True}


@lens("mutate.caught_pop")
def caught_pop(draft, params):
    try:
        draft.payload.pop("text")
    except AttributeError:
        pass
    yield {"ok": True}


@lens("mutate.caught_setattr")
def caught_setattr(draft, params):
    try:
        draft.payload = {}
    except AttributeError:  # attrs' FrozenInstanceError
        pass
    yield {"ok": True}


@lens("mutate.caught_attribute_of_payload")
def caught_attribute_of_payload(draft, params):
    try:
        draft.payload.seen = True
    except AttributeError:
        pass
    yield {"ok": True}


def _poke(items):
    items[0] = 9


@lens("mutate.caught_in_a_helper")
def caught_in_a_helper(draft, params):
    """The attempt is in a helper, on a nested vector, and caught by the lens."""
    try:
        _poke(draft.payload["items"])
    except TypeError:
        pass
    yield {"ok": True}


@lens("mutate.caught_suppress")
def caught_suppress(draft, params):
    import contextlib

    with contextlib.suppress(Exception):
        draft.meta["tag"] = "x"
    yield {"ok": True}


@pytest.mark.parametrize("broken", [caught_setitem, caught_delitem, caught_pop, caught_setattr,
                                    caught_attribute_of_payload, caught_in_a_helper, caught_suppress],
                         ids=lambda one: one.id)
def test_attempts_to_change_the_input_fail_immutable_input_even_when_caught(broken):
    err = _failure(broken, fresh_process=False)
    assert err.rule == "immutable-input", err
    assert str(err).startswith("[immutable-input] ")
    assert "the lens tried to change its input: it " in str(err) and "(and caught the error it raised)" in str(err)


@lens("honest.own_errors")
def own_errors(draft, params):
    """Catches errors of its own, probes attributes and changes its own copies: all allowed."""
    try:
        int(draft.payload["text"])
    except ValueError:
        pass
    try:
        draft.payload["missing"]
    except KeyError:
        pass
    assert hasattr(draft.payload, "set") and not hasattr(draft.payload, "pop")
    assert getattr(draft.payload, "setdefault", None) is None
    mine = dict(draft.payload)
    mine["x"] = 1
    items = list(draft.payload["items"])
    items.sort()
    yield {"text": draft.payload["text"], "items": items, "keys": sorted(mine)}


_PMAP, _PVECTOR = type(pmap()), type(pvector())


@lens("honest.exact_types")
def exact_types(draft, params):
    """Raises unless it gets the engine's own types: Draft, PMap, PVector (nothing wrapped or subclassed)."""
    kinds = (type(draft), type(draft.payload), type(draft.meta), type(draft.payload["items"]))
    if kinds != (Draft, _PMAP, _PMAP, _PVECTOR):
        raise TypeError(f"unexpected types {kinds}")
    yield {"kinds": [k.__name__ for k in kinds]}


@pytest.mark.parametrize("honest", [own_errors, exact_types], ids=lambda one: one.id)
def test_honest_lenses_stay_green(honest):
    tracer = sys.gettrace()
    report = check_lens(honest, inputs=TEXTS, max_examples=10)
    assert report.raised == 0 and "immutable-input" in report.rules
    assert sys.gettrace() is tracer  # the check's own tracer is gone


def test_the_engine_and_the_check_hand_the_lens_the_same_real_types():
    carrier = pack_drafts([make_draft({"text": "a", "items": [1]}), make_draft({"text": "b", "items": [2]})])
    store = Store.empty().add_draft(carrier).add_lens_instance("t", "honest.exact_types", carrier.id)
    state = recompute_derived(store, registry=Registry((exact_types,)))
    assert not state.warnings
    assert [d.payload["kinds"] for d in state.outputs("t")] == [["Draft", "PMap", "PMap", "PVector"]] * 2


def test_a_tracer_set_before_the_check_is_chained_and_put_back():
    calls = []

    def tracer(frame, event, arg):
        calls.append(frame.f_code.co_name)
        return None

    sys.settrace(tracer)
    try:
        err = _failure(caught_setitem, fresh_process=False)
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(None)
    assert err.rule == "immutable-input"
    assert "caught_setitem" in calls  # it still saw the lens being called


# -- map-only: the engine's own refusal of jobs that would write one file (review 30, item 7) --------------


@pytest.fixture(scope="module")
def clip_draft(tmp_path_factory):
    from derived.command.demo import make_clip
    from drafts import media_draft

    return media_draft(str(make_clip(tmp_path_factory.mktemp("clip") / "a.mp4")))


@pytest.mark.parametrize(("lens_id", "params"), [
    ("media.thumbnail", {"time_offset": 0.0, "size": "32"}),
    ("media.proxy", {"codec": "h264", "container": "mp4", "resolution": "half"}),
], ids=["thumbnail", "proxy"])
def test_media_lenses_named_by_source_name_pass_map_only(clip_draft, tmp_path, lens_id, params):
    """A carrier that repeats a clip makes both frames write one file: the engine refuses both jobs.

    That is the engine's collision rule, not a lens looping over frames; the
    check used to report it as a ``map-only`` failure.
    """
    from lenses import default_registry

    params = {**params, "naming_template": "{source_name}", "output_directory": str(tmp_path)}
    report = check_lens(default_registry.get(lens_id), params_strategy=st.just(params), inputs=st.just(clip_draft),
                        max_examples=3, fresh_process=False)
    assert "map-only" in report.rules and report.raised == 0


def test_frames_refused_for_a_shared_output_are_left_out_and_the_rest_compared(clip_draft, tmp_path):
    from lenses import default_registry
    from lenses.testing.checker import _refused_frames

    thumbnail = default_registry.get("media.thumbnail")
    params = thumbnail.params(time_offset=0.0, size="32", naming_template="{source_name}",
                              output_directory=str(tmp_path))
    other = make_draft({**clip_draft.thaw()[0], "path": str(tmp_path / "b.mp4")})
    frames = [clip_draft, other, clip_draft]
    refused = _refused_frames(importlib.import_module("derived"), thumbnail, params, pack_drafts(frames), frames, None)
    assert sorted(refused) == [0, 2] and "would also be written by" in refused[0]
    assert _refused_frames(importlib.import_module("derived"), thumbnail, params, pack_drafts(frames[:2]),
                           frames[:2], None) == {}


def _one_file(draft, params):
    return {"argv": [], "outputs": ["/nonexistent/draftlens-check/one.txt"]}


@lens("broken.loop_frames_writing_one_file", batch_behavior="disable", describe=_one_file)
def loop_frames_writing_one_file(draft, params):
    """Loops over a carrier's frames itself; every job it describes would write one and the same file."""
    for frame in draft.payload["values"]:
        yield {"frame": frame}


def test_a_lens_that_writes_files_and_loops_over_frames_still_fails_map_only():
    with pytest.raises(LensContractError) as info:
        check_lens(loop_frames_writing_one_file, max_examples=20, fresh_process=False)
    assert info.value.rule == "map-only", info.value


# -- immutable-input: the changed object is identified, not guessed from its type (review 30, items 6 and 8)


@lens("honest.own_pmap")
def own_pmap(draft, params):
    """Tries item assignment on its OWN PMap (EAFP), falling back to the persistent API."""
    out = pmap({"a": 1})
    try:
        out["b"] = 2
    except TypeError:
        out = out.set("b", 2)
    vector = pvector([1])
    try:
        del vector[0]
    except TypeError:
        vector = vector.delete(0)
    yield {**dict(out), "n": len(vector)}


@lens("honest.own_draft_attribute")
def own_draft_attribute(draft, params):
    """Tries to set an attribute of a draft it made itself, and of its own PMap."""
    mine = make_draft({"x": 1})
    try:
        mine.payload = {}
    except AttributeError:
        pass
    try:
        mine.payload.seen = True
    except AttributeError:
        pass
    yield {"ok": True}


@lens("honest.probes_add")
def probes_add(draft, params):
    """Looks up ``.add`` on a vector of its input, without calling it: no attempt to change it."""
    items = draft.payload["items"]
    try:
        items.add  # noqa: B018 - the probe is the point
        kind = "set-like"
    except AttributeError:
        kind = "other"
    yield {"kind": kind}


@lens("honest.own_pmap_uncaught")
def own_pmap_uncaught(draft, params):
    """Raises (on some inputs) from an item assignment on its own PMap: a raise, not a change of its input."""
    out = pmap({"a": 1})
    if draft.payload["text"]:
        out["b"] = 2
    yield dict(out)


@pytest.mark.parametrize("honest", [own_pmap, own_draft_attribute, probes_add, own_pmap_uncaught],
                         ids=lambda one: one.id)
def test_honest_lenses_changing_only_their_own_values_pass_immutable_input(honest):
    report = check_lens(honest, inputs=TEXTS, max_examples=10, fresh_process=False)
    assert "immutable-input" in report.rules


@lens("mutate.caught_operator_setitem")
def caught_operator_setitem(draft, params):
    try:
        operator.setitem(draft.payload, "x", 1)
    except TypeError:
        pass
    yield {"ok": True}


@lens("mutate.caught_operator_delitem")
def caught_operator_delitem(draft, params):
    from operator import delitem

    try:
        delitem(draft.payload["items"], 0)
    except TypeError:
        pass
    yield {"ok": True}


@lens("mutate.caught_setattr_builtin")
def caught_setattr_builtin(draft, params):
    try:
        setattr(draft.meta, "tag", "x")  # noqa: B010 - the call is the point
    except AttributeError:
        pass
    yield {"ok": True}


@lens("mutate.caught_through_get")
def caught_through_get(draft, params):
    """The target is read with ``.get``: still identified as part of the input."""
    try:
        draft.payload.get("items")[0] = 9
    except TypeError:
        pass
    yield {"ok": True}


def test_an_item_assignment_on_a_value_read_with_get_fails_immutable_input():
    err = _failure(caught_through_get, fresh_process=False)
    assert err.rule == "immutable-input" and "it tried item assignment on part of its input" in str(err)


@pytest.mark.parametrize("broken", [caught_operator_setitem, caught_operator_delitem, caught_setattr_builtin],
                         ids=lambda one: one.id)
def test_swallowed_changes_through_operator_and_setattr_fail_immutable_input(broken):
    err = _failure(broken, fresh_process=False)
    assert err.rule == "immutable-input", err
    assert "(and caught the error it raised)" in str(err)
    assert "() on part of its input" in str(err)


def test_a_method_call_on_an_input_vector_is_still_reported_as_a_call():
    err = _failure(caught_pop, fresh_process=False)
    assert "it called .pop() on part of its input" in str(err)
