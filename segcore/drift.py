"""Drift between two scorings: who moved between segments, how shares and features shifted.

Segments are matched by id: ids are stable by construction (:mod:`segcore.align`), so segment 3
in May and segment 3 in June are the same segment even when the model version differs. Every
figure is a Spark aggregation; only the k×k matrix and per-feature figures reach the driver.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# The pseudo-segment of customers only in the later scoring (from) or only in the earlier one (to).
NEW = DEPARTED = -1
MATRIX_COLUMNS = ["from_segment", "to_segment", "customers", "share", "from_name", "to_name"]


def _side(frame: DataFrame, role: str) -> DataFrame:
    names = F.col("segment_name") if "segment_name" in frame.columns else F.lit(None).cast("string")
    return frame.select(
        "customer_id",
        F.col("segment_id").cast("long").alias(f"{role}_segment"),
        names.alias(f"{role}_name"),
    )


def migration_matrix(before: DataFrame, after: DataFrame) -> pd.DataFrame:
    """Customers moving from each segment of ``before`` to each segment of ``after`` (scorings:
    customer_id, segment_id, optional segment_name), one row per non-empty pair:
    ``from_segment, to_segment, customers, share, from_name, to_name``. Customers only in
    ``after`` come from segment -1 ("new"), customers only in ``before`` go to -1 ("departed");
    ``share`` is the pair's customers over the from_segment's customers. One Spark aggregation;
    the driver gets at most (k+1)² rows."""
    joined = _side(before, "from").join(_side(after, "to"), "customer_id", "full_outer")
    pairs = (
        joined.groupBy(
            F.coalesce("from_segment", F.lit(NEW)).alias("from_segment"),
            F.coalesce("to_segment", F.lit(DEPARTED)).alias("to_segment"),
        )
        .agg(
            F.count(F.lit(1)).alias("customers"),
            F.first("from_name", ignorenulls=True).alias("from_name"),
            F.first("to_name", ignorenulls=True).alias("to_name"),
        )
        .toPandas()
    )
    pairs["from_name"] = pairs["from_name"].where(pairs["from_segment"] != NEW, "new")
    pairs["to_name"] = pairs["to_name"].where(pairs["to_segment"] != DEPARTED, "departed")
    totals = pairs.groupby("from_segment")["customers"].transform("sum")
    pairs["customers"] = pairs["customers"].astype("int64")
    pairs["share"] = pairs["customers"] / totals
    return pairs.sort_values(["from_segment", "to_segment"], ignore_index=True)[MATRIX_COLUMNS]
