"""The local engine gives the same result as scikit-learn's Lloyd from the same initial centres (the
other engines, against the same reference: integration/kmeans/test_engines.py)."""

import numpy as np
from conftest import LLOYD_K6

from segcore.kmeans import FitSettings, core
from segcore.kmeans.engines.local import LocalBlocks

K, ITERATIONS = LLOYD_K6["k"], LLOYD_K6["iterations"]  # of the lloyd_k6 fixture


def _assert_matches(centres, lloyd_k6):
    points, _, reference = lloyd_k6
    np.testing.assert_allclose(centres, reference.cluster_centers_, rtol=1e-4, atol=1e-9)
    labels, _ = LocalBlocks(points).assign(centres)
    np.testing.assert_array_equal(labels, reference.labels_)


def test_local_matches_scikit_learn(lloyd_k6):
    points, init, _ = lloyd_k6
    result = core.fit(
        LocalBlocks(points, chunk_rows=1000), K, FitSettings(seed=0, max_iter=ITERATIONS, tol=0.0, init=init)
    )
    _assert_matches(result.centres, lloyd_k6)
