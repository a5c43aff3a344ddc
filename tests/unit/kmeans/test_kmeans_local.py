import numpy as np
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning

from segcore.kmeans import FitSettings, LocalBlocks, fit


@pytest.fixture(scope="module")
def labelled_blobs_k5():
    """20,000 points in 6 dimensions around 5 centres (std 1.5) and their true labels."""
    data, truth = make_blobs(20_000, n_features=6, centers=5, cluster_std=1.5, random_state=3)
    return data, truth


def test_matches_scikit_learn_lloyd_from_the_same_centres(labelled_blobs_k5):
    data, _ = labelled_blobs_k5
    init = data[:5].copy()
    ours = fit(LocalBlocks(data, chunk_rows=3_000), 5, FitSettings(seed=0, max_iter=30, tol=0.0, init=init))
    ref = SklearnKMeans(5, init=init, n_init=1, algorithm="lloyd", tol=0.0, max_iter=30).fit(data)
    np.testing.assert_allclose(ours.centres, ref.cluster_centers_, rtol=1e-4)
    labels, _ = LocalBlocks(data).assign(ours.centres)
    np.testing.assert_array_equal(labels, ref.labels_)
    assert ours.inertia == pytest.approx(ref.inertia_, rel=1e-6)


def test_kmeans_parallel_init_is_seeded_and_good(labelled_blobs_k5):
    data, _ = labelled_blobs_k5
    settings = FitSettings(seed=9, max_iter=100)
    first, second = fit(LocalBlocks(data), 5, settings), fit(LocalBlocks(data), 5, settings)
    np.testing.assert_array_equal(first.centres, second.centres)
    best = min(SklearnKMeans(5, n_init=1, random_state=s).fit(data).inertia_ for s in range(10))
    assert first.inertia <= best * 1.01


def test_an_empty_cluster_takes_the_farthest_row_which_leaves_its_old_cluster():
    data = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.1, 0.0], [10.5, 0.0]])
    init = np.array([[0.05, 0.0], [10.1, 0.0], [100.0, 100.0]])  # nothing is nearest the third
    ours = fit(LocalBlocks(data), 3, FitSettings(max_iter=1, tol=0.0, init=init))
    # [10.5, 0] is the row farthest from its centre: it becomes the third centre and no longer
    # counts in the second cluster, whose centre is the mean of the two rows left.
    np.testing.assert_allclose(ours.centres, [[0.05, 0.0], [10.05, 0.0], [10.5, 0.0]], rtol=1e-12)
    np.testing.assert_array_equal(ours.counts, [2, 2, 1])
    ref = SklearnKMeans(3, init=init, n_init=1, algorithm="lloyd", tol=0.0, max_iter=1).fit(data)
    np.testing.assert_allclose(ours.centres, ref.cluster_centers_, rtol=1e-12)


def test_several_empty_clusters_are_relocated_as_scikit_learn_does(labelled_blobs_k5):
    data, _ = labelled_blobs_k5
    init = np.vstack([data[:3], [[1e3, 1e3, 1e3, 1e3, 1e3, 1e3], [-1e3, -1e3, -1e3, -1e3, -1e3, -1e3]]])
    ours = fit(LocalBlocks(data, chunk_rows=3_000), 5, FitSettings(max_iter=1, tol=0.0, init=init))
    ref = SklearnKMeans(5, init=init, n_init=1, algorithm="lloyd", tol=0.0, max_iter=1).fit(data)
    np.testing.assert_allclose(ours.centres, ref.cluster_centers_, rtol=1e-9)
    np.testing.assert_array_equal(ours.counts, np.bincount(ref.labels_, minlength=5))
    assert ours.inertia == pytest.approx(ref.inertia_, rel=1e-9)


@pytest.mark.parametrize(
    "data", [np.full((50, 2), 3.0), np.repeat([[0.0, 0.0], [1.0, 1.0]], 10, axis=0)], ids=["one", "two"]
)
def test_fewer_distinct_rows_than_k_warns_and_fits_as_scikit_learn(data):
    message = r"Number of distinct clusters \(\d\) found smaller than n_clusters \(3\)"
    with pytest.warns(ConvergenceWarning, match=message):
        ours = fit(LocalBlocks(data), 3, FitSettings(seed=0))
    with pytest.warns(ConvergenceWarning, match=message):
        ref = SklearnKMeans(3, n_init=1, random_state=0).fit(data)
    np.testing.assert_array_equal(np.unique(ours.centres, axis=0), np.unique(ref.cluster_centers_, axis=0))
    assert sorted(ours.counts) == sorted(np.bincount(ref.labels_, minlength=3))
    assert ours.inertia == ref.inertia_ == 0.0
    assert ours.converged


def test_the_same_seed_gives_the_same_centres_whatever_the_chunks_and_row_order(labelled_blobs_k5):
    data, _ = labelled_blobs_k5
    settings = FitSettings(seed=4, max_iter=100)
    reference = fit(LocalBlocks(data), 5, settings)
    shuffled = data[np.random.default_rng(0).permutation(len(data))]
    for rows, chunk_rows in ((data, 1_000), (data, 777), (shuffled, 8_192), (shuffled, 3_001)):
        result = fit(LocalBlocks(rows, chunk_rows=chunk_rows), 5, settings)
        np.testing.assert_allclose(result.centres, reference.centres, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(result.counts, reference.counts)


def test_k_larger_than_rows_is_refused():
    with pytest.raises(ValueError, match="larger than the number of rows"):
        fit(LocalBlocks(np.zeros((3, 2))), 4, FitSettings(seed=0, max_iter=5, tol=0.0))
