"""Training's entry to the clustering core: fit the configured engine on the prepared features.

Each engine reads the feature table on its own side: ``local`` and ``cuml`` bring the selected
columns into one process, ``spark`` and ``spark-mllib`` keep them in the Spark DataFrame, ``dask``
reads the same Parquet into a Dask array on its cluster.
"""

from __future__ import annotations

import time

import numpy as np
from pyspark.sql import DataFrame

from segcore.config import KMeansConfig
from segcore.errors import TrainingError
from segcore.kmeans import core
from segcore.kmeans.local import LocalBlocks
from segcore.prepare import Preparation

CUML_INSTALL = "pip install 'segcore[gpu]' (cuML, on a machine with an NVIDIA GPU and CUDA 12)"


def _common(settings: KMeansConfig) -> dict:
    return dict(
        seed=settings.seed,
        max_iter=settings.max_iter,
        tol=settings.tol,
        oversampling=settings.oversampling,
        init_rounds=settings.init_rounds,
    )


def fit_features(
    settings: KMeansConfig,
    frame: DataFrame,
    path: str,
    preparation: Preparation,
    init: np.ndarray | None = None,
) -> core.KMeansResult:
    """Fit ``settings.k`` segments on the prepared ``preparation.features`` of the feature table
    (``frame`` is that table in Spark, ``path`` its Parquet location)."""
    features, k = preparation.features, settings.k
    if settings.engine == "spark":
        from segcore.kmeans.spark_engine import SlotsError, fit_spark

        try:
            return fit_spark(
                frame,
                features,
                k,
                init=init,
                dtype=settings.dtype,
                num_workers=settings.spark.num_workers,
                timeout=settings.spark.timeout_s,
                prepare=preparation.transform_array,
                **_common(settings),
            )
        except SlotsError as exc:
            raise TrainingError(str(exc)) from None
    if settings.engine == "dask":
        return _fit_dask(settings, path, preparation, init)
    if settings.engine == "spark-mllib":
        return fit_mllib(frame, features, k, settings, init, preparation)
    points = preparation.transform(frame.select(*features).toPandas())
    if settings.engine == "cuml":
        return fit_cuml(points, k, settings, init)
    blocks = LocalBlocks(np.ascontiguousarray(points, dtype=settings.dtype))
    return core.fit(blocks, k, init=init, engine="local", **_common(settings))


def _fit_dask(settings: KMeansConfig, path: str, preparation: Preparation, init) -> core.KMeansResult:
    try:
        import dask.dataframe as dd
        from distributed import Client, LocalCluster
    except ImportError:
        raise TrainingError("kmeans.engine=dask needs Dask: pip install 'segcore[dask]'") from None
    from segcore.kmeans.dask_engine import fit_dask

    table = dd.read_parquet(path, columns=preparation.features)
    rows = table.to_dask_array(lengths=True).map_blocks(preparation.transform_array, dtype=np.float64)
    if settings.dask.scheduler:
        with Client(settings.dask.scheduler) as client:
            return fit_dask(
                rows, settings.k, client=client, init=init, dtype=settings.dtype, **_common(settings)
            )
    with (
        LocalCluster(
            n_workers=settings.dask.local_workers,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        return fit_dask(rows, settings.k, client=client, init=init, dtype=settings.dtype, **_common(settings))


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


def fit_mllib(
    frame: DataFrame,
    features: list[str],
    k: int,
    settings: KMeansConfig,
    init: np.ndarray | None,
    preparation: Preparation | None = None,
) -> core.KMeansResult:
    """Spark MLlib's KMeans (RDD API, which accepts initial centres): the reference for parity
    and speed. Rows are prepared in the executors and cached; the driver holds the centres."""
    from pyspark.mllib.clustering import KMeans as MllibKMeans
    from pyspark.mllib.clustering import KMeansModel

    def rows(partition):
        block = np.array([list(r) for r in partition], dtype=np.float64).reshape(-1, len(features))
        yield from (preparation.transform_array(block) if preparation else block)

    vectors = frame.select(*features).rdd.mapPartitions(rows).cache()
    vectors.count()
    started = time.perf_counter()
    model = MllibKMeans.train(
        vectors,
        k,
        maxIterations=settings.max_iter,
        seed=settings.seed,
        epsilon=settings.tol,
        initializationMode="k-means||",
        initialModel=KMeansModel(init) if init is not None else None,
    )
    fit_seconds = time.perf_counter() - started
    sizes = model.predict(vectors).countByValue()
    inertia = float(model.computeCost(vectors))
    vectors.unpersist()
    # The RDD API does not report its iteration count: max_iter is the upper bound.
    return core.KMeansResult(
        centres=np.asarray(model.clusterCenters, dtype=np.float64),
        inertia=inertia,
        n_iter=settings.max_iter,
        counts=np.array([sizes.get(j, 0) for j in range(k)]),
        converged=False,
        fit_seconds=fit_seconds,
        engine="spark-mllib",
    )
