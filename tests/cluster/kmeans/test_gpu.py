"""The cuml engine against scikit-learn, on a GPU (marker ``gpu``: ``pytest -m gpu``). Wherever
cuML or a CUDA device is missing these tests are skipped, saying so; wherever both are present
they run."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from segcore.kmeans import FitSettings
from segcore.kmeans.kernels import nearest


def _missing() -> str | None:
    """Why the cuml engine cannot run here, or None."""
    try:
        import cuml  # noqa: F401
        import cupy
    except ImportError as exc:
        return f"{exc.name} is not importable"
    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # cupy's CUDA errors: no driver, no device
        return f"CUDA: {exc}"
    return None if devices else "no CUDA device"


MISSING = _missing()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(MISSING is not None, reason=f"cuML/CUDA not present: {MISSING}"),
]
K = 6


@pytest.fixture(scope="module")
def offset_blobs_k6():
    """40,000 points in 8 dimensions around 6 centres (std 1.5), shifted by 1e3."""
    points, _ = make_blobs(40_000, n_features=8, centers=K, cluster_std=1.5, random_state=5)
    return points + 1e3  # away from the origin, where an uncentred float32 loses precision


def _assert_as_scikit_learn(points, result, reference):
    labels = nearest(points, result.centres)[0]
    assert adjusted_rand_score(reference.labels_, labels) >= 0.99
    assert result.inertia == pytest.approx(reference.inertia_, rel=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuml_from_the_same_centres_matches_scikit_learn(offset_blobs_k6, dtype):
    from segcore.kmeans.engines.cuml import fit_cuml

    init = offset_blobs_k6[np.random.default_rng(3).choice(len(offset_blobs_k6), K, replace=False)]
    reference = SklearnKMeans(K, init=init, n_init=1, tol=1e-4, algorithm="lloyd").fit(offset_blobs_k6)
    result = fit_cuml(offset_blobs_k6, K, FitSettings(init=init, tol=1e-4), dtype)
    assert result.engine == "cuml"
    _assert_as_scikit_learn(offset_blobs_k6, result, reference)


def test_cuml_seeded_sweep_matches_scikit_learn(offset_blobs_k6):
    """Seeded k-means|| for two k in one sweep: at the planted k, scikit-learn's segments and
    inertia; one below, no worse an inertia than scikit-learn's best of 10 k-means++ starts."""
    from segcore.kmeans.engines.cuml import sweep_cuml

    results = sweep_cuml(offset_blobs_k6, {K - 1: FitSettings(seed=7), K: FitSettings(seed=7)}, "float32")
    _assert_as_scikit_learn(
        offset_blobs_k6, results[K], SklearnKMeans(K, n_init=10, random_state=0).fit(offset_blobs_k6)
    )
    fewer = SklearnKMeans(K - 1, n_init=10, random_state=0).fit(offset_blobs_k6)
    assert results[K - 1].inertia <= fewer.inertia_ * (1 + 1e-4)


def test_cuml_with_tol_zero_stops_when_no_centre_moves(offset_blobs_k6):
    from segcore.kmeans.engines.cuml import fit_cuml

    result = fit_cuml(offset_blobs_k6, K, FitSettings(seed=7, tol=0.0, max_iter=300))
    assert result.converged and result.n_iter < 300  # cuML's own tol=0 would run all 300
