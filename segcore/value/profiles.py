"""Value figures per segment, aggregated in Spark from scored customers."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segcore.config import ValueConfig

# Columns each segment gets in the profiles, in order.
VALUE_PROFILE_COLUMNS = (
    "high_risk_share",
    "mean_churn_risk",
    "mean_expected_purchases",
    "mean_expected_value",
    "expected_value",
)


def value_by_segment(scored: DataFrame, settings: ValueConfig) -> pd.DataFrame:
    """segment_id and :data:`VALUE_PROFILE_COLUMNS`: the share of customers in the highest risk band
    (of all the segment's customers), mean churn risk, expected purchases and value (of those with a
    purchase) and the segment's total expected value over the horizon."""
    high = (F.col("churn_risk_band") == F.lit(settings.high_risk_band())).cast("double")
    return (
        scored.groupBy("segment_id")
        .agg(
            F.avg(high).alias("high_risk_share"),
            F.avg("churn_risk").alias("mean_churn_risk"),
            F.avg("expected_purchases").alias("mean_expected_purchases"),
            F.avg("expected_value").alias("mean_expected_value"),
            F.coalesce(F.sum("expected_value"), F.lit(0.0)).alias("expected_value"),
        )
        .toPandas()
    )
