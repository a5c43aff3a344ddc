"""One k-means algorithm for every engine: seeded k-means|| initialisation and Lloyd iterations.

An engine supplies :class:`BlockOps`, the few map/reduce operations over its blocks of rows;
the driver-side logic here holds only O(k·d) centres and aggregates.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from segcore.kmeans.kernels import Farthest, Partials

RECLUSTER_RESTARTS = 10


class KMeansError(RuntimeError):
    """An error of the clustering core that is not a bad argument (those are ``ValueError``)."""


class EngineUnavailable(KMeansError):
    """An engine's library (cuML, Dask) is not installed."""


class BlockOps(Protocol):
    """What an engine computes over all of its rows (each call is one map/reduce round). Random
    draws are keyed by each row's value and the seed, never by where the row is stored."""

    n_rows: int
    n_features: int

    def partials(self, centres: np.ndarray, inertia: bool = True, sums: bool = True) -> Partials:
        """Counts, (when ``sums``) sums and (when ``inertia``) the inertia of the rows nearest each
        centre."""
        ...

    def sample_by_cost(
        self, centres: np.ndarray, oversampling: float, total_cost: float, seed: np.random.SeedSequence
    ) -> np.ndarray: ...

    def draw_row(self, seed: np.random.SeedSequence) -> tuple[int, np.ndarray | None]: ...

    def farthest(self, centres: np.ndarray, m: int) -> Farthest: ...

    def mean_variance(self) -> float: ...


@dataclass
class KMeansResult:
    """What every engine returns."""

    centres: np.ndarray
    inertia: float
    n_iter: int
    counts: np.ndarray
    converged: bool
    init_seconds: float = 0.0
    fit_seconds: float = 0.0
    engine: str = "local"
    iteration_seconds: list[float] = field(default_factory=list)


