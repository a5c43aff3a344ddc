"""Every engine of the clustering core gives the same result as scikit-learn's Lloyd from the
same initial centres, and seeded k-means|| is repeatable per engine."""

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from conftest import LLOYD_K6
from sklearn.cluster import KMeans as SklearnKMeans

from segcore.config import KMeansConfig
from segcore.errors import EnvironmentProblem, TrainingError
from segcore.kmeans import FitSettings, core
from segcore.kmeans.engines.local import LocalBlocks
from segcore.kmeans.engines.mllib import fit_mllib
from segcore.kmeans.engines.spark import MAX_PARTITION_NUM, SlotsError, fit_spark, sweep_spark
from segcore.model.preparation import Preparation
from segcore.train.engines import engine_workers, fit_sweep

K, ITERATIONS = LLOYD_K6["k"], LLOYD_K6["iterations"]  # of the lloyd_k6 fixture
COLUMNS = [f"x{i}" for i in range(5)]
STRICT = "array_api_strict"


@pytest.fixture(scope="module")
def lloyd_k6_frame(spark, lloyd_k6):
    return spark.createDataFrame(pd.DataFrame(lloyd_k6[0], columns=COLUMNS)).repartition(3).cache()


@pytest.fixture(scope="module")
def dask_local_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _assert_matches(centres, lloyd_k6):
    points, _, reference = lloyd_k6
    np.testing.assert_allclose(centres, reference.cluster_centers_, rtol=1e-4, atol=1e-9)
    labels, _ = LocalBlocks(points).assign(centres)
    np.testing.assert_array_equal(labels, reference.labels_)


def test_spark_matches_scikit_learn(lloyd_k6_frame, lloyd_k6):
    result = fit_spark(
        lloyd_k6_frame, COLUMNS, K, FitSettings(seed=0, max_iter=ITERATIONS, tol=0.0, init=lloyd_k6[1])
    )
    assert result.engine == "spark" and result.n_iter == ITERATIONS
    _assert_matches(result.centres, lloyd_k6)


def test_dask_matches_scikit_learn(dask_local_client, lloyd_k6):
    import dask.array as da

    from segcore.kmeans.engines.dask import fit_dask

    array = da.from_array(lloyd_k6[0], chunks=(2_500, len(COLUMNS))).persist()
    result = fit_dask(
        array,
        K,
        FitSettings(seed=0, max_iter=ITERATIONS, tol=0.0, init=lloyd_k6[1]),
        client=dask_local_client,
    )
    _assert_matches(result.centres, lloyd_k6)


def _refuse_numpy_conversion() -> None:
    """On a Dask worker: a NumPy function called on a strict-namespace array raises, as on CuPy."""
    import array_api_strict

    def refuse(self, *args, **kwargs):
        raise TypeError("a NumPy function was called on an array of the block's namespace")

    type(array_api_strict.asarray(0.0)).__array__ = refuse


def test_dask_on_the_strict_namespace_equals_numpy(dask_local_client, lloyd_k6):
    """The Dask engine's blocks in the array API's strict namespace on its workers (the GPU path's
    code, CuPy there): the same fit as on NumPy, to 1e-9, seeded k-means|| included."""
    import dask.array as da

    from segcore.kmeans.engines.dask import fit_dask

    dask_local_client.run(_refuse_numpy_conversion)
    array = da.from_array(lloyd_k6[0], chunks=(2_500, len(COLUMNS))).persist()
    settings = FitSettings(seed=3, max_iter=ITERATIONS, tol=0.0)
    fits = [fit_dask(array, K, settings, client=dask_local_client, array_module=m) for m in ("numpy", STRICT)]
    np.testing.assert_allclose(fits[1].centres, fits[0].centres, rtol=1e-9, atol=0)
    np.testing.assert_array_equal(fits[1].counts, fits[0].counts)
    assert fits[1].inertia == pytest.approx(fits[0].inertia, rel=1e-9)


