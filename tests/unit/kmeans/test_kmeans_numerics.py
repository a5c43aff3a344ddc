"""float32 and float64 far from the origin: the same quality and inertia as scikit-learn.

Without centring, ||x||² − 2x·c + ||c||² cancels catastrophically when ||x|| is large: at an
offset of 1e4, float32 inertia used to clamp to 0 and the clusters were lost (ARI 0.45)."""

import numpy as np
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.metrics import adjusted_rand_score

from segcore.kmeans import LocalBlocks
from segcore.kmeans.estimator import KMeans

K = 6


def _offset(labelled_blobs_k6, offset: float, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    points, truth = labelled_blobs_k6
    return (points + offset).astype(dtype), truth


def _exact_inertia(points: np.ndarray, centres: np.ndarray) -> float:
    """Sum of squared distances to the nearest centre, row by row in float64."""
    difference = points.astype(np.float64)[:, None, :] - centres[None, :, :]
    return float((difference**2).sum(axis=2).min(axis=1).sum())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("offset", [1e4, 1e6])
def test_far_from_the_origin_matches_scikit_learn(labelled_blobs_k6, offset, dtype):
    points, truth = _offset(labelled_blobs_k6, offset, dtype)
    ours = KMeans(K, random_state=0, dtype=dtype).fit(points)
    ref = SklearnKMeans(K, n_init=1, random_state=0).fit(points)
    reference_ari = adjusted_rand_score(truth, ref.labels_)
    assert reference_ari > 0.99
    assert adjusted_rand_score(truth, ours.labels_) >= 0.99 * reference_ari
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-4)
    assert ours.inertia_ == pytest.approx(_exact_inertia(points, ours.cluster_centers_), rel=1e-6)
    assert ours.result_.converged and ours.n_iter_ < 20


def test_float32_inertia_is_exact_where_the_expanded_form_cancels():
    rows = np.array([[1e4, 1e4], [1e4 + 1, 1e4]], dtype=np.float32)
    partials = LocalBlocks(rows).partials(np.array([[1e4 + 0.5, 1e4]]))
    assert partials.inertia == 0.5  # the expanded form gives 0 (or worse) in float32
    np.testing.assert_array_equal(partials.sums, [[2e4 + 1, 2e4]])
