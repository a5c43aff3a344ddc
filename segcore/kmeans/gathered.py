"""BlockOps over many blocks: each operation runs on every block, and the per-block answers
(all O(k·d)) are gathered and combined. The Spark engine gathers over sockets between its tasks,
the Dask engine through its client; the combination is the same, so the engines agree."""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from operator import add
from typing import Any

import numpy as np

from segcore.kmeans.engines.local import LocalBlocks
from segcore.kmeans.kernels import Farthest, Partials

# Runs fn(block, block_index) on every block; returns the answers in block order.
MapBlocks = Callable[[Callable[[LocalBlocks, int], Any]], list[Any]]


def _shape(block: LocalBlocks, _: int) -> tuple[int, int]:
    return block.n_rows, block.n_features


class GatheredBlocks:
    """:class:`~segcore.kmeans.core.BlockOps` whose blocks live elsewhere. Random draws are keyed
    by the rows themselves, so every block gets the same seed and the answers do not depend on
    how the rows are split into blocks."""

    def __init__(self, map_blocks: MapBlocks):
        self._map = map_blocks
        shapes = self._map(_shape)
        self.n_rows = sum(rows for rows, _ in shapes)
        self.n_features = shapes[0][1]

    def partials(self, centres: np.ndarray, inertia: bool = True, sums: bool = True) -> Partials:
        return reduce(add, self._map(lambda block, _: block.partials(centres, inertia, sums)))

    def sample_by_cost(
        self, centres: np.ndarray, oversampling: float, total_cost: float, seed: np.random.SeedSequence
    ) -> np.ndarray:
        picked = self._map(lambda block, _: block.sample_by_cost(centres, oversampling, total_cost, seed))
        return np.vstack(picked)

    def draw_row(self, seed: np.random.SeedSequence) -> tuple[int, np.ndarray | None]:
        return min(self._map(lambda block, _: block.draw_row(seed)), key=lambda drawn: drawn[0])

    def farthest(self, centres: np.ndarray, m: int) -> Farthest:
        return Farthest.merge(self._map(lambda block, _: block.farthest(centres, m)), m)

    def mean_variance(self) -> float:
        return reduce(add, self._map(lambda block, _: block.moments())).mean_variance()
