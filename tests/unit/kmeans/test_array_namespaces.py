"""The kernels and the local engine on the array API's strict namespace (``array_api_strict``)
give NumPy's answers: the GPU path (CuPy) runs the same code, so a NumPy-only call in it fails
here, on every commit, rather than on a user's GPU."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from segcore.kmeans import core, kernels
from segcore.kmeans.arrays import DeviceUnavailable, device_namespace, namespace
from segcore.kmeans.engines.local import LocalBlocks

STRICT = "array_api_strict"


@pytest.fixture
def strict(monkeypatch):
    """The strict namespace with its last NumPy door shut: NumPy functions turn an array into a
    NumPy array through ``__array__``; here that raises, as it does for a CuPy array."""
    import array_api_strict

    def refuse(self, *args, **kwargs):
        raise TypeError("a NumPy function was called on an array of the block's namespace")

    monkeypatch.setattr(type(array_api_strict.asarray(0.0)), "__array__", refuse)
    return array_api_strict


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    points, _ = make_blobs(6000, n_features=4, centers=5, cluster_std=1.5, random_state=3)
    return points + 1e3  # away from the origin: centring and float32 matter


def test_the_guard_catches_a_numpy_call(strict):
    block = strict.asarray(np.ones((3, 2)))
    with pytest.raises(TypeError, match="NumPy function was called"):
        np.einsum("ij,ij->i", block, block)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("init", ["k-means||", "given"])
def test_a_fit_on_the_strict_namespace_equals_numpy(strict, blobs, dtype, init):
    given = blobs[[0, 1200, 2400, 3600, 4800]] if init == "given" else None
    settings = core.FitSettings(seed=7, tol=0.0, max_iter=30, init=given)
    on_numpy = core.fit(LocalBlocks(blobs, chunk_rows=1000, dtype=dtype), 5, settings)
    on_strict = core.fit(LocalBlocks(blobs, chunk_rows=1000, dtype=dtype, array_module=STRICT), 5, settings)
    np.testing.assert_allclose(on_strict.centres, on_numpy.centres, rtol=1e-9, atol=0)
    np.testing.assert_array_equal(on_strict.counts, on_numpy.counts)
    assert on_strict.inertia == pytest.approx(on_numpy.inertia, rel=1e-9)
    assert on_strict.n_iter == on_numpy.n_iter


def test_every_block_answer_on_the_strict_namespace_equals_numpy(strict, blobs):
    """What the distributed engines ask of each block: partials, the k-means|| sampling, a random
    row, the farthest rows, moments and the assignment."""
    numpy_blocks = LocalBlocks(blobs, chunk_rows=700)
    strict_blocks = LocalBlocks(blobs, chunk_rows=700, array_module=STRICT)
    centres = blobs[[5, 50, 500]]
    seed = np.random.SeedSequence(11)
    for inertia in (True, False):
        ours, theirs = (b.partials(centres, inertia=inertia) for b in (strict_blocks, numpy_blocks))
        np.testing.assert_allclose(ours.sums, theirs.sums, rtol=1e-12)
        np.testing.assert_array_equal(ours.counts, theirs.counts)
        assert ours.inertia == pytest.approx(theirs.inertia, rel=1e-12, nan_ok=True)
    sampled = [b.sample_by_cost(centres, 2.0, 1e6, seed) for b in (strict_blocks, numpy_blocks)]
    np.testing.assert_array_equal(*sampled)
    assert strict_blocks.draw_row(seed)[0] == numpy_blocks.draw_row(seed)[0]
    np.testing.assert_array_equal(strict_blocks.draw_row(seed)[1], numpy_blocks.draw_row(seed)[1])
    far = [b.farthest(centres, 4) for b in (strict_blocks, numpy_blocks)]
    np.testing.assert_array_equal(far[0].keys, far[1].keys)
    np.testing.assert_allclose(far[0].rows, far[1].rows, rtol=1e-12)
    assert strict_blocks.mean_variance() == pytest.approx(numpy_blocks.mean_variance(), rel=1e-12)
    labels, distances = (
        np.concatenate(pair)
        for pair in zip(*(b.assign(centres) for b in (strict_blocks, numpy_blocks)), strict=True)
    )
    half = len(blobs)
    np.testing.assert_array_equal(labels[:half], labels[half:])
    np.testing.assert_allclose(distances[:half], distances[half:], rtol=1e-12)


def test_kernels_answer_in_their_inputs_namespace(strict, blobs):
    block, centres = strict.asarray(blobs[:100]), strict.asarray(blobs[:3])
    labels, squared = kernels.nearest(block, centres)
    strict_array = type(block)
    assert isinstance(labels, strict_array) and isinstance(squared, strict_array)
    partials = kernels.block_partials(block, centres)
    assert isinstance(partials.sums, np.ndarray) and partials.counts.sum() == 100


def test_gpu_without_cupy_or_a_device_is_refused_saying_what_to_do():
    try:
        device_namespace("gpu")
    except DeviceUnavailable as refusal:
        assert "set kmeans.device=cpu" in str(refusal)
    else:
        pytest.skip("this machine has CuPy and a CUDA device: the refusal cannot happen here")


def test_cpu_is_numpy():
    assert namespace("numpy").asarray([1.0]).__class__ is np.ndarray
    assert device_namespace("cpu").__name__ == namespace("numpy").__name__
