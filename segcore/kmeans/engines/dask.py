"""The ``dask`` engine: a Dask array on a ``distributed`` cluster, one call per worker per step.

Each chunk becomes a :class:`LocalBlocks` held in worker memory for the whole fit, and each worker
holding blocks gets an actor (:class:`BlockHolder`) over them. Every step of k-means|| and Lloyd
calls each actor once, straight from the client to its worker (not through the scheduler), and
combines the blocks' O(k·d) answers on the client (:class:`~segcore.kmeans.gathered.GatheredBlocks`).
A Parquet table enters as one block per partition, read and prepared on the workers
(:func:`partition_rows`). A sweep over several k (:func:`sweep_dask`) fits them all on the blocks
loaded once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from segcore.kmeans import allocator, core
from segcore.kmeans.engines.local import LocalBlocks
from segcore.kmeans.gathered import GatheredBlocks, MapBlocks

log = logging.getLogger(__name__)
DASK_PREFIX = "Original Message: "  # how dask's read_parquet quotes the error it wraps
SWEEP_ATTEMPTS = 2  # runs of a sweep at most, where a worker is lost during one


def _as_blocks(chunk: np.ndarray, dtype: str, array_module: str) -> LocalBlocks:
    return LocalBlocks(chunk, dtype=dtype, array_module=array_module)  # centred in float64 before any cast


def _rows(partition: pd.DataFrame, prepare: Callable[[pd.DataFrame], np.ndarray]) -> np.ndarray:
    return prepare(partition)


def partition_rows(frame, prepare: Callable[[pd.DataFrame], np.ndarray], width: int, client):
    """The rows of a Dask DataFrame as a 2-D Dask array of ``width`` columns: ``prepare`` applied
    to each partition, computed and held on ``client``'s workers, one block per non-empty
    partition, with known sizes.

    Built from the partitions themselves: ``to_dask_array(lengths=True)`` counts rows over the
    partitions of an optimised graph whose small files are fused, and fails on tables of several
    files ("The number of items in 'lengths' does not match the number of partitions").
    """
    import dask
    import dask.array as da

    parts = client.compute([dask.delayed(_rows)(part, prepare) for part in frame.to_delayed()])
    lengths = client.gather(client.map(len, parts))
    blocks = [
        da.from_delayed(part, (rows, width), dtype=np.float64)
        for part, rows in zip(parts, lengths, strict=True)
        if rows
    ]
    if not blocks:
        raise ValueError("the table has no rows")
    return da.concatenate(blocks)


def fit_dask(
    array,
    k: int,
    settings: core.FitSettings,
    *,
    client,
    dtype: str = "float64",
    array_module: str = "numpy",
) -> core.KMeansResult:
    """k-means over the rows of a 2-D Dask array, computed on ``client``'s cluster."""
    return sweep_dask(array, {k: settings}, client=client, dtype=dtype, array_module=array_module)[k]


