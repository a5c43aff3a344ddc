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
from segcore.storage.partitions import partition_dates, read_partition

HISTORY_COLUMNS = ["customers", "share", "revenue_share", "high_risk_share"]


@dataclass(frozen=True)
class History:
    # as_of, segment_id, segment_name, customers, share, revenue_share, high_risk_share (NaN for a
    # scoring without value scores)
    segments: pd.DataFrame
    migration: pd.DataFrame | None  # drift.migration_matrix of the two latest scorings
    migration_dates: tuple[dt.date, dt.date] | None


def segment_history(spark: SparkSession, config: Config) -> History:
    """The profiles of every scoring (``score.profiles_output``) and the migration between the two
    latest scorings (``score.output``)."""
    frames = []
    for as_of in partition_dates(spark, config.path(config.score.profiles_output)):
        profile = read_partition(
            spark, config.partition(config.score.profiles_output, as_of), "profiles", "run `segcore score`"
        )
        for column in ("revenue_share", "high_risk_share"):  # a model without monetary_total, value scores
            if column not in profile.columns:
                profile = profile.withColumn(column, F.lit(None).cast("double"))
        frames.append(
            profile.select("segment_id", "segment_name", *HISTORY_COLUMNS).toPandas().assign(as_of=as_of)
        )
    columns = ["as_of", "segment_id", "segment_name", *HISTORY_COLUMNS]
    segments = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    scored = partition_dates(spark, config.path(config.score.output))
    if len(scored) < 2:
        return History(segments, None, None)
    before, after = (
        read_partition(spark, config.partition(config.score.output, d), "segments", "run `segcore score`")
        for d in scored[-2:]
    )
    return History(segments, migration_matrix(before, after), (scored[-2], scored[-1]))
