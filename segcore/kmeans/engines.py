"""Training's entry to the clustering core: fit the configured engine on the prepared features.

Each engine reads the feature table on its own side: ``local`` and ``cuml`` bring the selected
columns into one process, ``spark`` and ``spark-mllib`` keep them in the Spark DataFrame, ``dask``
reads the same Parquet into a Dask array on its cluster.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
from pyspark.sql import DataFrame

from segcore.config import DaskEngineConfig, KMeansConfig
from segcore.errors import EnvironmentProblem, TrainingError
from segcore.kmeans import core
from segcore.kmeans.local import LocalBlocks
from segcore.prepare import Preparation

CUML_INSTALL = "pip install 'segcore[gpu]' (cuML, on a machine with an NVIDIA GPU and CUDA 12)"


def fit_settings(settings: KMeansConfig, init: np.ndarray | None = None) -> core.FitSettings:
    return core.FitSettings(
        seed=settings.seed,
        max_iter=settings.max_iter,
        tol=settings.tol,
        init=init,
        oversampling=settings.oversampling,
        init_rounds=settings.init_rounds,
    )


def fit_features(
    settings: KMeansConfig,
    k: int,
    frame: DataFrame,
    path: str,
    preparation: Preparation,
    init: np.ndarray | None = None,
) -> core.KMeansResult:
    """Fit ``k`` segments on the prepared ``preparation.features`` of the feature table
    (``frame`` is that table in Spark, ``path`` its Parquet location)."""
    features = preparation.features
    if settings.engine == "spark":
        from segcore.kmeans.spark_engine import SlotsError, fit_spark

        try:
            return fit_spark(
                frame,
                features,
                k,
                fit_settings(settings, init),
                dtype=settings.dtype,
                num_workers=settings.spark.num_workers,
                timeout=settings.spark.timeout_s,
                prepare=preparation.transform_array,
            )
        except SlotsError as exc:
            raise TrainingError(str(exc)) from None
    if settings.engine == "dask":
        return _fit_dask(settings, k, path, preparation, init)
    if settings.engine == "spark-mllib":
        return fit_mllib(frame, features, k, settings, init, preparation)
    points = preparation.transform(frame.select(*features).toPandas())
    if settings.engine == "cuml":
        return fit_cuml(points, k, settings, init)
    blocks = LocalBlocks(points, dtype=settings.dtype)
    return core.fit(blocks, k, fit_settings(settings, init), engine="local")


@contextmanager
def dask_client(settings: DaskEngineConfig):
    """A client of the configured scheduler with at least one worker, or of a local cluster started
    for the job. Both waits (scheduler, first worker) last ``distributed.comm.timeouts.connect``."""
    import dask
    from distributed import Client, LocalCluster

    if not settings.scheduler:
        workers = dict(
            n_workers=settings.local_workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        )
        with LocalCluster(**workers) as cluster, Client(cluster) as client:
            yield client
        return
    address = settings.scheduler
    start = f"start one with `dask scheduler` and workers with `dask worker {address}`"
    try:
        client = Client(address)
    except (OSError, ValueError) as exc:
        raise EnvironmentProblem(
            f"cannot reach the Dask scheduler {address} (kmeans.dask.scheduler): {exc}; {start}, "
            "or set kmeans.dask.scheduler=null to start a local cluster for the job"
        ) from None
    with client:
        wait = dask.config.get("distributed.comm.timeouts.connect")
        try:
            client.wait_for_workers(1, timeout=wait)
        except TimeoutError:
            raise EnvironmentProblem(
                f"the Dask scheduler {address} (kmeans.dask.scheduler) has no workers after {wait}: "
                f"start them with `dask worker {address}`"
            ) from None
        yield client


def _check_workers_read(client, path: str, columns: list[str]) -> None:
    from segcore.kmeans.dask_engine import workers_failing_to_read

    failing = workers_failing_to_read(client, path, columns)
    if failing:
        errors = "; ".join(f"{worker}: {error}" for worker, error in failing.items())
        raise EnvironmentProblem(
            f"Dask workers of the scheduler {client.scheduler.address} cannot read the feature table "
            f"{path} ({errors}). Every worker must read the path the driver reads: put the feature "
            "table on a file system mounted at the same path on every worker, or set features.output "
            "to an object-store URI (s3://, gs://, abfs://) the workers can read"
        )


def _fit_dask(settings: KMeansConfig, k: int, path: str, preparation: Preparation, init) -> core.KMeansResult:
    try:
        import dask.dataframe as dd
    except ImportError:
        raise TrainingError("kmeans.engine=dask needs Dask: pip install 'segcore[dask]'") from None
    from segcore.kmeans.dask_engine import fit_dask, partition_rows

    with dask_client(settings.dask) as client:
        _check_workers_read(client, path, preparation.features)
        table = dd.read_parquet(path, columns=preparation.features)
        rows = partition_rows(table, preparation.transform_array, client)
        return fit_dask(rows, k, fit_settings(settings, init), client=client, dtype=settings.dtype)


def fit_cuml(
    points: np.ndarray, k: int, settings: KMeansConfig, init: np.ndarray | None
) -> core.KMeansResult:
    """cuML's KMeans on one GPU (imported only here)."""
    try:
        from cuml.cluster import KMeans as CumlKMeans
    except ImportError:
        raise TrainingError(
            f"kmeans.engine=cuml needs cuML, which is not installed: {CUML_INSTALL}"
        ) from None
    started = time.perf_counter()
    model = CumlKMeans(
        n_clusters=k,
        init=init if init is not None else "scalable-k-means++",
        n_init=1,
        max_iter=settings.max_iter,
        tol=settings.tol,
        random_state=settings.seed,
        oversampling_factor=settings.oversampling,
    ).fit(points.astype(settings.dtype))
    centres = np.asarray(model.cluster_centers_, dtype=np.float64)
    final = LocalBlocks(points).partials(centres)
    return core.KMeansResult(
        centres=centres,
        inertia=final.inertia,
        n_iter=int(model.n_iter_),
        counts=final.counts,
        converged=int(model.n_iter_) < settings.max_iter,
        fit_seconds=time.perf_counter() - started,
        engine="cuml",
    )