@pytest.mark.parametrize("engine", ["local", "dask", "spark"])
def test_gpu_where_there_is_none_is_an_environment_problem(spark, lloyd_k6, lloyd_k6_frame, tmp_path, engine):
    """kmeans.device=gpu without CuPy or a GPU (here: neither), on the driver (local) or on the
    workers (dask, spark): exit 3 saying what to install or set."""
    pd.DataFrame(lloyd_k6[0], columns=COLUMNS).to_parquet(tmp_path / "part-0.parquet", index=False)
    preparation = Preparation.fit(lloyd_k6_frame, COLUMNS, [], 0.0)
    settings = KMeansConfig(engine=engine, k=K, max_iter=2, device="gpu")
    with pytest.raises(
        EnvironmentProblem, match=r"kmeans.device=gpu .*needs .*set kmeans.device=cpu"
    ) as refusal:
        if engine == "local":
            engine_workers(spark, settings)
        fit_sweep(settings, {K: None}, lloyd_k6_frame, str(tmp_path), preparation)
    assert refusal.value.exit_code == 3


def test_dask_engine_reads_a_feature_table_of_several_files(spark, lloyd_k6, tmp_path):
    """The pipeline's dask path (a local cluster) over five unequal Parquet files, one empty, wider
    than the clustered columns: the same centres and counts as the local engine from the same start."""
    points, init, _ = lloyd_k6
    table = pd.DataFrame(points, columns=COLUMNS)
    for j in range(20):
        table[f"other_{j}"] = np.random.default_rng(j).normal(size=len(points))
    bounds = [0, 4_000, 4_000, 5_500, 9_000, len(points)]
    for i, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        table.iloc[start:stop].to_parquet(tmp_path / f"part-{i}.parquet", index=False)
    frame = spark.read.parquet(str(tmp_path))
    preparation = Preparation.fit(frame, COLUMNS, [], 0.0)
    start = preparation.transform_array(init)
    settings = KMeansConfig(engine="dask", k=K, max_iter=ITERATIONS, tol=0.0)
    result = fit_sweep(settings, {K: start}, frame, str(tmp_path), preparation)[K]
    settings_local = FitSettings(max_iter=ITERATIONS, tol=0.0, init=start)
    local = core.fit(LocalBlocks(preparation.transform_array(points)), K, settings_local)
    assert result.engine == "dask" and result.n_iter == local.n_iter
    np.testing.assert_allclose(result.centres, local.centres, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(result.counts, local.counts)


def test_mllib_reference_matches_scikit_learn(lloyd_k6_frame, lloyd_k6):
    result = fit_mllib(
        lloyd_k6_frame, COLUMNS, K, FitSettings(max_iter=ITERATIONS, tol=0.0, init=lloyd_k6[1])
    )
    _assert_matches(result.centres, lloyd_k6)


def test_mllib_with_the_mapped_tol_never_stops_before_the_core(lloyd_k6_frame, lloyd_k6):
    """MLlib's per-centre epsilon, mapped from tol=1e-2 (mllib_epsilon), runs at least the core's
    iterations from the same start and lands on the same centres."""
    settings = FitSettings(max_iter=100, tol=1e-2, init=lloyd_k6[1])
    ours = core.fit(LocalBlocks(lloyd_k6[0]), K, settings)
    mllib = fit_mllib(lloyd_k6_frame, COLUMNS, K, settings)
    assert ours.converged and mllib.converged
    assert mllib.n_iter >= ours.n_iter > 1
    np.testing.assert_allclose(mllib.centres, ours.centres, rtol=0, atol=0.05)


def test_seeded_init_is_repeatable_on_spark_and_good(lloyd_k6_frame, lloyd_k6):
    first = fit_spark(lloyd_k6_frame, COLUMNS, K, FitSettings(seed=5, max_iter=100, tol=1e-4))
    second = fit_spark(lloyd_k6_frame, COLUMNS, K, FitSettings(seed=5, max_iter=100, tol=1e-4))
    np.testing.assert_array_equal(first.centres, second.centres)
    best = min(SklearnKMeans(K, n_init=1, random_state=s).fit(lloyd_k6[0]).inertia_ for s in range(10))
    assert first.inertia <= best * 1.01


def test_seeded_init_is_repeatable_on_dask(dask_local_client, lloyd_k6):
    import dask.array as da

    from segcore.kmeans.engines.dask import fit_dask

    array = da.from_array(lloyd_k6[0], chunks=(3_000, len(COLUMNS))).persist()
    runs = [
        fit_dask(array, K, FitSettings(seed=5, max_iter=100, tol=1e-4), client=dask_local_client)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].centres, runs[1].centres)


