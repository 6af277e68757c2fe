"""The durable evaluation store: work survives the process (issue 13)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

import drafts.media as media
from derived import Memo, Workspace, recompute_derived
from derived.durable import DurableStore, StoreError, outcome_from_json, outcome_to_json
from derived.evaluate import CallOutcome, checked_output
from drafts import Store, make_draft, pack_drafts
from drafts.draft import frozen_payload
from lenses.result import COMPLETED, FAILED, ExecutionResult
from lenses.testing import json_values
from tests import lenses_durable
from tests import lenses_for_tests as tl

REG = tl.registry()
REG.register(lenses_durable.writes)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _store(texts, lens_id="test.counted"):
    carrier = pack_drafts([make_draft({"text": t, "n": i}) for i, t in enumerate(texts)])
    return Store.empty().add_draft(carrier).add_lens_instance("a", lens_id, carrier.id)


def _calls(fn):
    before = tl.CALLS["n"]
    result = fn()
    return result, tl.CALLS["n"] - before


# -- outcomes as canonical JSON ------------------------------------------------------------------


@given(st.lists(st.tuples(json_values(), st.one_of(st.none(), st.dictionaries(st.text(max_size=5), json_values(4),
                                                                                max_size=3))), max_size=4),
       st.booleans())
def test_an_outcome_read_back_from_disk_makes_the_same_drafts(outputs, overflow):
    outcome = CallOutcome(outputs=tuple(checked_output(p, m) for p, m in outputs), overflow=overflow)
    data = outcome_to_json(outcome)
    back = outcome_from_json(data)
    assert back.overflow == overflow
    assert [make_draft(frozen_payload(held), m) for held, _, m in back.outputs] == [make_draft(p, m) for p, m in outputs]
    assert outcome_to_json(back) == data  # canonical: one outcome, one text


def test_results_warnings_and_details_come_back_equal():
    result = ExecutionResult(job_id=None, status=COMPLETED, command=("ffmpeg", "-i", "a"), engine="e", exit_code=0,
                             outputs=[{"path": "/x", "size": 3}], message="ok")
    outcome = CallOutcome(outputs=(checked_output(result.outputs[0]),), result=result)
    assert outcome_from_json(outcome_to_json(outcome)) == outcome
    failed = CallOutcome(error_code="lensError", error="boom (at m.py:3)",
                         details=(("exception_type", "ValueError"), ("traceback", ("m.py:3 in f",))))
    assert outcome_from_json(outcome_to_json(failed)) == failed


def test_an_output_that_is_not_a_valid_draft_is_kept_in_memory_only(tmp_path):
    bad = ({"bad": float("nan")}, None, None)  # as if it slipped past the worker's check
    assert outcome_to_json(CallOutcome(outputs=(bad,))) is None
    store = _store(["a"], "test.bad_output")
    with Memo.open(tmp_path / "c.sqlite") as memo:
        state = recompute_derived(store, registry=REG, memo=memo)
    assert [w.code for w in state.warnings] == ["invalidOutput"]
    with Memo.open(tmp_path / "c.sqlite") as memo:
        assert recompute_derived(store, registry=REG, memo=memo) == state


def test_a_row_whose_draft_was_edited_is_a_miss_not_a_wrong_result(tmp_path):
    path = tmp_path / "c.sqlite"
    store = _store(["a", "b"])
    with Memo.open(path) as memo:
        fresh = recompute_derived(store, registry=REG, memo=memo)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE calls SET outcome = CAST(REPLACE(CAST(outcome AS TEXT), 'a!', 'Z!') AS BLOB) "
                   "WHERE CAST(outcome AS TEXT) LIKE '%a!%'")
    with Memo.open(path) as memo:
        state, calls = _calls(lambda: recompute_derived(store, registry=REG, memo=memo))
    assert state == fresh and calls == 1  # the edited entry runs again; the other is reused


# -- a new process pays only for what changed ----------------------------------------------------------


def test_a_reopened_store_runs_nothing_for_an_unchanged_store(tmp_path):
    path = tmp_path / "cache.sqlite"
    store = _store([f"t{i}" for i in range(300)])
    with Memo.open(path) as memo:
        first, calls = _calls(lambda: recompute_derived(store, registry=REG, memo=memo))
    assert calls == 300
    with Memo.open(path) as memo:  # a new memo: nothing in memory
        again, calls = _calls(lambda: recompute_derived(store, registry=REG, memo=memo))
        assert calls == 0 and again == first
        edited, calls = _calls(lambda: recompute_derived(_store([f"t{i}" for i in range(299)] + ["new"]),
                                                         registry=REG, memo=memo))
        assert calls == 1 and edited == recompute_derived(_store([f"t{i}" for i in range(299)] + ["new"]),
                                                            registry=REG)


def test_unusable_store_files_are_refused_with_their_path(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"junk\.sqlite: cannot be used as an evaluation store .*delete it"):
        Memo.open(junk)
    newer = tmp_path / "newer.sqlite"
    DurableStore(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value = '99' WHERE name = 'schema'")
    with pytest.raises(StoreError, match=r"newer\.sqlite: evaluation store schema 99, this draftlens reads 1"):
        Memo.open(newer)
    closed = DurableStore(tmp_path / "closed.sqlite")
    closed.close()
    with pytest.raises(StoreError, match="was closed"):
        closed.get_calls([("k",)])


def test_prune_drops_entries_the_latest_runs_did_not_use(tmp_path):
    path = tmp_path / "c.sqlite"
    with Memo.open(path) as memo:
        recompute_derived(_store(["a", "b"]), registry=REG, memo=memo)
    with Memo.open(path) as memo:
        recompute_derived(_store(["a", "c"]), registry=REG, memo=memo)  # "b" is not used
    store = DurableStore(path, evaluating=False)
    assert store.info()["entries"] == 3
    assert store.prune(keep_generations=2)["entries"] == 0
    removed = store.prune(keep_generations=1)
    assert removed["entries"] == 1 and store.info()["entries"] == 2
    with pytest.raises(ValueError, match="keep must be an int >= 1, got 0"):
        store.prune(0)
    store.close()


# -- crash and concurrency -----------------------------------------------------------------------------------


def _child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def _writes_store(folder, names):
    carrier = pack_drafts([make_draft({"dir": str(folder), "name": n}) for n in names])
    return Store.empty().add_draft(carrier).add_lens_instance("w", "test.writes", carrier.id)


def test_a_run_killed_mid_way_leaves_the_store_usable_and_its_finished_jobs_reused(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "die-at-c").write_text("")
    cache = tmp_path / "cache.sqlite"
    killed = _child(f"""
        from derived import Memo, recompute_derived
        from tests.test_durable import REG, _writes_store
        memo = Memo.open({str(cache)!r})
        recompute_derived(_writes_store({str(folder)!r}, ["a", "b", "c", "d"]), registry=REG, memo=memo)
        """)
    assert killed.returncode == 9, killed.stderr
    assert (folder / "runs.log").read_text().split() == ["a", "b"]
    (folder / "die-at-c").unlink()
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Memo.open(cache) as memo:
        state = recompute_derived(_writes_store(folder, ["a", "b", "c", "d"]), registry=REG, memo=memo)
    assert (folder / "runs.log").read_text().split() == ["a", "b", "c", "d"]  # a and b were not run again
    assert all(r.status == COMPLETED for r in state.results.values()) and len(state.results) == 4
    (folder / "b.out").unlink()  # an output deleted by hand is made again
    with Memo.open(cache) as memo:
        recompute_derived(_writes_store(folder, ["a", "b", "c", "d"]), registry=REG, memo=memo)
    assert (folder / "runs.log").read_text().split() == ["a", "b", "c", "d", "b"]


def test_two_processes_sharing_one_store_never_corrupt_it(tmp_path):
    cache = tmp_path / "cache.sqlite"
    code = f"""
        import sys
        from derived import Memo, recompute_derived
        from tests.test_durable import REG, _store
        tag = sys.argv[1]
        for round_ in range(4):
            with Memo.open({str(cache)!r}) as memo:
                recompute_derived(_store([f"{{tag}}{{round_}}-{{i}}" for i in range(400)] + ["shared"]),
                                  registry=REG, memo=memo)
        """
    children = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), tag], cwd=ROOT,
                                 stderr=subprocess.PIPE, text=True) for tag in "xy"]
    for child in children:
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # 2 processes x 4 rounds x 400 frames, and the "shared" frame (one key for all) once.
        assert db.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 2 * 4 * 400 + 1
    with Memo.open(cache) as memo:
        _, calls = _calls(lambda: recompute_derived(_store([f"x3-{i}" for i in range(400)] + ["shared"]),
                                                    registry=REG, memo=memo))
    assert calls == 0


def test_a_failed_job_is_remembered_but_never_reused(tmp_path):
    with Memo.open(tmp_path / "c.sqlite") as memo:
        failed = CallOutcome(error_code="executionFailed", error="x", result=ExecutionResult(
            job_id=None, status=FAILED, failure_class="execution", message="x"))
        memo.put_call(("k",), failed, "media.proxy")
    with Memo.open(tmp_path / "c.sqlite") as memo:
        assert memo.get_call(("k",)) == failed
        assert memo.durable.info()["by_lens"] == [{"lens": "media.proxy", "status": "FAILED", "entries": 1,
                                                   "bytes": memo.durable.info()["by_lens"][0]["bytes"]}]


# -- source fingerprints -----------------------------------------------------------------------------------------


def test_an_unchanged_source_is_not_read_again_in_a_new_process(tmp_path, monkeypatch):
    monkeypatch.setattr(media, "RACY_WINDOW_NS", 0)
    clip = tmp_path / "clip.mov"
    clip.write_bytes(b"x" * 100_000)
    with Memo.open(tmp_path / "c.sqlite") as memo:
        previous = media.use_fingerprint_cache(memo.durable)
        try:
            first = media.media_draft(clip)
            media._known.clear()  # a new process: nothing remembered in memory

            def no_reading(*args, **kwargs):
                raise AssertionError("the file was read again")

            with monkeypatch.context() as m:
                m.setattr(media.blake3, "blake3", no_reading)
                assert media.media_draft(clip) == first
                assert media.source_change(str(clip), first.payload["size"], first.payload["fingerprint"]) is None
            clip.write_bytes(b"y" * 100_000)  # same size, new bytes: a new status, so it is read
            assert media.media_draft(clip).payload["fingerprint"] != first.payload["fingerprint"]
        finally:
            media.use_fingerprint_cache(previous)


def test_a_file_changed_within_the_racy_window_is_not_remembered(tmp_path):
    clip = tmp_path / "clip.mov"
    clip.write_bytes(b"x" * 1000)
    with Memo.open(tmp_path / "c.sqlite") as memo:
        previous = media.use_fingerprint_cache(memo.durable)
        try:
            media.media_draft(clip)
            assert memo.durable.info()["fingerprints"] == 0
        finally:
            media.use_fingerprint_cache(previous)


# -- workspaces ---------------------------------------------------------------------------------------------------


def test_a_resumed_workspace_reuses_the_earlier_sessions_work(tmp_path):
    root = tmp_path / "logs"
    ws = Workspace.open(root, "ana", "ana@laptop", registry=REG)
    words = ws.pack([{"text": f"w{i}", "n": i} for i in range(50)])
    ws.apply("a", "test.counted", words)
    first = ws.derived
    ws.detach()  # as if the process ended: the session stays active, the journal and the cache stay on disk
    resumed, calls = _calls(lambda: Workspace.open(root, "ana", "ana@laptop", registry=REG))
    assert calls == 0 and resumed.derived == first
    assert os.path.exists(root / "users" / "ana" / "cache.sqlite")
    resumed.close()


def test_a_workspace_edited_many_times_keeps_a_bounded_memo():
    ws = Workspace(registry=REG, memo=Memo(max_calls=200))
    words = ws.pack([{"text": f"w{i}", "n": i} for i in range(100)])
    ws.apply("a", "test.repeat", words, {"times": 1})
    for times in range(2, 40):
        ws.set_params("a", {"times": times % 5 + 1})
    assert len(ws._memo) <= 100 + 200
