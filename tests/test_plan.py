import os
import pickle
import subprocess
import sys

import attrs
import pytest
from hypothesis import given, settings
from pyrsistent import thaw

from derived import (
    BatchPlanSession,
    Caps,
    Memo,
    Monitor,
    SessionJobId,
    plan_session,
    recompute_derived,
)
from drafts import OutputOf, Store, make_draft, pack_drafts
from tests import lenses_for_tests as tl
from tests.strategies import stores

REG = tl.registry()


def _chain():
    carrier = pack_drafts([make_draft({"text": t, "n": i}) for i, t in enumerate("abc")])
    store = (
        Store.empty().add_draft(carrier)
        .add_lens_instance("up", "text.upper", carrier.id)
        .add_lens_instance("src", "core.source", None, {"values": [{"text": "x"}]})
        .add_lens_instance("rep", "test.repeat", OutputOf("up"), {"times": 2})
        .add_lens_instance("ghost", "no.such", carrier.id)
    )
    return carrier, store


def test_plan_lists_frame_jobs_single_jobs_and_expanding_jobs():
    carrier, store = _chain()
    session = plan_session(store, registry=REG)
    jobs = session.jobs
    up = [j for j in jobs if j.lens_instance_id == "up"]
    assert [j.frame_index for j in up] == [0, 1, 2]
    assert [j.inputs for j in up] == [(f.id,) for f in carrier.payload["values"]]
    assert all(j.job_type == "Convert" and j.depends_on == () and j.decision == "run" for j in up)
    (src,) = [j for j in jobs if j.lens_instance_id == "src"]
    assert src.frame_index is None and src.inputs == () and thaw(src.params) == {"values": [{"text": "x"}]}
    (rep,) = [j for j in jobs if j.lens_instance_id == "rep"]
    assert rep.expands and set(rep.depends_on) == {j.job_id for j in up} and dict(rep.params) == {"times": 2}
    assert session.job_count == 5 and session.is_dag
    order = session.topological_order
    assert order.index(rep.job_id) > max(order.index(j.job_id) for j in up)
    assert [p.code for p in session.problems] == ["unknownLens"]
    assert session.job(order[0]) == jobs[0]
    with pytest.raises(KeyError, match="no job"):
        session.job(SessionJobId("nope"))


def test_resolved_params_with_defaults_are_in_the_plan():
    _, store = _chain()
    store = store.add_lens_instance("rep2", "test.repeat", OutputOf("up"))
    session = plan_session(store, registry=REG)
    (job,) = [j for j in session.jobs if j.lens_instance_id == "rep2"]
    assert dict(job.params) == {"times": 2}


def test_sessions_cannot_be_mutated():
    _, store = _chain()
    session = plan_session(store, registry=REG)
    job = session.jobs[0]
    attempts = [
        lambda: setattr(session, "session_id", None),
        lambda: delattr(session, "session_id"),
        lambda: setattr(job, "decision", "reused"),
        lambda: setattr(job, "depends_on", ()),
        lambda: session.job_ids.__setitem__(0, None),
        lambda: job.depends_on.append(None),  # tuples have no append
        lambda: job.params.__setitem__("times", 9),
        lambda: setattr(session.session_id, "_token", "x"),
    ]
    for attempt in attempts:
        with pytest.raises((attrs.exceptions.FrozenInstanceError, TypeError, AttributeError)):
            attempt()
    assert plan_session(store, registry=REG) == session


def test_session_ids_depend_on_store_and_caps_not_on_the_memo():
    _, store = _chain()
    base = plan_session(store, registry=REG)
    memo = Memo()
    recompute_derived(store, registry=REG, memo=memo)
    warmed = plan_session(store, registry=REG, memo=memo)
    assert warmed.session_id == base.session_id and warmed.job_ids == base.job_ids
    assert warmed == base  # decision is left out of equality
    assert {warmed.job(j).decision for j in warmed.job_ids if not warmed.job(j).expands} == {"reused"}
    assert plan_session(store, registry=REG, caps=Caps(max_frames_evaluated=2)).session_id != base.session_id
    other = store.set_params("rep", {"times": 3})
    assert plan_session(other, registry=REG).session_id != base.session_id


def test_derived_state_records_the_plan_it_executed_and_the_monitor_sees_it():
    _, store = _chain()
    monitor = Monitor()
    state = recompute_derived(store, registry=REG, monitor=monitor)
    assert state.plan == plan_session(store, registry=REG)
    sid = state.plan.session_id
    assert monitor.sessions[sid] is state.plan and monitor.states[sid] == (state,)
    with pytest.raises(TypeError):
        monitor.sessions[sid] = None  # read-only view
    assert not any(hasattr(monitor, name) for name in ("annotate", "set_decision", "attach"))


def test_session_and_job_ids_are_opaque_strings():
    _, store = _chain()
    session = plan_session(store, registry=REG)
    assert len(str(session.session_id)) == 32 and "SessionId(" in repr(session.session_id)
    assert len({str(j) for j in session.job_ids}) == session.job_count
    assert pickle.loads(pickle.dumps(session.session_id)) == session.session_id


_PLAN_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from drafts import Store, OutputOf, draft_from_json
from derived import plan_session
from tests import lenses_for_tests as tl
import json
spec = json.loads(sys.stdin.read())
store = Store.empty()
for text in spec["drafts"]:
    store = store.add_draft(draft_from_json(text))
for iid, lens_id, kind, ref, params in spec["instances"]:
    source = None if kind == "none" else OutputOf(ref) if kind == "out" else ref
    store = store.add_lens_instance(iid, lens_id, source, params)
s = plan_session(store, registry=tl.registry())
print(s.session_id, *[str(j) for j in s.topological_order])
"""


def _spec(store):
    import json

    from pyrsistent import thaw

    instances = []
    for iid, li in store.lens_instances.items():
        kind = "none" if li.input is None else "out" if isinstance(li.input, OutputOf) else "draft"
        ref = li.input.instance_id if kind == "out" else li.input
        instances.append([iid, li.lens_id, kind, ref, thaw(li.params)])
    return json.dumps({"drafts": [d.to_json().decode() for d in store.drafts.values()], "instances": instances})


@settings(max_examples=6)
@given(stores())
def test_plan_ids_are_equal_across_processes_with_different_hash_seeds(store):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = _spec(store)
    outs = []
    for seed in ("0", "7"):
        run = subprocess.run([sys.executable, "-c", _PLAN_SCRIPT.format(root=root)], input=spec, text=True,
                             capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed}, check=True)
        outs.append(run.stdout.split())
    here = plan_session(store, registry=REG)
    assert outs[0] == outs[1] == [str(here.session_id), *[str(j) for j in here.topological_order]]


@given(stores())
def test_every_plan_is_a_dag_in_instance_order(store):
    session = plan_session(store, registry=REG)
    assert session.is_dag and isinstance(session, BatchPlanSession)
    assert len(session.topological_order) == session.job_count
