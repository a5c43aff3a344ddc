"""Segments over time: each scoring's segment sizes and revenue shares, and who moved between the
two latest scorings. Spark reads the partitions; the driver gets per-segment rows and the k×k
migration matrix only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from segcore.config import Config
from segcore.drift.figures import migration_matrix
from segcore.score.kpis import KPI_TABLE_COLUMNS
from segcore.storage.partitions import partition_dates, read_partition

HISTORY_COLUMNS = [
    "model_version",
    "customers",
    "share",
    "revenue_share",
    "high_risk_share",
    "mean_expected_value",
]
# Columns a profile may lack: scored before model versions were recorded, a model without
# monetary_total, a scoring without value scores.
_OPTIONAL = {
    "model_version": "string",
    "revenue_share": "double",
    "high_risk_share": "double",
    "mean_expected_value": "double",
}


@dataclass(frozen=True)
class History:
    # as_of and HISTORY_COLUMNS per segment of each scoring (null where a profile lacks one)
    segments: pd.DataFrame
    kpis: pd.DataFrame  # as_of and segcore.score.kpis.KPI_TABLE_COLUMNS per segment of each scoring
    migration: pd.DataFrame | None  # drift.migration_matrix of the two latest scorings
    migration_dates: tuple[dt.date, dt.date] | None


def segment_history(spark: SparkSession, config: Config) -> History:
    """The profiles and KPIs of every scoring (``score.profiles_output``, ``score.kpis_output``) and
    the migration between the two latest scorings (``score.output``)."""
    segments = _every_scoring(
        spark, config, config.score.profiles_output, ["segment_id", "segment_name", *HISTORY_COLUMNS]
    )
    kpis = _every_scoring(spark, config, config.score.kpis_output, list(KPI_TABLE_COLUMNS))
    scored = partition_dates(spark, config.path(config.score.output))
    if len(scored) < 2:
        return History(segments, kpis, None, None)
    before, after = (
        read_partition(spark, config.partition(config.score.output, d), "segments", "run `segcore score`")
        for d in scored[-2:]
    )
    return History(segments, kpis, migration_matrix(before, after), (scored[-2], scored[-1]))


def _every_scoring(spark: SparkSession, config: Config, output: str, columns: list[str]) -> pd.DataFrame:
    """``columns`` of every committed partition of the per-segment table ``output``, with as_of."""
    frames = []
    for as_of in partition_dates(spark, config.path(output)):
        table = read_partition(spark, config.partition(output, as_of), output, "run `segcore score`")
        for column, kind in _OPTIONAL.items():
            if column in columns and column not in table.columns:
                table = table.withColumn(column, F.lit(None).cast(kind))
        frames.append(table.select(*columns).toPandas().assign(as_of=as_of))
    if not frames:
        return pd.DataFrame(columns=["as_of", *columns])
    return pd.concat(frames, ignore_index=True)[["as_of", *columns]]
