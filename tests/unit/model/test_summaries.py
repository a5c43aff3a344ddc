"""The quantile summaries behind train's medians and naming percentiles: exact while a column fits,
within their stated rank error when cut and merged, and the same for the same rows in any order."""

from __future__ import annotations

import numpy as np
import pytest

from segcore.model.summaries import POINTS, Summary

SHARES = np.linspace(0.01, 0.99, 99)


def _rank_error(column: np.ndarray, value: float, share: float) -> float:
    """How far ``share`` lies outside the range of ranks (as shares) that ``value`` holds in ``column``."""
    ordered = np.sort(column)
    low = np.searchsorted(ordered, value, side="left") / len(ordered)
    high = np.searchsorted(ordered, value, side="right") / len(ordered)
    return 0.0 if low <= share <= high else min(abs(low - share), abs(high - share))


def _skewed(rng: np.random.Generator, n: int) -> np.ndarray:
    """Spend-like values with many ties: zeros, whole amounts and a long tail."""
    column = np.round(rng.lognormal(3, 1.5, n))
    column[rng.random(n) < 0.2] = 0.0
    return column


def test_a_column_that_fits_gives_its_exact_quantiles_without_nans():
    rng = np.random.default_rng(0)
    column = _skewed(rng, POINTS)
    with_gaps = np.concatenate([column, [np.nan] * 7])
    summary = Summary.of(with_gaps)
    assert summary.rows == POINTS
    np.testing.assert_array_equal(
        summary.quantiles(SHARES), np.quantile(column, SHARES, method="inverted_cdf")
    )


def test_cut_and_merged_chunks_stay_within_the_stated_rank_error():
    """20 chunks of 25,000 rows, each cut to POINTS runs and the merge cut again: every percentile
    within 2 / POINTS of the rows (plus one row per chunk) of the exact rank, and a value of the column."""
    rng = np.random.default_rng(1)
    chunks = [_skewed(rng, 25_000) for _ in range(20)]
    merged = Summary.merged([Summary.of(chunk) for chunk in chunks])
    column = np.concatenate(chunks)
    assert merged.rows == len(column) and len(merged.values) == POINTS
    bound = 2 / POINTS + len(chunks) / len(column)
    for share, value in zip(SHARES, merged.quantiles(SHARES), strict=True):
        assert value in set(column), value
        assert _rank_error(column, value, share) <= bound, (share, value)


def test_the_same_rows_give_the_same_summary_in_any_order():
    rng = np.random.default_rng(2)
    chunks = [_skewed(rng, n) for n in (9_000, 3_000, 700)]
    forward = Summary.merged([Summary.of(chunk) for chunk in chunks])
    shuffled = [rng.permutation(chunk) for chunk in reversed(chunks)]
    backward = Summary.merged([Summary.of(chunk) for chunk in shuffled])
    np.testing.assert_array_equal(forward.values, backward.values)
    np.testing.assert_array_equal(forward.weights, backward.weights)


def test_an_empty_summary_has_no_quantile():
    empty = Summary.of(np.array([np.nan, np.nan]))
    assert empty.rows == 0
    assert np.isnan(empty.quantiles([0.5])).all()
    assert Summary.merged([]).rows == 0
    assert Summary.merged([empty, Summary.of(np.array([3.0]))]).quantiles([0.5]) == pytest.approx([3.0])
