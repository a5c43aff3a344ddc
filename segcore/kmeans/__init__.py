"""The clustering core: one k-means algorithm (:mod:`segcore.kmeans.core`) and its engines."""

from __future__ import annotations

import numpy as np

from segcore.config import KMeansConfig
from segcore.kmeans.core import KMeansResult, fit
from segcore.kmeans.local import LocalBlocks

__all__ = ["KMeansResult", "LocalBlocks", "fit", "fit_local"]


def fit_local(
    data: np.ndarray, k: int, settings: KMeansConfig, init: np.ndarray | None = None
) -> KMeansResult:
    """Fit k-means on an in-memory array with the ``local`` engine and the configured settings."""
    blocks = LocalBlocks(np.ascontiguousarray(data, dtype=settings.dtype))
    return fit(
        blocks,
        k,
        seed=settings.seed,
        max_iter=settings.max_iter,
        tol=settings.tol,
        init=init,
        oversampling=settings.oversampling,
        init_rounds=settings.init_rounds,
        engine="local",
    )
