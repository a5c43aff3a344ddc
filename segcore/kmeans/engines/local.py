"""The ``local`` engine: NumPy arrays in one process, processed in chunks.

:class:`LocalBlocks` is also the per-block worker of the distributed engines: each Spark task or
Dask chunk holds one and answers the same questions about its own rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from segcore.kmeans import kernels
from segcore.kmeans.kernels import Farthest, Partials

CHUNK_ROWS = 8_192  # a chunk's distances stay in cache (measured fastest on 2 cores)


@dataclass
class _Nearest:
    """Every row's nearest centre (an index into ``centres``) and squared distance to it."""

    centres: list[bytes]  # each centre's bytes, in the block's dtype and coordinates
    labels: np.ndarray
    distances: np.ndarray


def _first_index(names: list[bytes]) -> dict[bytes, int]:
    """Each distinct name's first index."""
    first: dict[bytes, int] = {}
    for i, name in enumerate(names):
        first.setdefault(name, i)
    return first


class LocalBlocks:
    """:class:`~segcore.kmeans.core.BlockOps` over an in-memory array, chunk by chunk.

    The rows are stored in ``dtype`` (default: the array's) centred on their mean, which is
    computed in float64 before the cast: float32 then keeps its precision on data far from the
    origin. Every answer (sums, rows, moments) is given back in the original coordinates. Each
    row also gets a key, a hash of its value (:func:`~segcore.kmeans.kernels.row_keys`), that
    seeds its random draws, so they do not depend on how the rows are split or ordered.
    """

    def __init__(self, data: np.ndarray, chunk_rows: int = CHUNK_ROWS, dtype: str | np.dtype | None = None):
        if data.ndim != 2:
            raise ValueError(f"expected a 2-D array of rows, got shape {data.shape}")
        self.n_rows, self.n_features = data.shape
        self.chunk_rows = chunk_rows
        dtype = np.dtype(dtype or data.dtype)
        self.shift = data.mean(axis=0, dtype=np.float64) if self.n_rows else np.zeros(self.n_features)
        self.data = np.empty(data.shape, dtype=dtype)
        self.keys = np.empty(self.n_rows, dtype=np.uint64)
        for start in range(0, self.n_rows, chunk_rows):
            rows = data[start : start + chunk_rows]
            self.keys[start : start + len(rows)] = kernels.row_keys(rows.astype(dtype, copy=False))
            self.data[start : start + len(rows)] = rows - self.shift
        self._last: _Nearest | None = None

    def _chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, self.n_rows, self.chunk_rows):
            yield start, self.data[start : start + self.chunk_rows]

    def _centred(self, centres: np.ndarray) -> np.ndarray:
        return (np.asarray(centres, dtype=np.float64) - self.shift).astype(self.data.dtype)

    def _original(self, rows: np.ndarray) -> np.ndarray:
        return rows.astype(np.float64) + self.shift

    def _nearest(self, centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and squared distances of every row to its nearest centre (``centred``: in the
        block's dtype and coordinates). The answer is kept: a later call whose centres include all
        of the kept ones (each k-means|| round adds candidates to the last round's; the sampling step
        asks about the same ones) measures the rows against the new centres only. A row (within
        rounding) equidistant from two centres may be labelled with either."""
        names = [centre.tobytes() for centre in centred]
        last = self._last
        known = _first_index(last.centres) if last is not None else {}
        if last is not None and known.keys() <= set(names):
            first = _first_index(names)
            labels = np.array([first[name] for name in last.centres], dtype=np.intp)[last.labels]
            distances = last.distances.copy()
            new = np.array([i for i, name in enumerate(names) if name not in known and first[name] == i])
            for start, chunk in self._chunks() if len(new) else ():
                nearest, squared = kernels.nearest(chunk, centred[new])
                rows = slice(start, start + len(chunk))
                closer = squared < distances[rows]
                labels[rows][closer] = new[nearest[closer]]
                distances[rows][closer] = squared[closer]
        else:
            found = [kernels.nearest(chunk, centred) for _, chunk in self._chunks()]
            labels = np.concatenate([np.empty(0, dtype=np.intp), *(lab for lab, _ in found)])
            distances = np.concatenate([np.empty(0), *(d for _, d in found)])
        self._last = _Nearest(names, labels, distances)
        return labels, distances

    def partials(self, centres: np.ndarray, inertia: bool = True, sums: bool = True) -> Partials:
        """Per-centre sums (unless ``sums`` is false: NaN) and counts, and (unless ``inertia`` is
        false: NaN) the inertia. A Lloyd step (no inertia) takes labels from the GEMM form alone and
        keeps nothing; with inertia, the labels and distances are kept (see :meth:`_nearest`)."""
        centred = self._centred(centres)
        k = len(centres)
        if not inertia:
            total = Partials.zeros(k, self.n_features)
            for _, chunk in self._chunks():
                total += kernels.block_partials(chunk, centred, inertia=False)
            total.sums += total.counts[:, None] * self.shift
            return total
        labels, distances = self._nearest(centred)
        counts = np.bincount(labels, minlength=k).astype(np.int64)
        result = Partials(np.full((k, self.n_features), np.nan), counts, float(distances.sum()))
        if sums:
            result.sums = counts[:, None] * self.shift
            for start, chunk in self._chunks():
                result.sums += kernels.label_sums(chunk, labels[start : start + len(chunk)], k)
        return result

    def sample_by_cost(
        self, centres: np.ndarray, oversampling: float, total_cost: float, seed: np.random.SeedSequence
    ) -> np.ndarray:
        """The k-means|| sampling step: keep each row with probability min(1, l·d²(x, C)/φ), by a
        uniform draw keyed by the row and ``seed``."""
        _, distances = self._nearest(self._centred(centres))
        keep = kernels.uniform(self.keys, seed) < oversampling * distances / total_cost
        return self._original(self.data[keep]) if keep.any() else np.empty((0, self.n_features))

    def draw_row(self, seed: np.random.SeedSequence) -> tuple[int, np.ndarray | None]:
        """The row with the smallest draw keyed by its value and ``seed`` (a uniformly random
        distinct row), with that draw; ``None`` for an empty block."""
        if not self.n_rows:
            return np.iinfo(np.uint64).max, None
        draws = kernels.draws(self.keys, seed)
        first = int(np.argmin(draws))
        return int(draws[first]), self._original(self.data[first])

    def farthest(self, centres: np.ndarray, m: int) -> Farthest:
        """This block's ``m`` rows farthest from their nearest centre."""
        centred = self._centred(centres)
        parts = [Farthest.none(self.n_features)]
        for start, chunk in self._chunks():
            labels, distances = kernels.nearest(chunk, centred)
            top = Farthest.top(chunk, distances, labels, self.keys[start : start + len(chunk)], m)
            parts.append(Farthest(self._original(top.rows), top.distances, top.labels, top.keys))
        return Farthest.merge(parts, m)

    def moments(self) -> kernels.Moments:
        centred = kernels.Moments.of(self.data)
        return kernels.Moments(centred.n, centred.mean + self.shift, centred.m2)

    def mean_variance(self) -> float:
        return self.moments().mean_variance()

    def assign(self, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and Euclidean distances to the nearest centre for every row."""
        centred = self._centred(centres)
        found = [kernels.nearest(chunk, centred) for _, chunk in self._chunks()]
        labels = np.concatenate([np.empty(0, dtype=np.int64), *(lab for lab, _ in found)])
        return labels, np.sqrt(np.concatenate([np.empty(0), *(d for _, d in found)]))
