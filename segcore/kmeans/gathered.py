"""BlockOps over many blocks: each operation runs on every block, and the per-block answers
(all O(k·d)) are gathered and combined. The Spark engine gathers over sockets between its tasks,
the Dask engine through its client; the combination is the same, so the engines agree."""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from operator import add
from typing import Any

import numpy as np

from segcore.kmeans.kernels import Partials, top_farthest
from segcore.kmeans.local import LocalBlocks

# Runs fn(block, block_index) on every block; returns the answers in block order.
MapBlocks = Callable[[Callable[[LocalBlocks, int], Any]], list[Any]]


def _shape(block: LocalBlocks, _: int) -> tuple[int, int]:
    return block.n_rows, block.n_features


class GatheredBlocks:
    """:class:`~segcore.kmeans.core.BlockOps` whose blocks live elsewhere."""

    def __init__(self, map_blocks: MapBlocks):
        self._map = map_blocks
        shapes = self._map(_shape)
        self.n_blocks = len(shapes)
        self.offsets = np.cumsum([0, *(rows for rows, _ in shapes)])
        self.n_rows = int(self.offsets[-1])
        self.n_features = shapes[0][1]

    def partials(self, centres: np.ndarray) -> Partials:
        return reduce(add, self._map(lambda block, _: block.partials(centres)))

    def sample_by_cost(self, centres, oversampling, total_cost, seed) -> np.ndarray:
        block_seeds = seed.spawn(self.n_blocks)
        picked = self._map(
            lambda block, i: block.sample_by_cost(centres, oversampling, total_cost, block_seeds[i])
        )
        return np.vstack(picked)

    def row(self, index: int) -> np.ndarray:
        owner = int(np.searchsorted(self.offsets, index, side="right")) - 1
        local = index - int(self.offsets[owner])
        found = self._map(lambda block, i: block.row(local) if i == owner else None)
        return found[owner]

    def farthest_rows(self, centres: np.ndarray, m: int) -> np.ndarray:
        found = self._map(lambda block, _: block.farthest_candidates(centres, m))
        rows = np.vstack([r for r, _ in found])
        return top_farthest(rows, np.concatenate([d for _, d in found]), m)[0]

    def mean_variance(self) -> float:
        return reduce(add, self._map(lambda block, _: block.moments())).mean_variance()
