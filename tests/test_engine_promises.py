"""Issue 14: the engine keeps its promises under upgrades, executor faults and odd lenses.

Each numbered failing input of the issue is a test here (the Dask ones are in
tests/test_dask.py, the canonical-form ones in tests/test_canonical.py).
"""

import gc
import importlib
import os
import pickle
import subprocess
import sys
import textwrap

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derived import (
    Caps,
    Memo,
    ProcessExecutor,
    SerialExecutor,
    Workspace,
    plan_session,
    recompute_derived,
)
from derived.recompute import run_chunk
from drafts import DraftError, Store, make_draft, pack_drafts
from drafts.canonical import MAX_DEPTH
from drafts.draft import ID_SCHEME, draft_from_json
from drafts.errors import JournalCorrupt, JournalSchemeError
from drafts.journal import ID_SCHEME_FIELD, journal_path, read_boundaries, read_journal, replay
from drafts.sessions import SessionManager
from lenses import Registry, lens
from lenses.errors import UnknownLensError
from lenses.lens import UnavailableLens, _arrive
from tests import lenses_for_tests as tl
from tests.strategies import TEST_LENS_PARAMS, stores

REG = tl.odd_registry()


@pytest.fixture(scope="module")
def two():
    with ProcessExecutor(2) as executor:
        yield executor


def _carrier_store(lens_id, n=64, params=None):
    carrier = pack_drafts([{"i": i} for i in range(n)])
    return Store.empty().add_draft(carrier).add_lens_instance("x", lens_id, carrier.id, params)


def _frames_with(state, code):
    return sorted(w.frame_index for w in state.warnings if w.code == code)


# -- item 3: one unpicklable output fails that frame only ----------------------------------------------------


def test_an_unpicklable_output_is_that_frames_invalid_output_on_processes(two):
    store = _carrier_store("odd.unpicklable")
    serial = recompute_derived(store, registry=REG)
    bad = _frames_with(serial, "invalidOutput")
    assert bad and len(bad) < 64 and {w.code for w in serial.warnings} == {"invalidOutput"}
    assert all("payload['lock']: lock is not JSON-like" in w.message for w in serial.warnings)
    assert len(serial.outputs("x")) == 64 - len(bad)
    assert recompute_derived(store, registry=REG, executor=two) == serial


# -- item 6: a set is not a sequence of outputs --------------------------------------------------------------


def test_a_lens_that_returns_a_set_gives_invalid_output(two):
    store = _carrier_store("odd.set", n=16)
    state = recompute_derived(store, registry=REG)
    warned = [w for w in state.warnings]
    assert warned and all(w.code == "invalidOutput" and "lens returned a set, an unordered" in w.message
                          for w in warned)
    assert "return a list" in warned[0].message
    assert recompute_derived(store, registry=REG, executor=two) == state


# -- item 7: exceptions are rendered safely ----------------------------------------------------------------


def test_an_exception_whose_str_raises_is_a_lens_error_everywhere(two):
    store = _carrier_store("odd.raise", n=32)
    state = recompute_derived(store, registry=REG)
    shouty = [w for w in state.warnings if "_Shouty" in w.message]
    assert shouty and shouty[0].message.startswith("_Shouty: <str() of this exception raised RuntimeError> (at ")
    assert recompute_derived(store, registry=REG, executor=two) == state


def test_a_workspace_is_never_left_stale_by_an_exception_whose_str_raises():
    ws = Workspace(registry=REG)
    carrier = ws.pack([{"i": i} for i in range(40)])
    ws.apply("x", "odd.raise", carrier)
    assert ws.derived.outputs("x") and any("_Shouty" in w.message for w in ws.derived.warnings)
    assert ws.derived == recompute_derived(ws.store, registry=REG)


def test_exception_text_that_is_not_unicode_is_escaped():
    from derived.evaluate import describe_exception

    assert describe_exception(ValueError("bad \ud800 char")) == "ValueError: bad \\ud800 char"


# -- item 8: an empty registry is a registry -----------------------------------------------------------------


