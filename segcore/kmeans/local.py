"""The ``local`` engine: NumPy arrays in one process, processed in chunks."""

from __future__ import annotations

import numpy as np

from segcore.kmeans import kernels
from segcore.kmeans.kernels import Partials

CHUNK_ROWS = 65_536


class LocalBlocks:
    """:class:`~segcore.kmeans.core.BlockOps` over an in-memory array, chunk by chunk."""

    def __init__(self, data: np.ndarray, chunk_rows: int = CHUNK_ROWS):
        if data.ndim != 2:
            raise ValueError(f"expected a 2-D array of rows, got shape {data.shape}")
        self.data = data
        self.n_rows, self.n_features = data.shape
        self.chunk_rows = chunk_rows

    def _chunks(self):
        for start in range(0, self.n_rows, self.chunk_rows):
            yield self.data[start : start + self.chunk_rows]

    def partials(self, centres: np.ndarray) -> Partials:
        centres = centres.astype(self.data.dtype, copy=False)
        total = None
        for chunk in self._chunks():
            part = kernels.block_partials(chunk, centres)
            total = part if total is None else total + part
        return total

    def sample_by_cost(self, centres, oversampling, total_cost, seed) -> np.ndarray:
        centres = centres.astype(self.data.dtype, copy=False)
        chunk_seeds = seed.spawn((self.n_rows + self.chunk_rows - 1) // self.chunk_rows)
        picked = [
            kernels.sample_by_cost(chunk, centres, oversampling, total_cost, chunk_seed)
            for chunk, chunk_seed in zip(self._chunks(), chunk_seeds, strict=True)
        ]
        return np.vstack(picked).astype(np.float64)

    def row(self, index: int) -> np.ndarray:
        return self.data[index].astype(np.float64)

    def farthest_rows(self, centres: np.ndarray, m: int) -> np.ndarray:
        centres = centres.astype(self.data.dtype, copy=False)
        rows, distances = zip(*(kernels.farthest_rows(c, centres, m) for c in self._chunks()), strict=True)
        rows, distances = np.vstack(rows), np.concatenate(distances)
        order = np.lexsort((np.arange(len(distances)), -distances))[:m]
        return rows[order].astype(np.float64)

    def mean_variance(self) -> float:
        return float(np.mean(np.var(self.data, axis=0, dtype=np.float64)))

    def assign(self, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and Euclidean distances to the nearest centre for every row."""
        centres = centres.astype(self.data.dtype, copy=False)
        labels, distances = zip(*(kernels.nearest(c, centres) for c in self._chunks()), strict=True)
        return np.concatenate(labels), np.sqrt(np.concatenate(distances))
