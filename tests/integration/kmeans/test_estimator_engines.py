"""segcore.kmeans.KMeans as a scikit-learn estimator on the spark and dask engines: the same
centres and labels as scikit-learn's Lloyd from the same start."""

import numpy as np
import pandas as pd
import pytest

from segcore.kmeans.estimator import KMeans


def test_spark_fit_on_a_vector_column(spark, lloyd_k4):
    from pyspark.ml.feature import VectorAssembler

    points, init, reference = lloyd_k4
    frame = VectorAssembler(inputCols=list("abcd"), outputCol="features").transform(
        spark.createDataFrame(pd.DataFrame(points, columns=list("abcd")))
    )
    model = KMeans(4, engine="spark", init=init, tol=0.0, max_iter=20, features_col="features").fit(frame)
    np.testing.assert_allclose(model.cluster_centers_, reference.cluster_centers_, rtol=1e-6)
    labelled = model.predict(frame.limit(50)).select("label").toPandas()
    np.testing.assert_array_equal(labelled.label.to_numpy(), reference.predict(points[:50]))


def test_spark_fit_on_columns_gives_labels_on_the_cluster(spark, lloyd_k4):
    points, init, reference = lloyd_k4
    frame = spark.createDataFrame(pd.DataFrame(points, columns=list("abcd")))
    model = KMeans(4, engine="spark", init=init, tol=0.0, max_iter=20, input_cols=list("abcd")).fit(frame)
    assert model.labels_.select("label").distinct().count() == 4


def test_dask_fit_on_a_dask_array(lloyd_k4):
    distributed = pytest.importorskip("distributed")
    import dask.array as da

    points, init, reference = lloyd_k4
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
