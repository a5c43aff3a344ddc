"""The ``cuml`` engine: cuML's KMeans on one GPU, with the core's meaning of ``tol``.

cuML (cuVS underneath) stops when the squared centre shift summed over centres is *below* its
``tol``, an absolute number; the core (as scikit-learn) stops when that shift is *at most* ``tol``
times the mean per-feature variance of the data. :func:`cuml_tol` converts one into the other.
The rows are centred on their mean (in float64) before the cast to the fit's dtype, as the other
engines do, so float32 keeps its precision on data far from the origin. cuML is imported only
when a fit runs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from segcore.kmeans import core
from segcore.kmeans.engines.local import LocalBlocks

CUML_INSTALL = "pip install 'segcore[gpu]' (cuML, on a machine with an NVIDIA GPU and CUDA 12)"


def cuml_tol(tol: float, mean_variance: float) -> float:
    """cuML's ``tol`` for the core's ``tol`` on data of this mean per-feature variance.

    The core converges when ``shift <= tol * mean_variance``; cuML when ``shift < its tol``. The
    next float above ``tol * mean_variance`` makes the two tests the same for every shift, and
    turns ``tol=0`` (stop only when no centre moves) into the smallest positive double, where
    cuML's own ``tol=0`` would never stop before ``max_iter``.
    """
    return float(np.nextafter(tol * mean_variance, np.inf))


def _kmeans_class():
    try:
        from cuml.cluster import KMeans
    except ImportError:
        raise core.EngineUnavailable(
            f"kmeans.engine=cuml needs cuML, which is not installed: {CUML_INSTALL}"
        ) from None
    return KMeans


def sweep_cuml(
    points: np.ndarray, fits: Mapping[int, core.FitSettings], dtype: str = "float64"
) -> dict[int, core.KMeansResult]:
    """cuML's KMeans for every ``k`` of ``fits`` (k → its settings) on the rows of ``points``,
    copied to the GPU once. Inertia and counts are computed on the host from the final centres,
    in float64, as for the other engines."""
    kmeans = _kmeans_class()
    shift = points.mean(axis=0, dtype=np.float64)
    centred = points - shift
    mean_variance = float((centred**2).mean(axis=0).mean())
    on_device = centred.astype(dtype)
    host = LocalBlocks(points)
    results = {}
    for k, settings in fits.items():
        started = time.perf_counter()
        model = kmeans(
            n_clusters=k,
            init=(settings.init - shift).astype(dtype) if settings.init is not None else "scalable-k-means++",
            n_init=1,
            max_iter=settings.max_iter,
            tol=cuml_tol(settings.tol, mean_variance),
            random_state=settings.seed,
            oversampling_factor=settings.oversampling,
        ).fit(on_device)
        fit_seconds = time.perf_counter() - started
        centres = np.asarray(model.cluster_centers_, dtype=np.float64) + shift
        final = host.partials(centres)
        results[k] = core.KMeansResult(
            centres=centres,
            inertia=final.inertia,
            n_iter=int(model.n_iter_),
            counts=final.counts,
            converged=int(model.n_iter_) < settings.max_iter,
            fit_seconds=fit_seconds,
            engine="cuml",
        )
    return results


def fit_cuml(
    points: np.ndarray, k: int, settings: core.FitSettings, dtype: str = "float64"
) -> core.KMeansResult:
    """cuML's KMeans for one ``k`` (see :func:`sweep_cuml`)."""
    return sweep_cuml(points, {k: settings}, dtype)[k]
