"""The ``local`` engine: NumPy arrays in one process, processed in chunks.

:class:`LocalBlocks` is also the per-block worker of the distributed engines: each Spark task or
Dask chunk holds one and answers the same questions about its own rows.
"""

from __future__ import annotations

import numpy as np

from segcore.kmeans import kernels
from segcore.kmeans.kernels import Partials

CHUNK_ROWS = 8_192  # a chunk's distances stay in cache (measured fastest on 2 cores)


class LocalBlocks:
    """:class:`~segcore.kmeans.core.BlockOps` over an in-memory array, chunk by chunk."""

    def __init__(self, data: np.ndarray, chunk_rows: int = CHUNK_ROWS):
        if data.ndim != 2:
            raise ValueError(f"expected a 2-D array of rows, got shape {data.shape}")
        self.data = data
        self.n_rows, self.n_features = data.shape
        self.chunk_rows = chunk_rows
        self._squared_norms: list[float] | None = None

    def _chunks(self):
        for start in range(0, self.n_rows, self.chunk_rows):
            yield self.data[start : start + self.chunk_rows]

    def _cast(self, centres: np.ndarray) -> np.ndarray:
        return centres.astype(self.data.dtype, copy=False)

    def partials(self, centres: np.ndarray) -> Partials:
        centres = self._cast(centres)
        if self._squared_norms is None:
            self._squared_norms = [
                float(np.einsum("ij,ij->", c, c, dtype=np.float64)) for c in self._chunks()
            ]
        total = Partials.zeros(len(centres), self.n_features)
        for chunk, norms in zip(self._chunks(), self._squared_norms, strict=True):
            total += kernels.block_partials(chunk, centres, norms)
        return total

    def sample_by_cost(self, centres, oversampling, total_cost, seed) -> np.ndarray:
        centres = self._cast(centres)
        chunk_seeds = seed.spawn(-(-self.n_rows // self.chunk_rows))
        picked = [
            kernels.sample_by_cost(chunk, centres, oversampling, total_cost, chunk_seed)
            for chunk, chunk_seed in zip(self._chunks(), chunk_seeds, strict=True)
        ]
        return np.vstack([np.empty((0, self.n_features)), *picked]).astype(np.float64)

    def row(self, index: int) -> np.ndarray:
        return self.data[index].astype(np.float64)

    def farthest_candidates(self, centres: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """This block's ``m`` rows farthest from their nearest centre, with squared distances."""
        centres = self._cast(centres)
        found = [kernels.farthest_rows(c, centres, m) for c in self._chunks()]
        rows = np.vstack([np.empty((0, self.n_features)), *(r for r, _ in found)])
        return kernels.top_farthest(rows, np.concatenate([np.empty(0), *(d for _, d in found)]), m)

    def farthest_rows(self, centres: np.ndarray, m: int) -> np.ndarray:
        return self.farthest_candidates(centres, m)[0]

    def moments(self) -> kernels.Moments:
        return kernels.Moments.of(self.data)

    def mean_variance(self) -> float:
        return self.moments().mean_variance()

    def assign(self, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and Euclidean distances to the nearest centre for every row."""
        centres = self._cast(centres)
        found = [kernels.nearest(c, centres) for c in self._chunks()]
        labels = np.concatenate([np.empty(0, dtype=np.int64), *(lab for lab, _ in found)])
        return labels, np.sqrt(np.concatenate([np.empty(0), *(d for _, d in found)]))
