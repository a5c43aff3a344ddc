"""The ``dask`` engine: a Dask array on a ``distributed`` cluster, one client round per step.

Each chunk becomes a :class:`LocalBlocks` held in worker memory for the whole fit; every step of
k-means|| and Lloyd maps one small task over the chunks and combines their O(k·d) answers on the
client (:class:`~segcore.kmeans.gathered.GatheredBlocks`).
"""

from __future__ import annotations

import numpy as np

from segcore.kmeans import core
from segcore.kmeans.gathered import GatheredBlocks
from segcore.kmeans.local import LocalBlocks


def _as_blocks(chunk: np.ndarray, dtype: str) -> LocalBlocks:
    return LocalBlocks(np.ascontiguousarray(chunk, dtype=dtype))


def fit_dask(
    array,
    k: int,
    settings: core.FitSettings,
    *,
    client,
    dtype: str = "float64",
) -> core.KMeansResult:
    """k-means over the rows of a 2-D Dask array, computed on ``client``'s cluster."""
    threads = sum(client.nthreads().values())
    if array.numblocks[0] < threads and not np.isnan(array.shape[0]):
        array = array.rechunk({0: -(-array.shape[0] // threads)})  # at least one chunk per worker thread
    chunks = array.rechunk({1: -1}).to_delayed().ravel().tolist()
    futures = client.compute(chunks)
    blocks = client.map(_as_blocks, futures, dtype=dtype, pure=False)

    def map_blocks(fn):
        return client.gather(client.map(fn, blocks, range(len(blocks)), pure=False))

    # The blocks stay in worker memory while this function holds their futures.
    return core.fit(GatheredBlocks(map_blocks), k, settings, engine="dask")


def assign_dask(array, centres: np.ndarray):
    """Labels and distances to the nearest centre, as lazy Dask arrays."""
    from segcore.kmeans.kernels import nearest

    def label(chunk: np.ndarray) -> np.ndarray:
        labels, squared = nearest(chunk, centres.astype(chunk.dtype))
        return np.column_stack([labels, np.sqrt(squared)])

    pairs = array.rechunk({1: -1}).map_blocks(label, chunks=(array.chunks[0], (2,)), dtype=np.float64)
    return pairs[:, 0].astype(np.int64), pairs[:, 1]
