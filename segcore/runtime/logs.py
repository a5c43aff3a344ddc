"""Logging a scheduler can read: timestamped lines, one per stage step with its duration, and
Spark's and MLflow's chatter kept at ERROR unless ``--verbose``."""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger("segcore")


def setup_logging(verbose: bool = False) -> None:
    """Timestamped segcore lines (INFO) on stderr; everything else at WARNING with ``verbose``, else ERROR."""
    quiet = "WARNING" if verbose else "ERROR"
    logging.basicConfig(level=quiet, format=FORMAT, force=True)
    log.setLevel(logging.INFO)
    # Dask sets its loggers' levels from its config when distributed is imported.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", quiet.lower())
    logging.getLogger("distributed").setLevel(quiet)
    # MLflow sets its own loggers' level from this variable when it is imported (if it is already).
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", quiet)
    logging.getLogger("mlflow").setLevel(os.environ["MLFLOW_LOGGING_LEVEL"].upper())
    if not verbose:
        warnings.filterwarnings("ignore", module="mlflow")
        warnings.filterwarnings("ignore", category=FutureWarning)


def quiet_spark(spark: Any, verbose: bool = False) -> None:
    """Spark's own log level for the rest of the job. Without ``verbose``, PySpark does not log the
    SQL errors it raises (the JVM's stack as JSON): segcore reports those it expects in one line."""
    from pyspark.logger import PySparkLogger

    spark.sparkContext.setLogLevel("WARN" if verbose else "ERROR")
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.NOTSET if verbose else logging.CRITICAL)


@contextmanager
def step(stage: str, what: str) -> Iterator[dict[str, Any]]:
    """Log ``stage: what`` with its duration once it is done; figures put into the yielded dict
    (row counts, k ...) are logged with it."""
    figures: dict[str, Any] = {}
    started = time.perf_counter()
    yield figures
    details = "".join(f", {key}={_text(value)}" for key, value in figures.items())
    log.info("%s: %s done in %.1f s%s", stage, what, time.perf_counter() - started, details)


def _text(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)
