"""What training reads: the committed feature partition, its customer count, the preparation
fitted on it, and the seeded sample of prepared points that reaches the driver."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segcore.config import Config
from segcore.errors import LakeError
from segcore.lake.tables import INPUT_ROWS_FILE
from segcore.model.assign import sample_rows
from segcore.model.preparation import Preparation
from segcore.runtime.logs import step
from segcore.storage.hadoop import read_text
from segcore.storage.partitions import read_partition, resolve_partition
from segcore.value.model import ValueModel


@dataclass(frozen=True)
class TrainingInputs:
    frame: DataFrame  # the feature table in Spark, with the value features it clusters on
    path: str  # the folder of its committed version (what Dask and the fingerprint read)
    rows: int
    preparation: Preparation
    points: np.ndarray  # the prepared sample for quality metrics, stability and the projection


def read_features(spark: SparkSession, config: Config) -> tuple[DataFrame, str]:
    """The committed feature partition and the folder holding it."""
    hint = f"run `segcore features` for as_of={config.as_of} first"
    folder = resolve_partition(spark, config.partition(config.features.output), "feature table", hint)
    return read_partition(spark, folder, "feature table", hint), folder


def read_input_rows(spark: SparkSession, path: str) -> dict[str, int]:
    """The input row counts the features stage recorded beside its partition (empty if none)."""
    text = read_text(spark, f"{path}/{INPUT_ROWS_FILE}")
    return json.loads(text) if text else {}


def count_customers(frame: DataFrame, path: str) -> int:
    """The feature table's rows, refusing duplicate customer ids (one Spark aggregation)."""
    rows, customers = frame.agg(F.count(F.lit(1)), F.count_distinct("customer_id")).first()
    if rows != customers:
        raise LakeError(
            f"feature table {path} has {rows - customers:,} duplicate customer_id row(s) ({rows:,} rows, "
            f"{customers:,} customers): rebuild it with `segcore features`, or remove the duplicates"
        )
    return rows


def prepare_inputs(
    config: Config, frame: DataFrame, path: str, value_model: ValueModel | None = None
) -> TrainingInputs:
    """Count the customers, fit the preparation (value features derived by ``value_model``) and
    draw the metrics sample."""
    settings = config.train
    features = list(dict.fromkeys(settings.features))
    with step("train", "prepare features") as figures:
        rows = figures["customers"] = count_customers(frame, path)
        preparation = Preparation.fit(
            frame, features, settings.log_features, settings.clip_quantile, value_model=value_model
        )
        frame = preparation.with_derived_spark(frame)
    with step("train", "draw the metrics sample") as figures:
        sample = sample_rows(frame.select(*features), rows, settings.silhouette_sample, config.kmeans.seed)
        points = preparation.transform(sample)
        figures["rows"] = len(points)
    return TrainingInputs(frame, path, rows, preparation, points)
