"""Shared fixtures: one real local SparkSession per test session, a small sample lake, and the
whole pipeline run once on it."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ.pop("MLFLOW_TRACKING_URI", None)

from segcore.config import Config, build_config  # noqa: E402
from segcore.synth import generate_lake  # noqa: E402

AS_OF = dt.date(2026, 6, 30)
LAKE_CUSTOMERS = 3000


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("segcore-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def lake(tmp_path_factory) -> Path:
    """A sample lake whose data ends on AS_OF."""
    path = tmp_path_factory.mktemp("lake") / "lake"
    generate_lake(path, LAKE_CUSTOMERS, seed=11, end=AS_OF)
    return path


def make_config(workdir: Path, lake: Path, **overrides) -> Config:
    """A config over ``lake`` with outputs and MLflow under ``workdir``."""
    data = {
        "workdir": str(workdir),
        "as_of": AS_OF.isoformat(),
        "lake": {table: {"path": str(lake / table)} for table in ("customers", "orders", "events")},
    }
    for key, value in overrides.items():
        node = data
        *parents, last = key.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return build_config(data)


@pytest.fixture(scope="session")
def pipeline(spark, lake, tmp_path_factory):
    """generate -> features -> train -> score, run once for the end-to-end assertions."""
    from segcore.features import run_features
    from segcore.score import score
    from segcore.train import train

    workdir = tmp_path_factory.mktemp("pipeline")
    config = make_config(workdir, lake)
    features = run_features(spark, config)
    trained = train(spark, config)
    scored = score(spark, config)
    return {"config": config, "features": features, "train": trained, "score": scored}