def sweep_dask(
    array,
    fits: Mapping[int, core.FitSettings],
    *,
    client,
    dtype: str = "float64",
    array_module: str = "numpy",
) -> dict[int, core.KMeansResult]:
    """k-means for every ``k`` of ``fits`` (k → its settings) over the rows of a 2-D Dask array:
    the blocks are computed and held in worker memory once (in ``array_module``'s arrays: on its
    GPU for ``cupy``), and every ``k`` is fitted on them in turn. Each result equals the fit of
    that ``k`` alone. Meanwhile the workers' allocator keeps its freed memory
    (:mod:`~segcore.kmeans.allocator`). A worker lost during the sweep (its actor with it) costs
    a rerun of the sweep, on blocks Dask recomputes: the same answers, as the draws are keyed by
    the rows."""
    threads = sum(client.nthreads().values())
    if array.numblocks[0] < threads and not np.isnan(array.shape[0]):
        array = array.rechunk({0: -(-array.shape[0] // threads)})  # at least one chunk per worker thread
    chunks = array.rechunk({1: -1}).to_delayed().ravel().tolist()
    futures = client.compute(chunks)
    blocks = client.map(_as_blocks, futures, dtype=dtype, array_module=array_module, pure=False)
    # The blocks stay in worker memory while this function holds their futures.
    client.run(allocator.keep_freed_memory)
    try:
        return _sweep_on_actors(client, blocks, fits)
    finally:
        client.run(allocator.trim_again, on_error="ignore")  # a lost worker has nothing to trim


class WorkerLost(core.KMeansError):
    """A Dask worker holding blocks was lost during the fit."""


def _sweep_on_actors(
    client, blocks: list, fits: Mapping[int, core.FitSettings]
) -> dict[int, core.KMeansResult]:
    """The sweep over the blocks through an actor per worker, run again where a worker is lost."""
    for _ in range(SWEEP_ATTEMPTS - 1):
        try:
            return _sweep_once(client, blocks, fits)
        except WorkerLost:
            log.warning("dask: a worker was lost during the fit; fitting again on recomputed blocks")
    return _sweep_once(client, blocks, fits)


def _sweep_once(client, blocks: list, fits: Mapping[int, core.FitSettings]) -> dict[int, core.KMeansResult]:
    """The sweep through fresh actors, removed after it; :class:`WorkerLost` where one's worker was lost."""
    holders = _holders(client, blocks)
    try:
        return core.sweep(GatheredBlocks(_map_blocks(holders)), fits, engine="dask")
    except (OSError, RuntimeError) as exc:  # OSError: an actor's worker could not be reached
        if isinstance(exc, RuntimeError) and all(holder.status == "finished" for holder in holders):
            raise  # not a lost worker
        raise WorkerLost(
            f"a Dask worker holding rows of the fit was lost ({exc}) in each of {SWEEP_ATTEMPTS} attempts: "
            "check the workers' memory limit and logs"
        ) from None
    finally:
        client.cancel(holders)  # the actors go now, not when a reference cycle is collected


class BlockHolder:
    """A Dask actor on one worker: the blocks it holds (with their indices in the array), answered
    on as many threads as the worker has (Dask runs every actor call on one thread of its own)."""

    def __init__(self, blocks: list[tuple[int, LocalBlocks]], threads: int):
        self.blocks = blocks
        threads = min(threads, len(blocks))
        # One pool for the actor's life, not one per step (its threads end with the actor).
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def answer(self, fn: Callable[[LocalBlocks, int], Any]) -> list[tuple[int, Any]]:
        if self._pool is None:
            return [(index, fn(block, index)) for index, block in self.blocks]
        return list(self._pool.map(lambda held: (held[0], fn(held[1], held[0])), self.blocks))


def _holders(client, blocks: list) -> list:
    """A :class:`BlockHolder` future per worker that holds blocks, over the blocks it holds (which
    stay where they are). A block that failed to compute raises its error here."""
    from distributed import wait

    wait(blocks)
    for block in blocks:
        if block.status == "error":
            block.result()
    where, threads, by_worker = client.who_has(blocks), client.nthreads(), {}
    for index, block in enumerate(blocks):
        by_worker.setdefault(where[block.key][0], []).append((index, block))
    # Elsewhere only where that worker has left (its blocks are then recomputed for the actor).
    return [
        client.submit(
            BlockHolder,
            held,
            threads.get(worker, 1),
            workers=[worker],
            allow_other_workers=True,
            actor=True,
            pure=False,
        )
        for worker, held in by_worker.items()
    ]


def _map_blocks(holders: list) -> MapBlocks:
    """``fn(block, index)`` for every block, one actor call per worker at once; answers in block order."""
    actors = [holder.result() for holder in holders]

    def map_blocks(fn):
        calls = [actor.answer(fn) for actor in actors]
        answers = sorted((pair for call in calls for pair in call.result()), key=lambda pair: pair[0])
        return [answer for _, answer in answers]

    return map_blocks


def assign_dask(array, centres: np.ndarray):
    """Labels and distances to the nearest centre, as lazy Dask arrays."""
    from segcore.kmeans.kernels import nearest

    def label(chunk: np.ndarray) -> np.ndarray:
        labels, squared = nearest(chunk, centres.astype(chunk.dtype))
        return np.column_stack([labels, np.sqrt(squared)])

    pairs = array.rechunk({1: -1}).map_blocks(label, chunks=(array.chunks[0], (2,)), dtype=np.float64)
    return pairs[:, 0].astype(np.int64), pairs[:, 1]


def _open_table(path: str, columns: list[str]) -> str | None:
    """Open the table as the fit will (list its files, read a footer); the error, if any."""
    import dask.dataframe as dd

    try:
        dd.read_parquet(path, columns=columns)
    except Exception as exc:  # any failure to read is the answer, reported by the caller
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1].removeprefix(DASK_PREFIX)}"
    return None


def workers_failing_to_read(client, path: str, columns: list[str]) -> dict[str, str]:
    """The workers of ``client`` that cannot open the Parquet table at ``path``, with their error."""
    answers = client.run(_open_table, path, columns)
    return {worker: error for worker, error in sorted(answers.items()) if error}