def _weighted_kmeanspp(
    points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Greedy k-means++ on a small weighted candidate set (best of 2 + log k trials per step, as
    scikit-learn does)."""
    trials = 2 + int(np.log(k))
    chosen = [int(rng.choice(len(points), p=weights / weights.sum()))]
    closest = ((points - points[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        potential = weights * closest
        if potential.sum() <= 0:  # every candidate sits on a chosen centre
            potential = weights
        tries = rng.choice(len(points), size=trials, p=potential / potential.sum())
        options = [np.minimum(closest, ((points - points[t]) ** 2).sum(axis=1)) for t in tries]
        best = int(np.argmin([(weights * option).sum() for option in options]))
        chosen.append(int(tries[best]))
        closest = options[best]
    return points[chosen].astype(np.float64)


def _weighted_lloyd(points: np.ndarray, weights: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, float]:
    """Weighted Lloyd on the candidates; returns the centres and their weighted cost."""
    for _ in range(100):
        distances = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels = distances.argmin(axis=1)
        updated = centres.copy()
        for j in range(len(centres)):
            member = labels == j
            if weights[member].sum() > 0:
                updated[j] = np.average(points[member], axis=0, weights=weights[member])
        if np.array_equal(updated, centres):
            break
        centres = updated
    cost = float((weights * ((points[:, None, :] - centres[None]) ** 2).sum(axis=2).min(axis=1)).sum())
    return centres, cost


def recluster_candidates(
    ops: BlockOps, points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator, restarts: int
) -> np.ndarray:
    """Several k-means++ + Lloyd runs on the candidates (cheap: candidates are O(k · rounds)); the
    distinct results are scored on all rows (one pass each) and the lowest inertia wins, which
    keeps k-means|| out of poor local optima better than the candidates' own weighted cost."""
    runs = []
    for _ in range(restarts):
        centres = _weighted_lloyd(points, weights, _weighted_kmeanspp(points, weights, k, rng))[0]
        runs.append(centres[np.lexsort(centres.T[::-1])])  # the same centres in one order
    distinct = list({run.tobytes(): run for run in runs}.values())
    if len(distinct) == 1:
        return distinct[0]
    return min(distinct, key=lambda centres: ops.partials(centres, sums=False).inertia)


def kmeans_parallel_init(ops: BlockOps, k: int, seed: int, oversampling: float, rounds: int) -> np.ndarray:
    """Scalable k-means++ (Bahmani et al., 2012): a few rounds of independent sampling in
    proportion to cost, then a weighted k-means++ on the sampled candidates."""
    root = np.random.SeedSequence(seed)
    first_seed, *round_seeds, recluster_seed = root.spawn(rounds + 2)
    candidates = ops.draw_row(first_seed)[1][None, :]
    expected = oversampling * k
    for round_seed in round_seeds:
        cost = ops.partials(candidates, sums=False).inertia
        if cost <= 0:
            break
        sampled = ops.sample_by_cost(candidates, expected, cost, round_seed)
        if len(sampled):
            candidates = np.unique(np.vstack([candidates, sampled]), axis=0)
    weights = ops.partials(candidates, sums=False).counts.astype(np.float64)
    if len(candidates) <= k:
        extra = ops.farthest(candidates, k - len(candidates) + 1).rows
        candidates = np.unique(np.vstack([candidates, extra]), axis=0)[:k]
        if len(candidates) < k:
            # As scikit-learn: duplicate centres, and a warning (Lloyd relocates their empty clusters).
            warnings.warn(
                f"Number of distinct clusters ({len(candidates)}) found smaller than n_clusters ({k}). "
                "Possibly due to duplicate points in X.",
                ConvergenceWarning,
                stacklevel=3,
            )
            candidates = candidates[np.arange(k) % len(candidates)]
        return candidates
    rng = np.random.default_rng(recluster_seed)
    return recluster_candidates(ops, candidates, np.maximum(weights, 1e-12), k, rng, RECLUSTER_RESTARTS)


def lloyd(ops: BlockOps, centres: np.ndarray, max_iter: int, tol: float) -> KMeansResult:
    """Lloyd iterations until the squared centre shift is at most ``tol`` times the mean feature
    variance (scikit-learn's rule; with tol=0, until the assignment no longer changes)."""
    threshold = tol * ops.mean_variance() if tol > 0 else 0.0
    centres = np.asarray(centres, dtype=np.float64)
    iteration_seconds: list[float] = []
    converged = False
    for _ in range(max_iter):
        started = time.perf_counter()
        step = ops.partials(centres, inertia=False)  # as scikit-learn, inertia only at the end
        updated = _update(ops, centres, step)
        shift = float(((updated - centres) ** 2).sum())
        centres = updated
        iteration_seconds.append(time.perf_counter() - started)
        if shift <= threshold:
            converged = True
            break
    final = ops.partials(centres, sums=False)
    return KMeansResult(
        centres=centres,
        inertia=final.inertia,
        n_iter=len(iteration_seconds),
        counts=final.counts,
        converged=converged,
        iteration_seconds=iteration_seconds,
    )


def _update(ops: BlockOps, centres: np.ndarray, step: Partials) -> np.ndarray:
    """New centres as means of their rows. As scikit-learn does, each empty cluster takes one of
    the rows farthest from their (old) nearest centre, farthest first, and that row leaves its old
    cluster's sum and count; a cluster left with no row keeps its centre."""
    sums, counts = step.sums.copy(), step.counts.copy()
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        far = ops.farthest(centres, len(empty))
        for cluster, row, old in zip(empty, far.rows, far.labels, strict=True):
            sums[old] -= row
            counts[old] -= 1
            sums[cluster], counts[cluster] = row, 1
    updated = centres.copy()
    filled = counts > 0
    updated[filled] = sums[filled] / counts[filled, None]
    return updated


@dataclass(frozen=True)
class FitSettings:
    """How to fit: the same for every engine."""

    seed: int = 0
    max_iter: int = 300
    tol: float = 1e-4
    init: np.ndarray | None = None  # initial centres; None = seeded k-means||
    oversampling: float = 2.0
    init_rounds: int = 5


def fit(ops: BlockOps, k: int, settings: FitSettings, engine: str = "local") -> KMeansResult:
    """Initialise (k-means|| or given centres) and run Lloyd."""
    if k > ops.n_rows:
        raise ValueError(f"k={k} is larger than the number of rows ({ops.n_rows})")
    started = time.perf_counter()
    if settings.init is None:
        centres = kmeans_parallel_init(ops, k, settings.seed, settings.oversampling, settings.init_rounds)
    else:
        centres = np.asarray(settings.init, dtype=np.float64)
        if centres.shape != (k, ops.n_features):
            raise ValueError(f"initial centres have shape {centres.shape}, expected ({k}, {ops.n_features})")
    init_seconds = time.perf_counter() - started
    result = lloyd(ops, centres, settings.max_iter, settings.tol)
    result.init_seconds = init_seconds
    result.fit_seconds = time.perf_counter() - started
    result.engine = engine
    return result


def sweep(ops: BlockOps, fits: Mapping[int, FitSettings], engine: str = "local") -> dict[int, KMeansResult]:
    """Fit every ``k`` of ``fits`` (k → its settings) in turn on the same blocks, loaded once; each
    result equals :func:`fit` of that ``k`` alone."""
    return {k: fit(ops, k, settings, engine) for k, settings in fits.items()}
