"""The ``spark`` engine: the rows stay on the executors, and the whole fit is one barrier stage.

Each barrier task loads its partition into NumPy once, the tasks exchange rank 0's address once
through ``BarrierTaskContext.allGather``, and then every step of k-means|| and Lloyd is an
all-gather of O(k·d) partial results over the tasks' own authenticated sockets
(:mod:`segcore.kmeans.engines.collective`). Every task runs the same deterministic driver logic
(:func:`segcore.kmeans.core.fit`) on the same gathered numbers, so all agree; rank 0 returns the
result. A sweep over several k fits them all in the same stage, on the rows loaded once. The driver
only ever holds the results: O(k·d) each.
"""

from __future__ import annotations

import pickle
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark import SparkContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from threadpoolctl import threadpool_limits

from segcore.kmeans import core
from segcore.kmeans.arrays import GPU_HELP, DeviceUnavailable
from segcore.kmeans.engines.collective import StarCollective
from segcore.kmeans.engines.local import LocalBlocks
from segcore.kmeans.gathered import GatheredBlocks
from segcore.kmeans.kernels import nearest

Prepare = Callable[[np.ndarray], np.ndarray]
MAX_PARTITION_NUM = "spark.sql.files.maxPartitionNum"
REGISTRATION_WAIT_S = 30.0  # Spark's own spark.scheduler.minRegisteredResourcesWaitingTime
# Held by a fit from its session setting to its restoring it: fits of one process, which share the
# SparkContext's task slots and may share a session's settings, run their barrier stages in turn.
_ONE_FIT_AT_A_TIME = threading.Lock()


class SlotsError(core.KMeansError):
    """The barrier stage needs more task slots than the cluster has."""


def check_slots(context: SparkContext, num_workers: int | None, wait_s: float = REGISTRATION_WAIT_S) -> int:
    """The number of barrier tasks a fit runs (``num_workers``, default all slots); raise
    :class:`SlotsError` where the cluster has fewer task slots. On a cluster, executors that are
    still registering are waited for, up to ``wait_s``."""
    deadline = time.monotonic() + (0.0 if context.master.startswith("local") else wait_s)
    while num_workers and context.defaultParallelism < num_workers and time.monotonic() < deadline:
        time.sleep(0.5)
    workers = num_workers or context.defaultParallelism
    if workers > context.defaultParallelism:
        raise SlotsError(
            f"kmeans.spark.num_workers={workers} needs that many task slots at once (barrier mode), "
            f"but the cluster has {context.defaultParallelism}: lower it or add executors"
        )
    return workers


def _to_numpy(batches: Iterator[pa.RecordBatch], n_features: int, dtype: str) -> np.ndarray:
    """One (rows, features) array from Arrow batches of numeric columns."""
    batches = [b for b in batches if b.num_rows]
    data = np.empty((sum(b.num_rows for b in batches), n_features), dtype=dtype)
    start = 0
    for batch in batches:
        for j in range(n_features):
            data[start : start + batch.num_rows, j] = batch.column(j).to_numpy(zero_copy_only=False)
        start += batch.num_rows
    return data


def _collective(context, secret: bytes, timeout: float) -> StarCollective:
    from segcore.kmeans.engines.collective import HANDSHAKE_TIMEOUT_S, executor_host

    rank, world = context.partitionId(), len(context.getTaskInfos())
    if world == 1:
        return StarCollective(0, 1, {})
    handshake = min(HANDSHAKE_TIMEOUT_S, timeout)
    if rank == 0:
        # The executor's own address as Spark reports it, not every interface of the host.
        host = executor_host(context.getTaskInfos()[0].address)
        listener = socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        context.allGather(f"[{host}]:{listener.getsockname()[1]}")
        return StarCollective.serve(listener, world, secret, timeout, handshake)
    host, port = context.allGather("")[0].rsplit(":", 1)
    return StarCollective.join((host.strip("[]"), int(port)), rank, world, secret, timeout, handshake)


def fit_spark(
    frame: DataFrame, columns: list[str], k: int, settings: core.FitSettings, **options: Any
) -> core.KMeansResult:
    """k-means over ``columns`` of a Spark DataFrame (``options``: those of :func:`sweep_spark`)."""
    return sweep_spark(frame, columns, {k: settings}, **options)[k]


def sweep_spark(
    frame: DataFrame,
    columns: list[str],
    fits: Mapping[int, core.FitSettings],
    *,
    dtype: str = "float64",
    num_workers: int | None = None,
    timeout: float = 300.0,
    prepare: Prepare | None = None,
    array_module: str = "numpy",
) -> dict[int, core.KMeansResult]:
    """k-means for every ``k`` of ``fits`` (k → its settings) over ``columns`` of a Spark
    DataFrame, in ONE barrier stage: each task loads its partition once, optionally mapping its rows
    through ``prepare`` (e.g. the fitted feature preparation), and all fit every ``k`` in turn (as
    spark-rapids-ml's ``fitMultiple``). Each result equals the fit of that ``k`` alone. With
    ``array_module="cupy"`` each task holds its rows on the GPU Spark assigned it."""
    workers = check_slots(frame.sparkSession.sparkContext, num_workers)
    with _files_packed_into(frame.sparkSession, workers):
        data = frame.select(*[F.col(c).cast("double") for c in columns])
        # Input partitions as many as the barrier tasks are kept as they are, even if unequal (a
        # shuffle of 2M rows took 2.5 s of a 5 s fit). Otherwise one shuffle up front: a barrier
        # stage must not narrow its input, and round-robin partitions hold equal numbers of rows.
        if data.rdd.getNumPartitions() != workers:
            data = data.repartition(workers)
        return _run_barrier_stage(data, columns, fits, dtype, timeout, prepare, array_module)


