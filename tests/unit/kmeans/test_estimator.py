"""segcore.kmeans.KMeans as a scikit-learn estimator, on every engine."""

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.datasets import make_blobs
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from segcore.kmeans.estimator import KMeans


@pytest.fixture(scope="module")
def blobs():
    points, _ = make_blobs(3_000, n_features=4, centers=4, random_state=4)
    init = points[:4].copy()
    reference = SklearnKMeans(4, init=init, n_init=1, algorithm="lloyd", tol=0.0, max_iter=20).fit(points)
    return points, init, reference


def test_passes_scikit_learn_estimator_checks():
    failures = [r for r in check_estimator(KMeans(), on_fail=None) if r["status"] == "failed"]
    assert failures == []


def test_sits_in_a_pipeline_and_accepts_pandas(blobs):
    points, _, _ = blobs
    frame = pd.DataFrame(points, columns=list("abcd"))
    pipeline = make_pipeline(StandardScaler(), KMeans(4, random_state=0)).fit(frame)
    assert set(pipeline.predict(frame)) == {0, 1, 2, 3}
    assert pipeline[-1].get_params()["n_clusters"] == 4


def test_local_fit_matches_scikit_learn(blobs):
    points, init, reference = blobs
    model = KMeans(4, init=init, tol=0.0, max_iter=20).fit(points)
    np.testing.assert_allclose(model.cluster_centers_, reference.cluster_centers_, rtol=1e-6)
    np.testing.assert_array_equal(model.labels_, reference.labels_)
    assert model.score(points) == pytest.approx(-reference.inertia_)
    np.testing.assert_allclose(model.transform(points), reference.transform(points), rtol=1e-6, atol=1e-9)


def test_spark_fit_on_a_vector_column(spark, blobs):
    from pyspark.ml.feature import VectorAssembler

    points, init, reference = blobs
    frame = VectorAssembler(inputCols=list("abcd"), outputCol="features").transform(
        spark.createDataFrame(pd.DataFrame(points, columns=list("abcd")))
    )
    model = KMeans(4, engine="spark", init=init, tol=0.0, max_iter=20, features_col="features").fit(frame)
    np.testing.assert_allclose(model.cluster_centers_, reference.cluster_centers_, rtol=1e-6)
    labelled = model.predict(frame.limit(50)).select("label").toPandas()
    np.testing.assert_array_equal(labelled.label.to_numpy(), reference.predict(points[:50]))


def test_spark_fit_on_columns_gives_labels_on_the_cluster(spark, blobs):
    points, init, reference = blobs
    frame = spark.createDataFrame(pd.DataFrame(points, columns=list("abcd")))
    model = KMeans(4, engine="spark", init=init, tol=0.0, max_iter=20, input_cols=list("abcd")).fit(frame)
    assert model.labels_.select("label").distinct().count() == 4


def test_dask_fit_on_a_dask_array(blobs):
    distributed = pytest.importorskip("distributed")
    import dask.array as da

    points, init, reference = blobs
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        model = KMeans(4, engine="dask", init=init, tol=0.0, max_iter=20, client=client)
        model.fit(da.from_array(points, chunks=(700, 4)))
        np.testing.assert_allclose(model.cluster_centers_, reference.cluster_centers_, rtol=1e-6)
        np.testing.assert_array_equal(model.labels_.compute(), reference.labels_)