def test_an_empty_registry_is_used_not_replaced_by_the_default():
    words = pack_drafts([{"text": "a"}])
    store = Store.empty().add_draft(words).add_lens_instance("up", "text.upper", words.id)
    empty = Registry()
    assert not empty  # falsy: `registry or default_registry` used to pick the default
    state = recompute_derived(store, registry=empty)
    assert [w.code for w in state.warnings] == ["unknownLens"] and state.outputs("up") == ()
    assert [p.code for p in plan_session(store, registry=empty).problems] == ["unknownLens"]
    ws = Workspace(registry=empty)
    with pytest.raises(UnknownLensError, match="text.upper"):
        ws.apply("up", "text.upper", ws.add({"text": "a"}))


# -- item 9: store equality agrees with derived-state equality -------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [(1, True), (1, 1.0), (True, 1.0), (0.0, -0.0), (0, False), (0, 0.0)])
def test_stores_whose_params_differ_in_type_or_sign_are_unequal(a, b):
    d = make_draft({"text": "x"})
    base = Store.empty().add_draft(d)
    one = base.add_lens_instance("s", "core.source", None, {"values": [{"v": a}]})
    other = base.add_lens_instance("s", "core.source", None, {"values": [{"v": b}]})
    assert (one == other) is False and one != other
    assert recompute_derived(one) != recompute_derived(other)
    again = base.add_lens_instance("s", "core.source", None, {"values": [{"v": a}]})
    assert one == again and hash(one) == hash(again)
    assert recompute_derived(one) == recompute_derived(again)


TRICKY = [0, 0.0, -0.0, False, 1, 1.0, True, None, "1", 1e16, [1], [1.0], {"a": 1}, {"a": True}]


@settings(max_examples=80)
@given(st.sampled_from(TRICKY), st.sampled_from(TRICKY))
def test_store_equality_is_derived_state_equality(a, b):
    def store(v):
        return Store.empty().add_lens_instance("s", "core.source", None, {"values": [{"v": v}]})

    assert (store(a) == store(b)) == (recompute_derived(store(a)) == recompute_derived(store(b)))


# -- item 10: nesting depth has one documented limit ---------------------------------------------------------


@lens("promise.deep", version="1")
def deep(draft, params):
    """Yields a payload nested ``depth`` lists deep."""
    value = "leaf"
    for _ in range(draft.payload["depth"]):
        value = [value]
    yield value


def test_outputs_up_to_max_depth_travel_from_workers_and_deeper_ones_are_invalid(two):
    carrier = pack_drafts([{"depth": MAX_DEPTH - 1}, {"depth": MAX_DEPTH}, {"depth": 3000}])
    store = Store.empty().add_draft(carrier).add_lens_instance("x", "promise.deep", carrier.id)
    reg = Registry((deep,))
    state = recompute_derived(store, registry=reg)
    assert len(state.outputs("x")) == 1 and _frames_with(state, "invalidOutput") == [1, 2]
    assert all("MAX_DEPTH" in w.message for w in state.warnings)
    assert recompute_derived(store, registry=reg, executor=two) == state


def _nested(depth):
    value = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def test_drafts_up_to_max_depth_work_in_every_operation(tmp_path):
    deepest = make_draft(_nested(MAX_DEPTH - 1))  # the document adds one level
    chain = make_draft({"n": 0})
    chained = [chain]
    while True:
        try:
            chain = make_draft({"inner": chain})
        except DraftError as exc:
            assert "MAX_DEPTH = 100" in str(exc) and exc.path == "payload['inner']"
            break
        chained.append(chain)
    assert len(chained) > 30
    for draft in (deepest, chained[-1]):
        assert draft_from_json(draft.to_json()) == draft
        assert draft_from_json(draft.to_json(indent=True)) == draft
        assert pickle.loads(pickle.dumps(draft)) == draft
        assert repr(draft).startswith("Draft(")
        # a journal record holds the draft document one level deeper: still fine
        assert orjson.loads(orjson.dumps({"draft": draft._canon_document()}))
        ws = Workspace.open(tmp_path, "deep", "p")
        ws.add(draft.thaw()[0], draft.thaw()[1])
        ws.close()
        path = journal_path(tmp_path, "deep", ws.session_id)
        assert replay(path) == ws.store


