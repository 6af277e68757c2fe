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


def test_dask_does_not_retry_a_lost_worker(cluster, tmp_path):
    executor = DaskExecutor(cluster)
    assert cluster.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures) == 0
    carrier = pack_drafts([{"n": 1, "marker_dir": str(tmp_path)}])
    store = Store.empty().add_draft(carrier).add_lens_instance("k", "test.kill_worker", carrier.id)
    state = recompute_derived(store, registry=REG, executor=executor)
    (warning,) = state.warnings
    assert warning.code == "lensError" and "worker failed (not retried)" in warning.message
    assert "KilledWorker" in warning.message
    assert len(list(tmp_path.iterdir())) == 1  # ran exactly once
    cluster.wait_for_workers(2, timeout=60)


from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.strategies import stores  # noqa: E402


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stores())
def test_random_stores_give_equal_state_on_dask(cluster, store):
    assert recompute_derived(store, registry=REG, executor=DaskExecutor(cluster)) == recompute_derived(
        store, registry=REG
    )
