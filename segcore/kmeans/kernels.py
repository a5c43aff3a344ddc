"""The per-block arithmetic every engine maps over its blocks of rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Partials:
    """What one block contributes to a Lloyd step; partials of several blocks add up."""

    sums: np.ndarray  # (k, d) sum of the rows nearest each centre
    counts: np.ndarray  # (k,) number of rows nearest each centre
    inertia: float  # sum of squared distances to the nearest centre

    def __add__(self, other: Partials) -> Partials:
        return Partials(self.sums + other.sums, self.counts + other.counts, self.inertia + other.inertia)

    @classmethod
    def zeros(cls, k: int, d: int) -> Partials:
        return cls(np.zeros((k, d)), np.zeros(k, dtype=np.int64), 0.0)


@dataclass
class Moments:
    """Row count, column means and sums of squared deviations; blocks combine exactly (Chan et al.)."""

    n: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def of(cls, block: np.ndarray) -> Moments:
        if len(block) == 0:
            return cls(0, np.zeros(block.shape[1]), np.zeros(block.shape[1]))
        mean = block.mean(axis=0, dtype=np.float64)
        return cls(len(block), mean, ((block - mean) ** 2).sum(axis=0, dtype=np.float64))

    def __add__(self, other: Moments) -> Moments:
        n = self.n + other.n
        if n == 0:
            return self
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        return Moments(n, mean, self.m2 + other.m2 + delta**2 * self.n * other.n / n)

    def mean_variance(self) -> float:
        return float(np.mean(self.m2 / max(self.n, 1)))


def _closest(block: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of each row and its ||c||² − 2x·c (the squared distance less ||x||²).
    The (k, n) layout makes the minimum over k run along contiguous rows: much faster than per row."""
    distances = (-2.0 * centres) @ block.T
    distances += np.einsum("ij,ij->i", centres, centres)[:, None]
    labels = distances.argmin(axis=0)
    return labels, np.take_along_axis(distances, labels[None, :], axis=0)[0]


def nearest(block: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and squared distance to the nearest centre, in the GEMM form
    ||x||² − 2x·c + ||c||² (clamped at 0 against rounding)."""
    labels, best = _closest(block, centres)
    best += np.einsum("ij,ij->i", block, block)
    np.maximum(best, 0, out=best)
    return labels, best


def block_partials(block: np.ndarray, centres: np.ndarray, squared_norms: float | None = None) -> Partials:
    """Per-centre sums and counts and the inertia of one block. ``squared_norms`` (the block's
    sum of ||x||², constant across iterations) saves a pass over the rows when given."""
    k = len(centres)
    labels, shifted = _closest(block, centres)
    if squared_norms is None:
        squared_norms = float(np.einsum("ij,ij->", block, block, dtype=np.float64))
    membership = (labels == np.arange(k)[:, None]).astype(block.dtype)
    sums = (membership @ block).astype(np.float64)
    counts = np.bincount(labels, minlength=k).astype(np.int64)
    return Partials(sums, counts, max(float(shifted.sum(dtype=np.float64)) + squared_norms, 0.0))


def sample_by_cost(
    block: np.ndarray,
    centres: np.ndarray,
    oversampling: float,
    total_cost: float,
    seed: np.random.SeedSequence,
) -> np.ndarray:
    """The k-means|| sampling step: keep each row with probability min(1, l·d²(x, C)/φ)."""
    _, distances = nearest(block, centres)
    rng = np.random.default_rng(seed)
    keep = rng.random(len(block)) < oversampling * distances / total_cost
    return block[keep]


def farthest_rows(block: np.ndarray, centres: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` rows farthest from their nearest centre, with their squared distances."""
    _, distances = nearest(block, centres)
    return top_farthest(block, distances, m)


def top_farthest(rows: np.ndarray, distances: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` largest distances and their rows, largest first; ties keep the earlier row."""
    order = np.lexsort((np.arange(len(distances)), -distances))[:m]
    return rows[order], distances[order]