def test_one_level_too_deep_is_refused_naming_the_path():
    with pytest.raises(DraftError, match="MAX_DEPTH") as info:
        make_draft({"a": _nested(MAX_DEPTH - 1)})
    assert info.value.path == "payload['a']" + "[0]" * (MAX_DEPTH - 2)
    with pytest.raises(DraftError, match=r"^meta\['m'\]"):
        make_draft(1, {"m": _nested(MAX_DEPTH)})
    # a deep nested draft counts with its whole document
    deep = make_draft(_nested(MAX_DEPTH - 1))
    with pytest.raises(DraftError, match=r"^payload\['frame'\]: nesting"):
        make_draft({"frame": deep})


def test_far_too_deep_values_are_a_draft_error_not_a_recursion_error():
    with pytest.raises(DraftError, match="MAX_DEPTH"):
        make_draft(_nested(5000))


# -- item 11: error paths read outside in ---------------------------------------------------------------------


def test_a_lone_surrogate_is_named_by_its_path_outside_in():
    with pytest.raises(DraftError) as info:
        make_draft({"a": {"b": {"c": "\ud800"}}})
    assert info.value.path == "payload['a']['b']['c']" and "lone surrogate" in str(info.value)
    with pytest.raises(DraftError) as info:
        make_draft(1, {"m": [0, {"\udfff": 1}]})
    assert info.value.path == "meta['m'][1]['\\udfff']"


# -- item 12: SystemExit and KeyboardInterrupt, one rule --------------------------------------------------------


def test_a_lens_calling_sys_exit_is_a_lens_error_on_every_executor(two):
    store = _carrier_store("odd.exit", n=24)
    state = recompute_derived(store, registry=REG)
    exits = [w for w in state.warnings]
    assert exits and all(w.code == "lensError" and w.message.startswith("SystemExit: 3 (at ") for w in exits)
    assert len(state.outputs("x")) == 24 - len(exits)
    assert recompute_derived(store, registry=REG, executor=two) == state
    # the workers survived
    assert recompute_derived(store, registry=REG, executor=two) == state


@lens("promise.interrupt", version="1")
def interrupt(draft, params):
    """Stops the recompute at frame 3 (as Ctrl-C would)."""
    if draft.payload["i"] == 3:
        raise KeyboardInterrupt
    yield {"i": draft.payload["i"]}


def test_keyboard_interrupt_in_a_lens_stops_the_recompute_on_every_executor(two):
    reg = Registry((interrupt,))
    store = _carrier_store("promise.interrupt", n=12)
    for executor in (SerialExecutor(), two):
        memo = Memo()
        with pytest.raises(KeyboardInterrupt):
            recompute_derived(store, registry=reg, executor=executor, memo=memo)
        assert len(memo) == 0  # nothing of a stopped recompute is kept


# -- items 4 and 2: lenses reach workers as the code they are, or not at all --------------------------------


def _main_lens():
    def fn(draft, params):
        yield {"ok": True}

    fn.__module__, fn.__qualname__ = "__main__", "fn"
    return lens("promise.main", version="1")(fn)


def test_a_lens_defined_in_main_is_a_clear_warning_on_worker_executors(two):
    main_lens = _main_lens()
    store = _carrier_store("promise.main", n=4)
    reg = Registry((main_lens,))
    assert len(recompute_derived(store, registry=reg).outputs("x")) == 4  # in process it runs
    state = recompute_derived(store, registry=reg, executor=two)
    assert state.outputs("x") == () and len(state.warnings) == 4
    assert all(w.code == "lensError" and "defined in __main__" in w.message and "move it into a module" in w.message
               for w in state.warnings)
    assert "NoneType" not in state.warnings[0].message
    memo = Memo()
    recompute_derived(store, registry=reg, executor=two, memo=memo)
    assert len(recompute_derived(store, registry=reg, memo=memo).outputs("x")) == 4  # the failure was not cached


def test_a_closure_lens_is_a_clear_warning_on_worker_executors(two):
    closure = lens("promise.closure")(lambda draft, params: [{"ok": 1}])
    state = recompute_derived(_carrier_store("promise.closure", n=2), registry=Registry((closure,)), executor=two)
    assert {w.code for w in state.warnings} == {"lensError"}
    assert "defined inside a function" in state.warnings[0].message


