"""The ``spark-mllib`` engine: Spark MLlib's KMeans, the reference for parity and speed, with the
core's meaning of ``tol``.

MLlib stops when *every* centre moved at most ``epsilon`` (Euclidean distance); the core (as
scikit-learn) stops when the squared shifts *summed* over the k centres are at most ``tol`` times
the mean per-feature variance. :func:`mllib_epsilon` maps one onto the other so that MLlib never
stops earlier than the core would: if each of the k squared shifts is at most
``tol · variance / k``, their sum is at most ``tol · variance``. (MLlib may run longer: one centre
can carry the whole allowed shift under the core's rule, and only its k-th under MLlib's.)
``tol=0`` gives ``epsilon=0``: both stop only when no centre moves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import numpy as np
from pyspark.sql import DataFrame

from segcore.kmeans import core

Prepare = Callable[[np.ndarray], np.ndarray]


def mllib_epsilon(tol: float, mean_variance: float, k: int) -> float:
    """MLlib's ``epsilon`` (a per-centre Euclidean shift) for the core's ``tol``, never looser."""
    return math.sqrt(tol * mean_variance / k)


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


def _mean_variance(jvm, vectors) -> float:
    """Mean per-feature population variance of the cached vectors (one pass)."""
    summary = jvm.org.apache.spark.mllib.stat.Statistics.colStats(vectors)
    rows = summary.count()
    sample = np.array(list(summary.variance().toArray()), dtype=np.float64)
    return float(sample.mean() * (rows - 1) / rows) if rows > 1 else 0.0


def sweep_mllib(
    frame: DataFrame,
    columns: list[str],
    fits: Mapping[int, core.FitSettings],
    prepare: Prepare | None = None,
) -> dict[int, core.KMeansResult]:
    """MLlib's KMeans for every ``k`` of ``fits`` (k → its settings). Its RDD API is the one that
    accepts initial centres: the (prepared) rows are converted to JVM vectors and cached once, then
    MLlib runs in the JVM alone for each k (``fit_seconds`` excludes the conversion)."""
    from pyspark.mllib.common import _to_java_object_rdd
    from pyspark.mllib.linalg import _convert_to_vector

    from segcore.kmeans.engines.spark import assign_spark

    context = frame.sparkSession.sparkContext
    jvm = context._jvm
    width = len(columns)

    def rows(partition):
        block = np.array([list(r) for r in partition], dtype=np.float64).reshape(-1, width)
        yield from (prepare(block) if prepare else block)

    vectors = _to_java_object_rdd(
        frame.select(*columns).rdd.mapPartitions(rows).map(_convert_to_vector)
    ).rdd()
    vectors.persist(jvm.org.apache.spark.storage.StorageLevel.MEMORY_ONLY())
    vectors.count()
    mean_variance = _mean_variance(jvm, vectors) if any(s.tol > 0 for s in fits.values()) else 0.0
    results = {}
    for k, settings in fits.items():
        kmeans = jvm.org.apache.spark.mllib.clustering.KMeans().setK(k).setMaxIterations(settings.max_iter)
        kmeans.setEpsilon(mllib_epsilon(settings.tol, mean_variance, k)).setSeed(settings.seed)
        kmeans.setInitializationSteps(settings.init_rounds)
        if settings.init is not None:
            kmeans.setInitialModel(
                jvm.org.apache.spark.mllib.clustering.KMeansModel(_java_centres(context, settings.init))
            )
        started = time.perf_counter()
        model = kmeans.run(vectors)
        fit_seconds = time.perf_counter() - started
        centres = np.array([list(v.toArray()) for v in model.clusterCenters()], dtype=np.float64)
        sizes = assign_spark(frame, columns, centres, prepare).groupBy("label").count().toPandas()
        results[k] = core.KMeansResult(
            centres=centres,
            inertia=float(model.trainingCost()),
            n_iter=int(model.numIter()),
            counts=sizes.set_index("label")["count"].reindex(range(k), fill_value=0).to_numpy(),
            converged=int(model.numIter()) < settings.max_iter,
            fit_seconds=fit_seconds,
            engine="spark-mllib",
        )
    vectors.unpersist(False)
    return results


def fit_mllib(
    frame: DataFrame, columns: list[str], k: int, settings: core.FitSettings, prepare: Prepare | None = None
) -> core.KMeansResult:
    """MLlib's KMeans for one ``k`` (see :func:`sweep_mllib`)."""
    return sweep_mllib(frame, columns, {k: settings}, prepare)[k]
