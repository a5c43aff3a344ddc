"""float32 far from the origin on the spark engine: the same quality and inertia as scikit-learn
(the local engine: unit/kmeans/test_kmeans_numerics.py)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.metrics import adjusted_rand_score

from segcore.kmeans import FitSettings, LocalBlocks
from segcore.kmeans.engines.spark import fit_spark

K = 6  # the centres of labelled_blobs_k6


def _offset(labelled_blobs_k6, offset: float, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    points, truth = labelled_blobs_k6
    return (points + offset).astype(dtype), truth


def test_spark_float32_far_from_the_origin_matches_scikit_learn(spark, labelled_blobs_k6):
    points, truth = _offset(labelled_blobs_k6, 1e6, "float64")
    frame = spark.createDataFrame(pd.DataFrame(points, columns=[f"x{i}" for i in range(5)])).repartition(2)
    ours = fit_spark(frame, list(frame.columns), K, FitSettings(seed=0), dtype="float32")
    ref = SklearnKMeans(K, n_init=1, random_state=0).fit(points.astype(np.float32))
    labels = LocalBlocks(points).assign(ours.centres)[0]
    assert adjusted_rand_score(truth, labels) >= 0.99 * adjusted_rand_score(truth, ref.labels_)
    assert ours.inertia == pytest.approx(ref.inertia_, rel=1e-4)