def test_a_worker_that_finds_other_code_says_so_and_runs_nothing():
    sent = tl.flaky
    stale = _arrive(sent.fn.__module__, sent.fn.__qualname__, sent.id, sent.version, "0" * 32)
    assert isinstance(stale, UnavailableLens) and "is other code" in stale.reason
    missing = _arrive("tests.lenses_for_tests", "no_such_lens", "x", "1", "0" * 32)
    assert isinstance(missing, UnavailableLens) and "move it into a module" in missing.reason
    outcomes = run_chunk((stale, None, [make_draft(1)] * 3, ("x", None, [None] * 3), 5))
    assert [o.error_code for o in outcomes] == ["lensError"] * 3 and all(o.worker_failed for o in outcomes)
    assert pickle.loads(pickle.dumps(sent)) is sent


LENS_MODULE = '''
from lenses import lens


@lens("promise.edited", version="{version}")
def edited(draft, params):
    yield {{"text": draft.payload["text"] + "{suffix}"}}
'''


@pytest.fixture
def editable_module(tmp_path, monkeypatch):
    name = f"promise_edit_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**8}"
    path = tmp_path / f"{name}.py"
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(version, suffix):
        path.write_text(textwrap.dedent(LENS_MODULE.format(version=version, suffix=suffix)))
        importlib.invalidate_caches()
        if name in sys.modules:
            return importlib.reload(sys.modules[name]).edited
        return importlib.import_module(name).edited

    yield write
    sys.modules.pop(name, None)


def _texts(state):
    return [d.payload["text"] for d in state.outputs("x")]


def test_a_reused_process_executor_never_runs_stale_lens_code(editable_module):
    words = pack_drafts([{"text": t} for t in "ab"])
    store = Store.empty().add_draft(words).add_lens_instance("x", "promise.edited", words.id)
    with ProcessExecutor(1) as executor:
        first = editable_module("1", "!")
        assert _texts(recompute_derived(store, registry=Registry((first,)), executor=executor)) == ["a!", "b!"]
        second = editable_module("2", "?")  # edited, reloaded, version bumped: the README's advice
        state = recompute_derived(store, registry=Registry((second,)), executor=executor)
        assert _texts(state) == ["a?", "b?"] and state.warnings == ()
        third = editable_module("3", "?")  # only the version bumped
        state = recompute_derived(store, registry=Registry((third,)), executor=executor)
        assert _texts(state) == ["a?", "b?"] and state.warnings == ()
        assert {d.meta["provenance"]["lensVersion"] for d in state.outputs("x")} == {"3"}


def test_changed_code_under_the_same_version_is_never_reused_and_warned(editable_module):
    words = pack_drafts([{"text": t} for t in "ab"])
    store = Store.empty().add_draft(words).add_lens_instance("x", "promise.edited", words.id)
    memo = Memo()
    first = editable_module("1", "!")
    assert _texts(recompute_derived(store, registry=Registry((first,)), memo=memo)) == ["a!", "b!"]
    second = editable_module("1", "?")  # edited and reloaded, version NOT bumped
    assert first.code_fingerprint != second.code_fingerprint
    assert [j.decision for j in plan_session(store, registry=Registry((second,)), memo=memo).jobs] == ["run", "run"]
    state = recompute_derived(store, registry=Registry((second,)), memo=memo)
    assert _texts(state) == ["a?", "b?"]
    (warning,) = state.warnings
    assert warning.code == "lensCodeChanged" and "bump the version" in warning.message
    assert warning.details["was"] == first.code_fingerprint and warning.details["now"] == second.code_fingerprint
    again = recompute_derived(store, registry=Registry((second,)), memo=memo)
    assert again.warnings == () and _texts(again) == ["a?", "b?"]


def test_code_fingerprints_ignore_line_numbers_and_the_hash_seed():
    source = "def f(draft, params):\n    return [x for x in {'a', 'b', 'c'} if x in draft]\n"
    here, moved = {}, {}
    exec(compile(source, "one.py", "exec"), here)
    exec(compile("\n\n\n" + source, "other.py", "exec"), moved)
    from lenses.lens import code_fingerprint

    assert code_fingerprint(here["f"]) == code_fingerprint(moved["f"])
    script = (f"from lenses.lens import code_fingerprint\nns = {{}}\nexec(compile({source!r}, 'x.py', 'exec'), ns)\n"
              "print(code_fingerprint(ns['f']))")
    prints = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert prints == {code_fingerprint(here["f"]) + "\n"}


