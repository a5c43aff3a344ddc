"""The dask engine's actor: its blocks answered on the worker's threads, in block order."""

from __future__ import annotations

import threading
import time

import numpy as np

from segcore.kmeans.engines.dask import BlockHolder
from segcore.kmeans.engines.local import LocalBlocks


def _where(block: LocalBlocks, index: int) -> tuple[int, float, int]:
    time.sleep(0.1)  # long enough for every thread of the pool to take a block
    return index, float(block.moments().mean[0]), threading.get_ident()


def test_a_block_holder_answers_on_as_many_threads_as_its_worker_has_in_block_order():
    blocks = [(index, LocalBlocks(np.full((10, 2), float(index)))) for index in (3, 1, 2)]
    answers = BlockHolder(blocks, threads=4).answer(_where)
    assert [(index, answer[:2]) for index, answer in answers] == [(3, (3, 3.0)), (1, (1, 1.0)), (2, (2, 2.0))]
    assert len({answer[2] for _, answer in answers}) == 3  # one thread per block (at most the worker's)
    alone = BlockHolder(blocks, threads=1).answer(_where)
    assert [index for index, _ in alone] == [3, 1, 2]
    assert {answer[2] for _, answer in alone} == {threading.get_ident()}  # no pool for one thread
