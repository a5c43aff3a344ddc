"""The GPU paths against scikit-learn, on a GPU (marker ``gpu``: ``pytest -m gpu``, which
``scripts/gpu-check`` runs): the local and Dask engines with their blocks on CuPy
(``kmeans.device=gpu``), and the cuml engine. Wherever CuPy, a CUDA device or cuML is missing, the
tests that need it are skipped, saying so; wherever they are present, they run."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from segcore.kmeans import FitSettings, LocalBlocks, core
from segcore.kmeans.kernels import nearest


def _missing(*modules: str) -> str | None:
    """Why ``modules`` and a CUDA device are not all here, or None."""
    try:
        for module in modules:
            __import__(module)
        import cupy
    except ImportError as exc:
        return f"{exc.name} is not importable"
    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # cupy's CUDA errors: no driver, no device
        return f"CUDA: {exc}"
    return None if devices else "no CUDA device"


NO_CUPY, NO_CUML = _missing("cupy"), _missing("cupy", "cuml")
needs_cupy = pytest.mark.skipif(NO_CUPY is not None, reason=f"CuPy/CUDA not present: {NO_CUPY}")
needs_cuml = pytest.mark.skipif(NO_CUML is not None, reason=f"cuML/CUDA not present: {NO_CUML}")
pytestmark = pytest.mark.gpu
K = 6


@pytest.fixture(scope="module")
def offset_blobs_k6():
    """40,000 points in 8 dimensions around 6 centres (std 1.5), shifted by 1e3."""
    points, _ = make_blobs(40_000, n_features=8, centers=K, cluster_std=1.5, random_state=5)
    return points + 1e3  # away from the origin, where an uncentred float32 loses precision


def _assert_as_scikit_learn(points, result, reference):
    labels = nearest(points, result.centres)[0]
    assert adjusted_rand_score(reference.labels_, labels) >= 0.99
    assert result.inertia == pytest.approx(reference.inertia_, rel=1e-4)


@needs_cuml
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuml_from_the_same_centres_matches_scikit_learn(offset_blobs_k6, dtype):
    from segcore.kmeans.engines.cuml import fit_cuml

    init = offset_blobs_k6[np.random.default_rng(3).choice(len(offset_blobs_k6), K, replace=False)]
    reference = SklearnKMeans(K, init=init, n_init=1, tol=1e-4, algorithm="lloyd").fit(offset_blobs_k6)
    result = fit_cuml(offset_blobs_k6, K, FitSettings(init=init, tol=1e-4), dtype)
    assert result.engine == "cuml"
    _assert_as_scikit_learn(offset_blobs_k6, result, reference)


@needs_cuml
def test_cuml_seeded_sweep_matches_scikit_learn(offset_blobs_k6):
    """Seeded k-means|| for two k in one sweep: at the planted k, scikit-learn's segments and
    inertia; one below, no worse an inertia than scikit-learn's best of 10 k-means++ starts."""
    from segcore.kmeans.engines.cuml import sweep_cuml

    results = sweep_cuml(offset_blobs_k6, {K - 1: FitSettings(seed=7), K: FitSettings(seed=7)}, "float32")
    _assert_as_scikit_learn(
        offset_blobs_k6, results[K], SklearnKMeans(K, n_init=10, random_state=0).fit(offset_blobs_k6)
    )
    fewer = SklearnKMeans(K - 1, n_init=10, random_state=0).fit(offset_blobs_k6)
    assert results[K - 1].inertia <= fewer.inertia_ * (1 + 1e-4)


@needs_cuml
def test_cuml_with_tol_zero_stops_when_no_centre_moves(offset_blobs_k6):
    from segcore.kmeans.engines.cuml import fit_cuml

    result = fit_cuml(offset_blobs_k6, K, FitSettings(seed=7, tol=0.0, max_iter=300))
    assert result.converged and result.n_iter < 300  # cuML's own tol=0 would run all 300


@needs_cupy
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_local_engine_on_the_gpu_matches_scikit_learn(offset_blobs_k6, dtype):
    """kmeans.device=gpu: the blocks live on the GPU for the whole fit; the same segments and
    inertia as scikit-learn from the same centres, and as the CPU from the same seed."""
    init = offset_blobs_k6[np.random.default_rng(3).choice(len(offset_blobs_k6), K, replace=False)]
    reference = SklearnKMeans(K, init=init, n_init=1, tol=1e-4, algorithm="lloyd").fit(offset_blobs_k6)
    on_gpu = LocalBlocks(offset_blobs_k6, dtype=dtype, array_module="cupy")
    _assert_as_scikit_learn(offset_blobs_k6, core.fit(on_gpu, K, FitSettings(init=init, tol=1e-4)), reference)
    seeded = FitSettings(seed=7, tol=1e-4)
    cpu = core.fit(LocalBlocks(offset_blobs_k6, dtype=dtype), K, seeded)
    gpu = core.fit(on_gpu, K, seeded)
    labels = [nearest(offset_blobs_k6, fit.centres)[0] for fit in (cpu, gpu)]
    assert adjusted_rand_score(*labels) >= 0.999
    assert gpu.inertia == pytest.approx(cpu.inertia, rel=1e-5)


@needs_cupy
def test_dask_engine_with_a_gpu_worker_matches_the_cpu(offset_blobs_k6):
    """One Dask worker per GPU (as dask-cuda arranges it; here one local worker): its blocks on
    CuPy, the same fit as on NumPy."""
    import dask.array as da
    from distributed import Client, LocalCluster

    from segcore.kmeans.engines.dask import fit_dask

    worker = dict(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)
    with LocalCluster(**worker) as cluster, Client(cluster) as client:
        array = da.from_array(offset_blobs_k6, chunks=(10_000, 8)).persist()
        settings = FitSettings(seed=7, tol=1e-4)
        cpu, gpu = (fit_dask(array, K, settings, client=client, array_module=m) for m in ("numpy", "cupy"))
    labels = [nearest(offset_blobs_k6, fit.centres)[0] for fit in (cpu, gpu)]
    assert adjusted_rand_score(*labels) >= 0.999
    assert gpu.inertia == pytest.approx(cpu.inertia, rel=1e-5)