def _java_centres(context, centres: np.ndarray):
    """Centres as a JVM ``org.apache.spark.mllib.linalg.Vector[]``."""
    jvm, gateway = context._jvm, context._gateway
    vectors = gateway.new_array(jvm.org.apache.spark.mllib.linalg.Vector, len(centres))
    for i, centre in enumerate(centres):
        values = gateway.new_array(jvm.double, len(centre))
        for j, value in enumerate(centre):
            values[j] = float(value)
        vectors[i] = jvm.org.apache.spark.mllib.linalg.Vectors.dense(values)
    return vectors


def fit_mllib(
    frame: DataFrame,
    features: list[str],
    k: int,
    settings: KMeansConfig,
    init: np.ndarray | None,
    preparation: Preparation | None = None,
) -> core.KMeansResult:
    """Spark MLlib's KMeans, the reference for parity and speed. Its RDD API is the one that
    accepts initial centres: the prepared rows are converted to JVM vectors and cached once, then
    MLlib runs in the JVM alone (``fit_seconds`` excludes the conversion)."""
    from pyspark.mllib.common import _to_java_object_rdd
    from pyspark.mllib.linalg import _convert_to_vector

    from segcore.kmeans.spark_engine import assign_spark

    context = frame.sparkSession.sparkContext
    jvm = context._jvm
    prepare = preparation.transform_array if preparation else None

    def rows(partition):
        block = np.array([list(r) for r in partition], dtype=np.float64).reshape(-1, len(features))
        yield from (prepare(block) if prepare else block)

    vectors = _to_java_object_rdd(
        frame.select(*features).rdd.mapPartitions(rows).map(_convert_to_vector)
    ).rdd()
    vectors.persist(jvm.org.apache.spark.storage.StorageLevel.MEMORY_ONLY())
    vectors.count()
    kmeans = jvm.org.apache.spark.mllib.clustering.KMeans().setK(k).setMaxIterations(settings.max_iter)
    kmeans.setEpsilon(settings.tol).setSeed(settings.seed).setInitializationSteps(settings.init_rounds)
    if init is not None:
        kmeans.setInitialModel(
            jvm.org.apache.spark.mllib.clustering.KMeansModel(_java_centres(context, init))
        )
    started = time.perf_counter()
    model = kmeans.run(vectors)
    fit_seconds = time.perf_counter() - started
    vectors.unpersist(False)
    centres = np.array([list(v.toArray()) for v in model.clusterCenters()], dtype=np.float64)
    sizes = assign_spark(frame, features, centres, prepare).groupBy("label").count().toPandas()
    return core.KMeansResult(
        centres=centres,
        inertia=float(model.trainingCost()),
        n_iter=int(model.numIter()),
        counts=sizes.set_index("label")["count"].reindex(range(k), fill_value=0).to_numpy(),
        converged=int(model.numIter()) < settings.max_iter,
        fit_seconds=fit_seconds,
        engine="spark-mllib",
    )
