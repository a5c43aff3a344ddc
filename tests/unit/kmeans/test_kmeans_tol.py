"""One meaning of ``tol`` for every engine (scikit-learn's: the squared centre shift summed over
the centres, at most tol × the mean per-feature variance), mapped for cuML and MLlib."""

import numpy as np
import pytest

from segcore.kmeans.engines.cuml import cuml_tol
from segcore.kmeans.engines.mllib import mllib_epsilon

TOL, MEAN_VARIANCE = 1e-4, 2.5
THRESHOLD = TOL * MEAN_VARIANCE  # the core converges when shift <= 2.5e-4


def test_cumls_strict_absolute_test_with_the_mapped_tol_is_the_cores():
    mapped = cuml_tol(TOL, MEAN_VARIANCE)
    assert mapped == pytest.approx(2.5e-4, rel=1e-15) and mapped > THRESHOLD
    shifts = [0.0, 1e-4, np.nextafter(THRESHOLD, 0), THRESHOLD, np.nextafter(THRESHOLD, 1), 2.6e-4, 1.0]
    for shift in shifts:
        assert (shift < mapped) == (shift <= THRESHOLD), shift  # cuML's test, the core's test


def test_tol_zero_stops_cuml_only_when_no_centre_moves():
    mapped = cuml_tol(0.0, MEAN_VARIANCE)
    assert 0.0 < mapped < 1e-300  # cuML's own tol=0 (shift < 0) would never stop
    smallest_float32_shift = float(np.nextafter(np.float32(0), np.float32(1)))
    assert not smallest_float32_shift < mapped  # a float32 shift that is not 0 keeps it going


def test_mllib_epsilon_per_centre_is_never_looser_than_the_cores_sum():
    k = 4
    epsilon = mllib_epsilon(TOL, 4.0, k)
    assert epsilon == pytest.approx(0.01)  # sqrt(1e-4 · 4 / 4)
    threshold = TOL * 4.0
    rng = np.random.default_rng(0)
    for _ in range(1_000):
        # Any shifts MLlib accepts (every centre moved at most epsilon) ...
        moves = rng.normal(size=(k, 3))
        moves *= epsilon * rng.uniform(0, 1, (k, 1)) / np.linalg.norm(moves, axis=1, keepdims=True)
        assert (np.linalg.norm(moves, axis=1) <= epsilon * (1 + 1e-12)).all()
        # ... the core accepts too.
        assert (moves**2).sum() <= threshold * (1 + 1e-12)
    # The worst case is exact: every centre moving epsilon sums to the core's threshold.
    assert k * epsilon**2 == pytest.approx(threshold)
    # Stricter, not equal: one centre carrying the whole allowed shift stops the core, not MLlib.
    assert np.sqrt(threshold) > epsilon


def test_tol_zero_gives_mllib_epsilon_zero():
    assert mllib_epsilon(0.0, 7.0, 5) == 0.0
