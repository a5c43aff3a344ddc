"""The ``local`` engine: one process, its rows in chunks of an array namespace (NumPy; CuPy on the
GPU, :mod:`segcore.kmeans.arrays`).

:class:`LocalBlocks` is also the per-block worker of the distributed engines: each Spark task or
Dask chunk holds one and answers the same questions about its own rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import reduce
from operator import add

import numpy as np

from segcore.kmeans import kernels
from segcore.kmeans.arrays import namespace, to_host
from segcore.kmeans.kernels import Farthest, Partials

CHUNK_ROWS = 8_192  # a chunk's distances stay in cache (measured fastest on 2 cores)


@dataclass
class _Nearest:
    """Every row's nearest centre (an index into ``centres``) and squared distance to it."""

    centres: list[bytes]  # each centre's bytes, in the block's dtype and coordinates
    labels: object  # arrays of the block's namespace
    distances: object


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
    origin. They are held in the namespace of ``array_module`` (``numpy``; ``cupy`` on the GPU)
    for the block's life; every answer (sums, rows, moments) comes back to the host in the
    original coordinates. Each row also gets a key, a hash of its value
    (:func:`~segcore.kmeans.kernels.row_keys`), that seeds its random draws, so they do not depend
    on how the rows are split or ordered.
    """

    def __init__(
        self,
        data: np.ndarray,
        chunk_rows: int = CHUNK_ROWS,
        dtype: str | np.dtype | None = None,
        array_module: str = "numpy",
    ):
        if data.ndim != 2:
            raise ValueError(f"expected a 2-D array of rows, got shape {data.shape}")
        self.n_rows, self.n_features = data.shape
        self.chunk_rows = chunk_rows
        self.xp = namespace(array_module)
        self.dtype = np.dtype(dtype or data.dtype)
        self.shift = data.mean(axis=0, dtype=np.float64) if self.n_rows else np.zeros(self.n_features)
        rows = np.empty(data.shape, dtype=self.dtype)
        keys = np.empty(self.n_rows, dtype=np.uint64)
        for start in range(0, self.n_rows, chunk_rows):
            chunk = data[start : start + chunk_rows]
            keys[start : start + len(chunk)] = kernels.row_keys(chunk.astype(self.dtype, copy=False))
            rows[start : start + len(chunk)] = chunk - self.shift
        self.data, self.keys = self.xp.asarray(rows), self.xp.asarray(keys)
        self._last: _Nearest | None = None

    def _chunks(self) -> Iterator[tuple[int, object]]:
        for start in range(0, self.n_rows, self.chunk_rows):
            yield start, self.data[start : min(start + self.chunk_rows, self.n_rows), ...]

    def _centred(self, centres: np.ndarray) -> np.ndarray:
        """Centres in the block's dtype and coordinates, on the host."""
        return (np.asarray(centres, dtype=np.float64) - self.shift).astype(self.dtype)

    def _original(self, rows) -> np.ndarray:
        """Rows of the block back on the host, in float64 and original coordinates."""
        return to_host(rows).astype(np.float64) + self.shift

    def _nearest(self, centred: np.ndarray):
        """Labels and squared distances of every row to its nearest centre (``centred``: in the
        block's dtype and coordinates). The answer is kept: a later call whose centres include all
        of the kept ones (each k-means|| round adds candidates to the last round's; the sampling step
        asks about the same ones) measures the rows against the new centres only. A row (within
        rounding) equidistant from two centres may be labelled with either."""
        xp = self.xp
        names = [centre.tobytes() for centre in centred]
        last = self._last
        known = _first_index(last.centres) if last is not None else {}
        if last is not None and known.keys() <= set(names):
            first = _first_index(names)
            renamed = xp.asarray(np.array([first[name] for name in last.centres], dtype=np.int64))
            labels = xp.take(renamed, last.labels)
            distances = xp.asarray(last.distances, copy=True)
            new = np.array([i for i, name in enumerate(names) if name not in known and first[name] == i])
            if len(new):
                candidates, new_ids = xp.asarray(centred[new]), xp.asarray(new)
            for start, chunk in self._chunks() if len(new) else ():
                found, squared = kernels.nearest(chunk, candidates)
                rows = slice(start, start + chunk.shape[0])
                closer = squared < distances[rows]
                labels[rows] = xp.where(closer, xp.take(new_ids, found), labels[rows])
                distances[rows] = xp.where(closer, squared, distances[rows])
        else:
            on_device = xp.asarray(centred)
            found = [kernels.nearest(chunk, on_device) for _, chunk in self._chunks()]
            labels = xp.concat([xp.empty(0, dtype=xp.int64), *(xp.astype(lab, xp.int64) for lab, _ in found)])
            distances = xp.concat([xp.empty(0, dtype=xp.float64), *(d for _, d in found)])
        self._last = _Nearest(names, labels, distances)
        return labels, distances

    def partials(self, centres: np.ndarray, inertia: bool = True, sums: bool = True) -> Partials:
        """Per-centre sums (unless ``sums`` is false: NaN) and counts, and (unless ``inertia`` is
        false: NaN) the inertia. A Lloyd step (no inertia) takes labels from the GEMM form alone and
        keeps nothing; with inertia, the labels and distances are kept (see :meth:`_nearest`)."""
        centred = self._centred(centres)
        k = len(centres)
        total = Partials.zeros(k, self.n_features)
        if not inertia:
            on_device = self.xp.asarray(centred)
            for _, chunk in self._chunks():
                total += kernels.block_partials(chunk, on_device, inertia=False)
        else:
            labels, distances = self._nearest(centred)
            total.inertia = float(self.xp.sum(distances))
            for start, chunk in self._chunks():
                chunk_labels = labels[start : start + chunk.shape[0]]
                counts, chunk_sums = kernels.label_partials(chunk, chunk_labels, k, sums)
                total.counts += counts
                total.sums += chunk_sums
        total.sums += total.counts[:, None] * self.shift
        return total

    def sample_by_cost(
        self, centres: np.ndarray, oversampling: float, total_cost: float, seed: np.random.SeedSequence
    ) -> np.ndarray:
        """The k-means|| sampling step: keep each row with probability min(1, l·d²(x, C)/φ), by a
        uniform draw keyed by the row and ``seed``."""
        _, distances = self._nearest(self._centred(centres))
        keep = kernels.uniform(self.keys, seed) < oversampling * distances / total_cost
        if not bool(self.xp.any(keep)):
            return np.empty((0, self.n_features))
        return self._original(self.data[keep])

    def draw_row(self, seed: np.random.SeedSequence) -> tuple[int, np.ndarray | None]:
        """The row with the smallest draw keyed by its value and ``seed`` (a uniformly random
        distinct row), with that draw; ``None`` for an empty block."""
        if not self.n_rows:
            return np.iinfo(np.uint64).max, None
        draws = kernels.draws(self.keys, seed)
        first = int(self.xp.argmin(draws))
        return int(draws[first]), self._original(self.data[first : first + 1, ...])[0]

    def farthest(self, centres: np.ndarray, m: int) -> Farthest:
        """This block's ``m`` rows farthest from their nearest centre."""
        xp, centred = self.xp, self.xp.asarray(self._centred(centres))
        parts = [Farthest.none(self.n_features)]
        for start, chunk in self._chunks():
            labels, distances = (to_host(a) for a in kernels.nearest(chunk, centred))
            keys = to_host(self.keys[start : start + chunk.shape[0]])
            order = Farthest.order(distances, keys, m)
            rows = self._original(xp.take(chunk, xp.asarray(order), axis=0))
            parts.append(Farthest(rows, distances[order], labels[order].astype(np.int64), keys[order]))
        return Farthest.merge(parts, m)

    def moments(self) -> kernels.Moments:
        """Chunk by chunk: the float64 copy of a whole block and its squares cost page faults that
        took a fresh Spark task 0.6 s per million rows (0.16 s in chunks)."""
        chunks = (kernels.Moments.of(chunk) for _, chunk in self._chunks())
        centred = reduce(add, chunks, kernels.Moments.none(self.n_features))
        return kernels.Moments(centred.n, centred.mean + self.shift, centred.m2)

    def mean_variance(self) -> float:
        return self.moments().mean_variance()

    def assign(self, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and Euclidean distances to the nearest centre for every row, on the host."""
        centred = self.xp.asarray(self._centred(centres))
        found = [kernels.nearest(chunk, centred) for _, chunk in self._chunks()]
        labels = np.concatenate([np.empty(0, dtype=np.int64), *(to_host(lab) for lab, _ in found)])
        distances = np.concatenate([np.empty(0), *(to_host(d) for _, d in found)])
        return labels.astype(np.int64), np.sqrt(distances)