# -- item 5: the GC stays on --------------------------------------------------------------------------------

_CYCLES = {"live": 0, "most": 0}


class _Cycle:
    def __init__(self):
        self.me = self
        self.blob = bytearray(1000)
        _CYCLES["live"] += 1
        _CYCLES["most"] = max(_CYCLES["most"], _CYCLES["live"])

    def __del__(self):
        _CYCLES["live"] -= 1


@lens("promise.cycles", version="1")
def cycles(draft, params):
    """Leaves a reference cycle per call; reports whether (and how) the GC runs where it runs."""
    _Cycle()
    yield {"i": draft.payload["i"], "gc": gc.isenabled(), "thresholds": list(gc.get_threshold())}


def test_the_gc_stays_on_and_collects_a_lenss_cycles_during_a_recompute():
    reg = Registry((cycles,))
    before = gc.get_threshold()
    store = _carrier_store("promise.cycles", n=3000)
    _CYCLES.update(live=0, most=0)
    state = recompute_derived(store, registry=reg, caps=Caps(max_frames_evaluated=3000,
                                                              max_total_drafts_per_batch=3000))
    assert len(state.outputs("x")) == 3000 and all(d.payload["gc"] for d in state.outputs("x"))
    assert _CYCLES["most"] < 1500  # collected as the recompute ran, not all kept until it ended
    assert gc.isenabled() and gc.get_threshold() == before
    with ProcessExecutor(1) as fresh:  # its worker is forked while a recompute runs
        on_workers = recompute_derived(_carrier_store("promise.cycles", n=8), registry=reg, executor=fresh)
    assert [d.payload["gc"] for d in on_workers.outputs("x")] == [True] * 8
    assert {tuple(d.payload["thresholds"]) for d in on_workers.outputs("x")} == {before}


# -- item 1 (journals): the id scheme is recorded, and another scheme is a clear error -------------------------


def test_journals_record_the_id_scheme_and_refuse_another_one_clearly(tmp_path):
    ws = Workspace.open(tmp_path, "ana", "ana@desk")
    ws.add({"x": 1e16})
    path = journal_path(tmp_path, "ana", ws.session_id)
    ws._recorder = ws._recorder  # keep the session open: Workspace.open resumes it below
    assert read_journal(path).records[0][ID_SCHEME_FIELD] == ID_SCHEME
    assert ID_SCHEME_FIELD not in read_boundaries(path).start
    lines = path.read_bytes().split(b"\n")
    lines[0] = lines[0].replace(ID_SCHEME.encode(), b"draftlens.draft.v9")
    path.write_bytes(b"\n".join(lines))
    for read in (replay, read_journal, read_boundaries, lambda p: Workspace.open(tmp_path, "ana", "ana@desk")):
        with pytest.raises(JournalSchemeError, match="id scheme 'draftlens.draft.v9'") as info:
            read(path)
        assert not isinstance(info.value, JournalCorrupt) and "not damaged" in str(info.value)
        assert info.value.scheme == "draftlens.draft.v9" and info.value.expected == ID_SCHEME


def test_a_journal_written_before_the_id_scheme_was_recorded_still_replays(tmp_path):
    ws = Workspace.open(tmp_path, "bo", "bo@desk")
    draft = ws.add({"x": 1e16, "y": 0.1})
    path = journal_path(tmp_path, "bo", ws.session_id)
    lines = path.read_bytes().split(b"\n")
    record = orjson.loads(lines[0])
    del record[ID_SCHEME_FIELD]
    lines[0] = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    path.write_bytes(b"\n".join(lines))
    assert list(replay(path).drafts) == [draft.id]
    assert SessionManager(tmp_path).active_session("bo") == ws.session_id


# -- the executor-equality property, with odd lenses -----------------------------------------------------------

ODD_PARAMS = {**TEST_LENS_PARAMS, **tl.ODD_LENS_PARAMS}


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(stores(lens_ids=ODD_PARAMS))
def test_odd_lenses_give_equal_state_on_serial_and_processes(two, store):
    serial = recompute_derived(store, registry=REG)
    assert recompute_derived(store, registry=REG, executor=two) == serial
    assert recompute_derived(store, registry=REG, executor=two, memo=Memo()) == serial