SEEDED = FitSettings(seed=11, max_iter=100, tol=1e-4)
# Three barrier tasks need three task slots: the tests' session has two, so a session of its own.
SPARK_WORKERS_JOB = """
import sys
import numpy as np, pandas as pd
from pyspark.sql import SparkSession
from segcore.kmeans import FitSettings
from segcore.kmeans.engines.spark import fit_spark
points, out = np.load(sys.argv[1]), sys.argv[2]
spark = SparkSession.builder.master("local[3]").config("spark.ui.enabled", "false").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
columns = [f"x{i}" for i in range(points.shape[1])]
frame = spark.createDataFrame(pd.DataFrame(points, columns=columns)).cache()
settings = FitSettings(seed=11, max_iter=100, tol=1e-4)
found = {}
for workers in (1, 2, 3):
    result = fit_spark(frame, columns, int(sys.argv[3]), settings, num_workers=workers)
    found[f"centres_{workers}"], found[f"counts_{workers}"] = result.centres, result.counts
np.savez(out, **found)
"""


@pytest.fixture(scope="module")
def seeded_local(lloyd_k6):
    """The local engine's seeded k-means|| fit: the answer every engine and split must give."""
    return core.fit(LocalBlocks(lloyd_k6[0]), K, SEEDED)


def _assert_same_fit(centres, counts, reference):
    np.testing.assert_allclose(centres, reference.centres, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(counts, reference.counts)


def test_the_same_seed_gives_the_same_centres_on_spark_with_1_2_3_workers(lloyd_k6, seeded_local, tmp_path):
    np.save(tmp_path / "points.npy", lloyd_k6[0])
    arguments = [str(tmp_path / "points.npy"), str(tmp_path / "out.npz"), str(K)]
    subprocess.run([sys.executable, "-c", SPARK_WORKERS_JOB, *arguments], check=True, timeout=600)
    found = np.load(tmp_path / "out.npz")
    for workers in (1, 2, 3):
        _assert_same_fit(found[f"centres_{workers}"], found[f"counts_{workers}"], seeded_local)


def test_the_same_seed_gives_the_same_centres_on_dask_with_any_chunks(
    dask_local_client, lloyd_k6, seeded_local
):
    import dask.array as da

    from segcore.kmeans.engines.dask import fit_dask

    for chunks in (12_000, 2_500, 1_001, (5_000, 4_000, 3_000)):
        array = da.from_array(lloyd_k6[0], chunks=(chunks, len(COLUMNS)))
        result = fit_dask(array, K, SEEDED, client=dask_local_client)
        _assert_same_fit(result.centres, result.counts, seeded_local)


def test_float32_gives_the_same_labels(lloyd_k6_frame, lloyd_k6):
    result = fit_spark(
        lloyd_k6_frame,
        COLUMNS,
        K,
        FitSettings(seed=0, max_iter=ITERATIONS, tol=0.0, init=lloyd_k6[1]),
        dtype="float32",
    )
    np.testing.assert_allclose(result.centres, lloyd_k6[2].cluster_centers_, rtol=1e-3)


def test_spark_refuses_more_workers_than_slots(lloyd_k6_frame, spark):
    slots = spark.sparkContext.defaultParallelism
    with pytest.raises(SlotsError, match=rf"num_workers={slots + 1} needs that many task slots"):
        fit_spark(lloyd_k6_frame, COLUMNS, K, FitSettings(seed=0, max_iter=2, tol=0.0), num_workers=slots + 1)


def test_a_failing_task_fails_the_fit_cleanly(lloyd_k6_frame):
    def prepare(rows):
        from pyspark import BarrierTaskContext

        if BarrierTaskContext.get().partitionId() == 1:
            raise RuntimeError("broken partition")
        return rows

    with pytest.raises(Exception, match="broken partition"):
        fit_spark(
            lloyd_k6_frame, COLUMNS, K, FitSettings(seed=0, max_iter=2, tol=0.0), timeout=60, prepare=prepare
        )


def test_cuml_engine_without_cuml_says_how_to_install(spark, lloyd_k6_frame, monkeypatch):
    """Wherever cuML is not importable (here made so, whatever is installed), train's cuml engine
    stops with a TrainingError (exit code 2) that says what to install."""
    monkeypatch.setitem(sys.modules, "cuml", None)
    monkeypatch.setitem(sys.modules, "cuml.cluster", None)
    preparation = Preparation.fit(lloyd_k6_frame, COLUMNS, [], 0.0)
    settings = KMeansConfig(engine="cuml", k=K)
    with pytest.raises(TrainingError, match=r"kmeans.engine=cuml needs cuML.*pip install 'segcore\[gpu\]'"):
        fit_sweep(settings, {K: None}, lloyd_k6_frame, "unused", preparation)


def test_a_retried_stage_gives_the_same_result(lloyd_k6_frame, lloyd_k6, tmp_path):
    marker = tmp_path / "failed-once"

    def fail_once(rows):
        from pyspark import BarrierTaskContext

        if BarrierTaskContext.get().partitionId() == 1 and not marker.exists():
            marker.touch()
            raise RuntimeError("injected failure")
        return rows

    clean = fit_spark(lloyd_k6_frame, COLUMNS, K, FitSettings(seed=3, max_iter=10, tol=0.0))
    retried = fit_spark(
        lloyd_k6_frame, COLUMNS, K, FitSettings(seed=3, max_iter=10, tol=0.0), prepare=fail_once
    )
    assert marker.exists()
    np.testing.assert_array_equal(clean.centres, retried.centres)


@pytest.fixture(scope="module")
def sweep(lloyd_k6):
    """Three k, seeded k-means|| with and without tol, and one warm start (as from a champion)."""
    return {
        3: FitSettings(seed=4, max_iter=100, tol=1e-4),
        4: FitSettings(seed=9, max_iter=100, tol=0.0),
        K: FitSettings(seed=0, max_iter=ITERATIONS, tol=0.0, init=lloyd_k6[1]),
    }


def _assert_sweep_equals_separate_fits(swept, separate):
    assert sorted(swept) == sorted(separate)
    for k in separate:
        np.testing.assert_allclose(swept[k].centres, separate[k].centres, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(swept[k].counts, separate[k].counts)
        assert swept[k].n_iter == separate[k].n_iter


def _spark_jobs(spark, group: str, run):
    """``run()`` and the number of Spark jobs it started."""
    context = spark.sparkContext
    context.setJobGroup(group, group)
    try:
        result = run()
    finally:
        context.setJobGroup("", "")
    return result, len(context.statusTracker().getJobIdsForGroup(group))


def test_a_spark_sweep_equals_separate_fits_and_runs_the_jobs_of_one_fit(spark, lloyd_k6_frame, sweep):
    separate = {k: fit_spark(lloyd_k6_frame, COLUMNS, k, settings) for k, settings in sweep.items()}
    _, one_fit_jobs = _spark_jobs(
        spark, "test-one-k", lambda: fit_spark(lloyd_k6_frame, COLUMNS, 3, sweep[3])
    )
    swept, sweep_jobs = _spark_jobs(spark, "test-sweep", lambda: sweep_spark(lloyd_k6_frame, COLUMNS, sweep))
    _assert_sweep_equals_separate_fits(swept, separate)
    # Every k in the one barrier stage of a single fit: the data is loaded and shuffled once.
    assert sweep_jobs == one_fit_jobs


def test_input_partitions_as_many_as_the_barrier_tasks_are_fitted_without_a_shuffle(
    spark, lloyd_k6, tmp_path
):
    settings = FitSettings(seed=0, max_iter=ITERATIONS, tol=0.0, init=lloyd_k6[1])
    jobs = {}
    # Each file costs as much as a whole partition to open: Spark reads every file as a partition.
    spark.conf.set("spark.sql.files.openCostInBytes", str(128 << 20))
    try:
        for files in (1, 2, 5):
            table = tmp_path / f"rows-{files}"
            table.mkdir()
            for i, part in enumerate(np.array_split(lloyd_k6[0], files)):
                pd.DataFrame(part, columns=COLUMNS).to_parquet(table / f"part-{i}.parquet")
            frame = spark.read.parquet(str(table))
            assert frame.rdd.getNumPartitions() == files
            result, jobs[files] = _spark_jobs(
                spark,
                f"test-{files}-files",
                lambda: fit_spark(frame, COLUMNS, K, settings, num_workers=2),  # noqa: B023
            )
            _assert_matches(result.centres, lloyd_k6)
    finally:
        spark.conf.unset("spark.sql.files.openCostInBytes")
    # Adaptive execution runs a shuffle's map stage as a job of its own: 1 partition is shuffled
    # into the 2 barrier tasks; 2 are kept, and 5 files are packed into 2 partitions.
    assert jobs[5] == jobs[2] == jobs[1] - 1, jobs
    assert spark.conf.get(MAX_PARTITION_NUM, None) is None  # as it was


def test_two_spark_fits_at_once_in_one_session_give_their_answers_and_leave_its_settings(
    spark, lloyd_k6, tmp_path
):
    """A second fit starts while the first holds the session's file packing, and would end after
    it: it waits its turn, both give the answer of a fit alone, and the setting is unset
    afterwards, as it was."""
    table, first_done = tmp_path / "rows", tmp_path / "first-done"
    table.mkdir()
    pd.DataFrame(lloyd_k6[0], columns=COLUMNS).to_parquet(table / "part-0.parquet")
    frame = spark.read.parquet(str(table))
    settings = FitSettings(seed=0, max_iter=ITERATIONS, tol=0.0, init=lloyd_k6[1])

    def slowly(rows):  # the first fit's task holds it for a second
        import time

        time.sleep(1)
        return rows

    def after_the_first(rows):  # the second fit's task ends after the first fit
        import time

        deadline = time.monotonic() + 60
        while not first_done.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return rows

    with ThreadPoolExecutor(2) as pool:  # a barrier task each: both fit at once where nothing stops them
        first = pool.submit(fit_spark, frame, COLUMNS, K, settings, num_workers=1, prepare=slowly)
        _wait(lambda: first.done() or spark.conf.get(MAX_PARTITION_NUM, None) is not None)
        second = pool.submit(fit_spark, frame, COLUMNS, K, settings, num_workers=1, prepare=after_the_first)
        results = [first.result(timeout=300)]
        first_done.touch()
        results.append(second.result(timeout=300))
    for result in results:
        _assert_matches(result.centres, lloyd_k6)
    assert spark.conf.get(MAX_PARTITION_NUM, None) is None


def _holders_in_memory(dask_scheduler) -> int:
    """How many of the dask engine's actors are in place (run on the scheduler)."""
    tasks = dask_scheduler.tasks.items()
    return sum(str(key).startswith("BlockHolder") and task.state == "memory" for key, task in tasks)


def _wait(condition, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "waited too long"
        time.sleep(0.01)


def test_a_worker_lost_during_a_dask_fit_costs_a_rerun_with_the_same_result(caplog):
    """A worker killed while the fit calls its actor: the fit runs again on the blocks Dask
    recomputes, and gives the answer of a fit without loss. (A kill that comes after the fit is
    tried again, on a cluster back to two workers.)"""
    distributed = pytest.importorskip("distributed")
    import dask.array as da

    from segcore.kmeans.engines.dask import fit_dask

    rows = da.random.default_rng(5).standard_normal((400_000, 5), chunks=(50_000, 5))
    settings = FitSettings(seed=1, max_iter=100, tol=0.0)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        ThreadPoolExecutor(1) as background,
    ):
        clean = fit_dask(rows, 4, settings, client=client)
        for _ in range(3):
            _wait(lambda: len(client.scheduler_info()["workers"]) == 2)
            _wait(lambda: not client.run_on_scheduler(_holders_in_memory))  # the last fit's, released
            caplog.clear()
            fitting = background.submit(fit_dask, rows, 4, settings, client=client)
            _wait(lambda: client.run_on_scheduler(_holders_in_memory) or fitting.done())  # noqa: B023
            victim, pid = next(iter(client.run(os.getpid).items()))
            os.kill(pid, signal.SIGKILL)
            lost = fitting.result(timeout=300)
            if "a worker was lost during the fit" in caplog.text:
                break
            _wait(lambda: victim not in client.scheduler_info()["workers"])  # noqa: B023
        else:
            pytest.fail("no kill came while the fit ran")
    np.testing.assert_array_equal(lost.centres, clean.centres)
    np.testing.assert_array_equal(lost.counts, clean.counts)


def test_a_dask_sweep_equals_separate_fits(dask_local_client, lloyd_k6, sweep):
    import dask.array as da

    from segcore.kmeans.engines.dask import fit_dask, sweep_dask

    array = da.from_array(lloyd_k6[0], chunks=(3_000, len(COLUMNS)))
    swept = sweep_dask(array, sweep, client=dask_local_client)
    separate = {k: fit_dask(array, k, settings, client=dask_local_client) for k, settings in sweep.items()}
    _assert_sweep_equals_separate_fits(swept, separate)
