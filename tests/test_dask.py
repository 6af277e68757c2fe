import pytest

distributed = pytest.importorskip("distributed")

from derived import Caps, DaskExecutor, recompute_derived  # noqa: E402
from drafts import OutputOf, Store, make_draft, pack_drafts  # noqa: E402
from tests import lenses_for_tests as tl  # noqa: E402

pytestmark = pytest.mark.dask
REG = tl.registry()


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        with distributed.Client(lc) as client:
            yield client


def test_dask_results_equal_serial(cluster):
    carrier = pack_drafts([make_draft({"text": f"t{i}", "n": i % 5}) for i in range(600)])
    store = (
        Store.empty().add_draft(carrier)
        .add_lens_instance("a", "test.flaky", carrier.id)
        .add_lens_instance("b", "test.repeat", OutputOf("a"), {"times": 2})
    )
    caps = Caps(max_total_drafts_per_batch=2000)
    executor = DaskExecutor(cluster)
    assert recompute_derived(store, registry=REG, caps=caps, executor=executor) == recompute_derived(
        store, registry=REG, caps=caps
    )


def _allowed_failures(client):
    return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)


def test_dask_executor_leaves_the_users_scheduler_and_default_client_alone(cluster):
    # Issue 14, item 13: it used to set allowed_failures to 0 for good and to replace the default client.
    before = _allowed_failures(cluster)
    assert before > 0  # Dask's default (3): a shared scheduler may re-run tasks
    with DaskExecutor(cluster) as executor:
        assert _allowed_failures(cluster) == before
        carrier = pack_drafts([{"text": "x"}])
        store = Store.empty().add_draft(carrier).add_lens_instance("u", "text.upper", carrier.id)
        recompute_derived(store, registry=REG, executor=executor)
    assert _allowed_failures(cluster) == before
    with DaskExecutor(cluster.scheduler.address) as own:
        assert own.client is not cluster and distributed.default_client() is cluster
    assert distributed.default_client() is cluster and cluster.status == "running"


def test_a_chunk_dask_ran_twice_is_failed_never_a_success(cluster, tmp_path):
    # Seed 002: no implicit retries. The scheduler re-runs the frame after its worker died; the
    # re-run succeeds, and draftlens still reports the chunk FAILED instead of using it.
    carrier = pack_drafts([{"n": 1, "marker_dir": str(tmp_path)}])
    store = Store.empty().add_draft(carrier).add_lens_instance("k", "test.die_once", carrier.id)
    state = recompute_derived(store, registry=REG, executor=DaskExecutor(cluster))
    (warning,) = state.warnings
    assert warning.code == "lensError" and "worker failed (not retried)" in warning.message
    assert "ran more than once" in warning.message and state.outputs("k") == ()
    cluster.wait_for_workers(2, timeout=60)


def test_a_lens_dask_gave_up_on_is_failed(cluster, tmp_path):
    carrier = pack_drafts([{"n": 1, "marker_dir": str(tmp_path)}])
    store = Store.empty().add_draft(carrier).add_lens_instance("k", "test.kill_worker", carrier.id)
    cluster.run_on_scheduler(_set_allowed_failures, 0)
    try:
        state = recompute_derived(store, registry=REG, executor=DaskExecutor(cluster))
    finally:
        cluster.run_on_scheduler(_set_allowed_failures, 3)
    (warning,) = state.warnings
    assert warning.code == "lensError" and "KilledWorker" in warning.message
    assert len(list(tmp_path.iterdir())) == 1  # ran exactly once
    cluster.wait_for_workers(2, timeout=60)


def _set_allowed_failures(value, dask_scheduler=None):
    dask_scheduler.allowed_failures = value


from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.strategies import stores  # noqa: E402


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stores())
def test_random_stores_give_equal_state_on_dask(cluster, store):
    assert recompute_derived(store, registry=REG, executor=DaskExecutor(cluster)) == recompute_derived(
        store, registry=REG
    )


# -- issue 14: odd lenses give the same state on Serial, ProcessExecutor(2) and Dask ---------------------------

from derived import Memo, ProcessExecutor  # noqa: E402
from lenses import Registry  # noqa: E402
from tests.strategies import TEST_LENS_PARAMS  # noqa: E402
from tests.test_engine_promises import _main_lens, interrupt  # noqa: E402

ODD = tl.odd_registry()


@pytest.fixture(scope="module")
def two():
    with ProcessExecutor(2) as executor:
        yield executor


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(stores(lens_ids={**TEST_LENS_PARAMS, **tl.ODD_LENS_PARAMS}))
def test_raising_unpicklable_set_returning_context_reading_and_exiting_lenses_agree_everywhere(cluster, two, store):
    serial = recompute_derived(store, registry=ODD)
    dask = DaskExecutor(cluster)
    assert recompute_derived(store, registry=ODD, executor=two) == serial
    assert recompute_derived(store, registry=ODD, executor=dask) == serial
    assert recompute_derived(store, registry=ODD, executor=dask, memo=Memo()) == serial


def test_every_odd_lens_over_64_frames_agrees_on_dask(cluster, two):
    carrier = pack_drafts([{"i": i} for i in range(64)])
    store = Store.empty().add_draft(carrier)
    for one in tl.ODD_LENSES:
        store = store.add_lens_instance(one.id, one.id, carrier.id)
    serial = recompute_derived(store, registry=ODD)
    assert {w.code for w in serial.warnings} == {"lensError", "invalidOutput"}
    assert recompute_derived(store, registry=ODD, executor=two) == serial
    assert recompute_derived(store, registry=ODD, executor=DaskExecutor(cluster)) == serial
    assert len(cluster.nthreads()) == 2  # sys.exit in a lens killed no worker


def test_a_main_lens_on_dask_is_a_clear_warning_not_a_none_lookup(cluster):
    carrier = pack_drafts([{"i": i} for i in range(3)])
    store = Store.empty().add_draft(carrier).add_lens_instance("x", "promise.main", carrier.id)
    state = recompute_derived(store, registry=Registry((_main_lens(),)), executor=DaskExecutor(cluster))
    assert [w.code for w in state.warnings] == ["lensError"] * 3
    assert "defined in __main__" in state.warnings[0].message and "NoneType" not in state.warnings[0].message


def test_keyboard_interrupt_in_a_lens_stops_a_dask_recompute(cluster):
    carrier = pack_drafts([{"i": i} for i in range(6)])
    store = Store.empty().add_draft(carrier).add_lens_instance("x", "promise.interrupt", carrier.id)
    with pytest.raises(KeyboardInterrupt):
        recompute_derived(store, registry=Registry((interrupt,)), executor=DaskExecutor(cluster))


def test_independent_instances_overlap_on_dask(cluster, tmp_path):
    # Issue 18: instances are not run one after another. "waits" frame 0 waits (up to 30 s) for the mark
    # "marks" frame 0 makes: only if both instances' tasks are on the cluster at once does it see it.
    carrier = pack_drafts([make_draft({"n": i}) for i in range(4)])
    store = (Store.empty().add_draft(carrier)
             .add_lens_instance("waits", "test.rendezvous", carrier.id,
                                {"directory": str(tmp_path), "wait": "b", "wait_n": 0})
             .add_lens_instance("marks", "test.rendezvous", carrier.id,
                                {"directory": str(tmp_path), "mark": "b", "mark_n": 0}))
    state = recompute_derived(store, registry=REG, executor=DaskExecutor(cluster))
    assert not state.warnings
    assert [d.payload["met"] for d in state.outputs("waits")] == [True] * 4