@contextmanager
def _files_packed_into(spark: SparkSession, partitions: int) -> Iterator[None]:
    """Within it, Spark packs a scan's files into about ``partitions`` partitions where they would
    make more (``spark.sql.files.maxPartitionNum``), so that a table of more files than barrier tasks
    reaches them without a shuffle (10M rows in 10 files, 20 iterations: 21.0-29.4 s with the shuffle,
    12.5-14.8 s without). One fit of the process at a time: a second one waits, so that neither
    takes the other's setting for the session's own and leaves it set."""
    with _ONE_FIT_AT_A_TIME:
        previous = spark.conf.get(MAX_PARTITION_NUM, None)
        spark.conf.set(MAX_PARTITION_NUM, str(partitions))
        try:
            yield
        finally:
            if previous is None:
                spark.conf.unset(MAX_PARTITION_NUM)
            else:
                spark.conf.set(MAX_PARTITION_NUM, previous)


def _run_barrier_stage(
    data: DataFrame,
    columns: list[str],
    fits: Mapping[int, core.FitSettings],
    dtype: str,
    timeout: float,
    prepare: Prepare | None,
    array_module: str,
) -> dict[int, core.KMeansResult]:
    """Every fit of ``fits`` in one barrier stage, a task per partition of ``data``; rank 0's results."""
    secret = secrets.token_bytes(32)
    n_features = len(columns)
    fits = dict(fits)

    def train(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import BarrierTaskContext

        task = BarrierTaskContext.get()
        if array_module == "cupy":
            use_assigned_gpu(task)
        rows = _to_numpy(batches, n_features, "float64")
        block = LocalBlocks(prepare(rows) if prepare else rows, dtype=dtype, array_module=array_module)
        # One task per core: BLAS threads of their own would only fight the other tasks.
        with threadpool_limits(limits=task.cpus()), _collective(task, secret, timeout) as comm:
            ops = GatheredBlocks(lambda fn: comm.allgather(fn(block, comm.rank)))
            results = core.sweep(ops, fits, engine="spark")
        if comm.rank == 0:
            yield pa.RecordBatch.from_pydict({"result": [pickle.dumps(results)]})

    # The shuffle after the barrier stage makes it a map stage, which Spark retries as a whole
    # when a task fails (a failed barrier result stage is not retried).
    try:
        rows = data.mapInArrow(train, "result binary", barrier=True).repartition(1).collect()
    except Exception as exc:  # a task's error, inside Spark's: a missing GPU is the user's to fix
        refusal = re.search(r"DeviceUnavailable: (.*)", str(exc))
        if refusal:
            raise DeviceUnavailable(refusal.group(1)) from None
        raise
    return pickle.loads(rows[0]["result"])


def use_assigned_gpu(task) -> None:
    """Make the GPU that Spark assigned ``task`` (``spark.task.resource.gpu.amount``) CuPy's
    current device, as spark-rapids-ml places its work."""
    gpus = task.resources().get("gpu")
    if gpus is None or not gpus.addresses:
        raise DeviceUnavailable(
            "kmeans.device=gpu with the spark engine needs a GPU per barrier task: start executors "
            "with spark.executor.resource.gpu.amount=1 and spark.task.resource.gpu.amount=1 (and a GPU "
            "discovery script), or set kmeans.device=cpu"
        )
    try:
        import cupy
    except ImportError:
        raise DeviceUnavailable(f"kmeans.device=gpu needs CuPy on the executors: {GPU_HELP}") from None
    cupy.cuda.Device(int(gpus.addresses[0])).use()  # LocalBlocks then checks it works


def assign_spark(
    frame: DataFrame, columns: list[str], centres: np.ndarray, prepare: Prepare | None = None
) -> DataFrame:
    """``frame`` with ``label`` and ``distance`` (to the nearest centre) columns added."""
    schema = T.StructType(
        [
            *frame.schema.fields,
            T.StructField("label", T.IntegerType()),
            T.StructField("distance", T.DoubleType()),
        ]
    )
    n_features = len(columns)

    def label(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            rows = _to_numpy(iter([batch.select(columns)]), n_features, "float64")
            labels, squared = nearest(prepare(rows) if prepare else rows, centres)
            yield batch.append_column("label", pa.array(labels, pa.int32())).append_column(
                "distance", pa.array(np.sqrt(squared))
            )

    return frame.mapInArrow(label, schema)
