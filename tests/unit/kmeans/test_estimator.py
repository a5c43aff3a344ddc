"""segcore.kmeans.KMeans as a scikit-learn estimator, on the local engine (the spark and dask
engines: integration/kmeans/test_estimator_engines.py)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from segcore.kmeans.estimator import KMeans


def test_passes_scikit_learn_estimator_checks():
    failures = [r for r in check_estimator(KMeans(), on_fail=None) if r["status"] == "failed"]
    assert failures == []


def test_sits_in_a_pipeline_and_accepts_pandas(lloyd_k4):
    points, _, _ = lloyd_k4
    frame = pd.DataFrame(points, columns=list("abcd"))
    pipeline = make_pipeline(StandardScaler(), KMeans(4, random_state=0)).fit(frame)
    assert set(pipeline.predict(frame)) == {0, 1, 2, 3}
    assert pipeline[-1].get_params()["n_clusters"] == 4


def test_local_fit_matches_scikit_learn(lloyd_k4):
    points, init, reference = lloyd_k4
    model = KMeans(4, init=init, tol=0.0, max_iter=20).fit(points)
    np.testing.assert_allclose(model.cluster_centers_, reference.cluster_centers_, rtol=1e-6)
    np.testing.assert_array_equal(model.labels_, reference.labels_)
    assert model.score(points) == pytest.approx(-reference.inertia_)
    np.testing.assert_allclose(model.transform(points), reference.transform(points), rtol=1e-6, atol=1e-9)


def test_device_gpu_needs_cupy_and_a_gpu_and_says_so(lloyd_k4):
    from segcore.kmeans.arrays import DeviceUnavailable

    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(DeviceUnavailable, match="set kmeans.device=cpu"):
            KMeans(4, device="gpu").fit(lloyd_k4[0])
    else:
        pytest.skip("CuPy is installed here: tests/cluster/kmeans/test_gpu.py covers the GPU")
    with pytest.raises(ValueError, match="device='tpu' is not one of"):
        KMeans(4, device="tpu").fit(lloyd_k4[0])
