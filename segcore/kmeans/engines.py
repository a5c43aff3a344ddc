"""The old import path of the MLlib reference, kept only until ``segcore.bench`` imports
:func:`segcore.kmeans.mllib_engine.fit_mllib` itself; then delete this module. The pipeline's entry
to the engines is :mod:`segcore.fitting`."""

from __future__ import annotations

from segcore.kmeans import mllib_engine
from segcore.kmeans.core import FitSettings, KMeansResult


def fit_mllib(frame, features: list[str], k: int, settings, init) -> KMeansResult:
    """The old signature: ``settings`` has ``seed``, ``max_iter``, ``tol`` and ``init_rounds``."""
    fit = FitSettings(
        seed=settings.seed,
        max_iter=settings.max_iter,
        tol=settings.tol,
        init=init,
        init_rounds=settings.init_rounds,
    )
    return mllib_engine.fit_mllib(frame, features, k, fit)
