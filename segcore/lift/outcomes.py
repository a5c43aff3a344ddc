"""What each member of an audience did in a window, and the per-group sums of it, in Spark.

Orders are the rows of :func:`segcore.features.orders.orders_before` (returns netted within an
order, return-only orders no purchase). Per member, in ``[start, end)``: ``conversion`` (1 with a
purchase order), ``orders`` (purchase orders), ``revenue`` (net amount of all orders, returns
subtracted), and ``retention``: ``conversion`` for the customers who bought in the window of the
same length before ``start``, null for the others.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segcore.lift.statistics import METRICS


def _between(orders: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    return orders.where((F.col("day") >= F.lit(start)) & (F.col("day") < F.lit(end)))


def member_outcomes(members: DataFrame, orders: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """``members`` (customer_id, group, segment_id, segment_name) with the :data:`METRICS` columns."""
    window = (
        _between(orders, start, end)
        .groupBy("customer_id")
        .agg(
            F.count(F.when(F.col("purchase"), F.lit(1))).cast("double").alias("orders"),
            F.sum("net").cast("double").alias("revenue"),
        )
    )
    before = _between(orders.where("purchase"), start - (end - start), start).select("customer_id").distinct()
    outcomes = (
        members.join(window, "customer_id", "left")
        .join(before.withColumn("_bought_before", F.lit(True)), "customer_id", "left")
        .fillna(0.0, ["orders", "revenue"])
    )
    conversion = (F.col("orders") > 0).cast("double")
    return outcomes.withColumns(
        {
            "conversion": conversion,
            "retention": F.when(F.col("_bought_before"), conversion),
        }
    ).drop("_bought_before")


def group_sums(outcomes: DataFrame) -> pd.DataFrame:
    """Per segment and group: ``n_<m>``, ``sum_<m>`` and ``squares_<m>`` of every metric (nulls
    left out), as :func:`segcore.lift.statistics.lift_table` takes them."""
    sums = []
    for metric in METRICS:
        value = F.col(metric)
        sums += [
            F.count(value).alias(f"n_{metric}"),
            F.coalesce(F.sum(value), F.lit(0.0)).alias(f"sum_{metric}"),
            F.coalesce(F.sum(value * value), F.lit(0.0)).alias(f"squares_{metric}"),
        ]
    return outcomes.groupBy("segment_id", "segment_name", "group").agg(*sums).toPandas()
