"""The pipeline's entry to the clustering core (:mod:`segcore.kmeans`, which knows nothing of the
pipeline): the one place that maps the config to the core's :class:`~segcore.kmeans.FitSettings`,
the configured engine fitted on the prepared feature table for every k of a sweep with the data
loaded once, the Dask client the config names, and the core's errors as the pipeline's (exit
codes 2 and 3).

Each engine reads the feature table on its own side: ``local`` and ``cuml`` bring the selected
columns into one process, ``spark`` and ``spark-mllib`` keep them in the Spark DataFrame, ``dask``
reads the same Parquet into a Dask array on its cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import numpy as np
from pyspark.sql import DataFrame, SparkSession

from segcore.config import DaskEngineConfig, KMeansConfig
from segcore.errors import EnvironmentProblem, TrainingError
from segcore.kmeans import FitSettings, KMeansResult, LocalBlocks, core
from segcore.kmeans.arrays import DEVICE_MODULES, DeviceUnavailable, device_namespace
from segcore.model.preparation import Preparation

Fits = dict[int, FitSettings]


def fit_settings(settings: KMeansConfig, init: np.ndarray | None = None) -> FitSettings:
    """The core's settings for the config's ``kmeans`` section (``init``: given initial centres)."""
    return FitSettings(
        seed=settings.seed,
        max_iter=settings.max_iter,
        tol=settings.tol,
        init=init,
        oversampling=settings.oversampling,
        init_rounds=settings.init_rounds,
    )


def fit_sweep(
    settings: KMeansConfig,
    inits: Mapping[int, np.ndarray | None],
    frame: DataFrame,
    path: str,
    preparation: Preparation,
) -> dict[int, KMeansResult]:
    """Fit every k of ``inits`` (k → initial centres, or ``None`` for seeded k-means||) on the
    prepared ``preparation.features`` of the feature table (``frame`` is that table in Spark,
    ``path`` its Parquet location), loading and preparing the data once for all of them."""
    fits = {k: fit_settings(settings, init) for k, init in inits.items()}
    try:
        return ENGINES[settings.engine](settings, fits, frame, path, preparation)
    except core.KMeansError as exc:  # the core's own: missing slots, a missing library
        raise TrainingError(str(exc)) from None
    except DeviceUnavailable as exc:  # kmeans.device=gpu where a worker has no CuPy or GPU
        raise EnvironmentProblem(str(exc)) from None


def _spark(settings: KMeansConfig, fits: Fits, frame: DataFrame, path: str, preparation: Preparation):
    from segcore.kmeans.engines.spark import sweep_spark

    return sweep_spark(
        frame,
        preparation.features,
        fits,
        dtype=settings.dtype,
        num_workers=settings.spark.num_workers,
        timeout=settings.spark.timeout_s,
        prepare=preparation.transform_array,
        array_module=DEVICE_MODULES[settings.device],
    )


def _mllib(settings: KMeansConfig, fits: Fits, frame: DataFrame, path: str, preparation: Preparation):
    from segcore.kmeans.engines.mllib import sweep_mllib

    return sweep_mllib(frame, preparation.features, fits, preparation.transform_array)


def _points(frame: DataFrame, preparation: Preparation) -> np.ndarray:
    return preparation.transform(frame.select(*preparation.features).toPandas())


def _local(settings: KMeansConfig, fits: Fits, frame: DataFrame, path: str, preparation: Preparation):
    blocks = LocalBlocks(
        _points(frame, preparation), dtype=settings.dtype, array_module=DEVICE_MODULES[settings.device]
    )
    return core.sweep(blocks, fits, engine="local")


def _cuml(settings: KMeansConfig, fits: Fits, frame: DataFrame, path: str, preparation: Preparation):
    from segcore.kmeans.engines.cuml import sweep_cuml

    return sweep_cuml(_points(frame, preparation), fits, settings.dtype)


def _dask(settings: KMeansConfig, fits: Fits, frame: DataFrame, path: str, preparation: Preparation):
    try:
        import dask.dataframe as dd
    except ImportError:
        raise TrainingError("kmeans.engine=dask needs Dask: pip install 'segcore[dask]'") from None
    from segcore.kmeans.engines.dask import partition_rows, sweep_dask

    with dask_client(settings.dask) as client:
        _check_workers_read(client, path, preparation.inputs)
        table = dd.read_parquet(path, columns=preparation.inputs)
        rows = partition_rows(table, preparation.transform, len(preparation.features), client)
        return sweep_dask(
            rows, fits, client=client, dtype=settings.dtype, array_module=DEVICE_MODULES[settings.device]
        )


Engine = Callable[[KMeansConfig, Fits, DataFrame, str, Preparation], dict[int, KMeansResult]]
ENGINES: dict[str, Engine] = {
    "local": _local,
    "spark": _spark,
    "dask": _dask,
    "cuml": _cuml,
    "spark-mllib": _mllib,
}


@contextmanager
def dask_client(settings: DaskEngineConfig) -> Iterator:
    """A client of the configured scheduler with at least one worker, or of a local cluster started
    for the job. Both waits (scheduler, first worker) last ``distributed.comm.timeouts.connect``."""
    import dask
    from distributed import Client, LocalCluster

    if not settings.scheduler:
        workers = dict(
            n_workers=settings.local_workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        )
        with LocalCluster(**workers) as cluster, Client(cluster) as client:
            yield client
        return
    address = settings.scheduler
    start = f"start one with `dask scheduler` and workers with `dask worker {address}`"
    try:
        client = Client(address)
    except (OSError, ValueError) as exc:
        raise EnvironmentProblem(
            f"cannot reach the Dask scheduler {address} (kmeans.dask.scheduler): {exc}; {start}, "
            "or set kmeans.dask.scheduler=null to start a local cluster for the job"
        ) from None
    with client:
        wait = dask.config.get("distributed.comm.timeouts.connect")
        try:
            client.wait_for_workers(1, timeout=wait)
        except TimeoutError:
            raise EnvironmentProblem(
                f"the Dask scheduler {address} (kmeans.dask.scheduler) has no workers after {wait}: "
                f"start them with `dask worker {address}`"
            ) from None
        yield client


def _check_workers_read(client, path: str, columns: list[str]) -> None:
    from segcore.kmeans.engines.dask import workers_failing_to_read

    failing = workers_failing_to_read(client, path, columns)
    if failing:
        errors = "; ".join(f"{worker}: {error}" for worker, error in failing.items())
        raise EnvironmentProblem(
            f"Dask workers of the scheduler {client.scheduler.address} cannot read the feature table "
            f"{path} ({errors}). Every worker must read the path the driver reads: put the feature "
            "table on a file system mounted at the same path on every worker, or set features.output "
            "to an object-store URI (s3://, gs://, abfs://) the workers can read"
        )


def engine_workers(spark: SparkSession, settings: KMeansConfig) -> int:
    """How many workers (Dask: worker processes) the configured engine fits with, checked before
    any work: a Spark cluster without that many task slots, or an unreachable Dask scheduler,
    stops the stage here."""
    engine = settings.engine
    if engine == "local":  # the driver's own device
        try:
            device_namespace(settings.device)
        except DeviceUnavailable as exc:
            raise EnvironmentProblem(str(exc)) from None
    if engine == "spark":  # a barrier fit: the cluster must have that many task slots
        from segcore.kmeans.engines.spark import check_slots

        try:
            return check_slots(spark.sparkContext, settings.spark.num_workers)
        except core.KMeansError as exc:
            raise TrainingError(str(exc)) from None
    if engine == "spark-mllib":
        return settings.spark.num_workers or spark.sparkContext.defaultParallelism
    if engine == "dask":
        if settings.dask.scheduler is None:
            return settings.dask.local_workers
        with dask_client(settings.dask) as client:  # exit code 3 when unreachable or without workers
            return len(client.scheduler_info()["workers"])
    return 1
