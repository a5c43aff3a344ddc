"""Deterministic, mergeable quantile summaries, for medians and percentiles of many rows.

A summary is at most ``points`` values of the column with integer weights: the column sorted and
cut into ``points`` runs of (nearly) equal weight, each run kept as its middle value and its
weight. A query returns the first kept value whose cumulative weight reaches the asked rank, so
it is always a value of the column, and its rank is off by at most one run's weight: ``n /
points`` rows. Summaries of disjoint parts merge by concatenation, and a merge cut down to
``points`` again adds at most one run of the whole. Unlike Spark's KLL sketches, which compact at
random, the same chunks give the same summary whatever the order of their rows and of the merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Runs per summary: a summary of chunks cut once more in the merge is within 2 / POINTS = 1/1,000
# of the rows (plus one row per chunk) of the exact rank.
POINTS = 2_000


@dataclass(frozen=True)
class Summary:
    """Sorted ``values`` and their integer ``weights`` (rows each stands for)."""

    values: np.ndarray
    weights: np.ndarray

    @classmethod
    def of(cls, column: np.ndarray, points: int = POINTS) -> Summary:
        """The summary of the non-NaN values of ``column``."""
        values = np.sort(column[~np.isnan(column)])
        return cls(values, np.ones(len(values), dtype=np.int64)).cut(points)

    @classmethod
    def merged(cls, parts: Sequence[Summary], points: int = POINTS) -> Summary:
        """One summary of the rows of ``parts``."""
        if not parts:
            return cls(np.empty(0), np.empty(0, dtype=np.int64))
        values = np.concatenate([p.values for p in parts])
        weights = np.concatenate([p.weights for p in parts])
        order = np.argsort(values, kind="stable")
        return cls(values[order], weights[order]).cut(points)

    @property
    def rows(self) -> int:
        return int(self.weights.sum())

    def cut(self, points: int) -> Summary:
        """At most ``points`` runs of (nearly) equal weight, each its middle row's value."""
        if len(self.values) <= points:
            return self
        total = self.rows
        edges = np.arange(points + 1, dtype=np.int64) * total // points
        middles = edges[:-1] + (np.diff(edges) - 1) // 2  # 0-based ranks of the runs' middle rows
        kept = np.searchsorted(np.cumsum(self.weights), middles, side="right")
        return Summary(self.values[kept], np.diff(edges))

    def quantiles(self, shares: Sequence[float]) -> np.ndarray:
        """For each share q, the first value with at least q of the rows at or below it (NaN
        when the summary is empty)."""
        if not len(self.values):
            return np.full(len(shares), np.nan)
        cumulative = np.cumsum(self.weights)
        ranks = np.maximum(np.ceil(np.asarray(shares) * cumulative[-1]), 1)
        return self.values[np.minimum(np.searchsorted(cumulative, ranks), len(self.values) - 1)]
