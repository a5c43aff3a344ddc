"""The per-block arithmetic against brute force: nearest centres, the sums of a Lloyd step, and the
nearest-centre answers a block keeps between the rounds of k-means||."""

import numpy as np
import pytest

from segcore.kmeans import kernels
from segcore.kmeans.engines.local import LocalBlocks


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    rng = np.random.default_rng(5)
    # Integer-valued rows with repeats: ties and duplicates are common, unlike the generator's data.
    return np.vstack([rng.integers(-4, 5, size=(3000, 3)), rng.normal(50, 3, size=(1000, 3))]).astype(float)


def _brute_force(rows: np.ndarray, centres: np.ndarray):
    squared = ((rows[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return squared.argmin(axis=1), squared.min(axis=1)


def test_nearest_matches_brute_force(rows):
    centres = rows[[0, 7, 3100, 3200, 11]] + 0.25
    labels, squared = kernels.nearest(rows, centres)
    expected_labels, expected = _brute_force(rows, centres)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_allclose(squared, expected, rtol=1e-12)


def test_block_partials_sum_count_and_inertia_by_nearest_centre(rows):
    centres = rows[[1, 2, 3500]] * 1.1
    labels, squared = _brute_force(rows, centres)
    partials = kernels.block_partials(rows, centres)
    np.testing.assert_array_equal(partials.counts, np.bincount(labels, minlength=3))
    for j in range(3):
        np.testing.assert_allclose(partials.sums[j], rows[labels == j].sum(axis=0), rtol=1e-12)
    assert partials.inertia == pytest.approx(squared.sum(), rel=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_growing_candidates_give_what_a_fresh_block_measures(rows, ties):
    """k-means|| asks about candidates that grow round by round, sorted (the block then measures
    only the new ones); the answers must equal those of a block that never saw the earlier rounds:
    inertia and sampled rows always, counts too where no row is (within rounding) equidistant from
    two candidates, which could count for either."""
    rng = np.random.default_rng(1)
    data = rows if ties else rng.normal(size=(4000, 3)) * [1, 5, 25]
    kept = LocalBlocks(data, chunk_rows=512)
    candidates = data[[0]]
    for _ in range(4):
        candidates = np.unique(np.vstack([candidates, data[rng.choice(len(data), 6)]]), axis=0)
        fresh = LocalBlocks(data, chunk_rows=512)
        ours, theirs = kept.partials(candidates), fresh.partials(candidates)
        assert ours.inertia == pytest.approx(theirs.inertia, rel=1e-12)
        assert ours.counts.sum() == len(data)
        if not ties:
            np.testing.assert_array_equal(ours.counts, theirs.counts)
            np.testing.assert_allclose(ours.sums, theirs.sums, rtol=1e-12)
        seed = np.random.SeedSequence(3)
        sampled = kept.sample_by_cost(candidates, 2.0, ours.inertia, seed)
        np.testing.assert_array_equal(sampled, fresh.sample_by_cost(candidates, 2.0, ours.inertia, seed))
    without_sums = kept.partials(candidates, sums=False)
    assert np.isnan(without_sums.sums).all() and without_sums.counts.sum() == len(data)
