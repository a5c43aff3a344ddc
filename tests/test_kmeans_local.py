import numpy as np
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.datasets import make_blobs

from segcore.kmeans import FitSettings, LocalBlocks, fit


@pytest.fixture(scope="module")
def blobs():
    data, truth = make_blobs(20_000, n_features=6, centers=5, cluster_std=1.5, random_state=3)
    return data, truth


def test_matches_scikit_learn_lloyd_from_the_same_centres(blobs):
    data, _ = blobs
    init = data[:5].copy()
    ours = fit(LocalBlocks(data, chunk_rows=3_000), 5, FitSettings(seed=0, max_iter=30, tol=0.0, init=init))
    ref = SklearnKMeans(5, init=init, n_init=1, algorithm="lloyd", tol=0.0, max_iter=30).fit(data)
    np.testing.assert_allclose(ours.centres, ref.cluster_centers_, rtol=1e-4)
    labels, _ = LocalBlocks(data).assign(ours.centres)
    np.testing.assert_array_equal(labels, ref.labels_)
    assert ours.inertia == pytest.approx(ref.inertia_, rel=1e-6)


def test_kmeans_parallel_init_is_seeded_and_good(blobs):
    data, _ = blobs
    settings = FitSettings(seed=9, max_iter=100)
    first, second = fit(LocalBlocks(data), 5, settings), fit(LocalBlocks(data), 5, settings)
    np.testing.assert_array_equal(first.centres, second.centres)
    best = min(SklearnKMeans(5, n_init=1, random_state=s).fit(data).inertia_ for s in range(10))
    assert first.inertia <= best * 1.01


def test_empty_cluster_is_reseeded_to_the_farthest_row():
    data = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.1, 0.0]])
    far_away = np.array([[0.05, 0.0], [10.05, 0.0], [100.0, 100.0]])
    result = fit(LocalBlocks(data), 3, FitSettings(seed=0, max_iter=10, tol=0.0, init=far_away))
    assert (result.counts > 0).all()


def test_k_larger_than_rows_is_refused():
    with pytest.raises(ValueError, match="larger than the number of rows"):
        fit(LocalBlocks(np.zeros((3, 2))), 4, FitSettings(seed=0, max_iter=5, tol=0.0))
