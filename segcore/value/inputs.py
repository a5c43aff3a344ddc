"""The value models' inputs per customer, in Spark, from the orders of
:func:`segcore.features.aggregates.orders_of_lines`.

A purchase day is a day with a purchase order; its spend is the net amount of that day's purchase
orders (returns within an order netted, return-only orders left out). Before ``as_of``:

- ``repeat_purchases`` (x): purchase days after the first one;
- ``repeat_span_days`` (t_x): days from the first to the last purchase day;
- ``observed_days`` (T): days from the first purchase day to the day before ``as_of``, the end of
  the calibration period (:data:`NO_PURCHASE` for a customer without a purchase);
- ``repeat_spend_mean``: mean spend per repeat purchase day (0 without one).

The backtest's inputs are the same columns at its cutoff (:func:`backtest_cutoff`), which the feature
job writes with the cutoff beside them (:data:`CUTOFF_FILE`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from segcore.config import Config

INPUT_COLUMNS = ("repeat_purchases", "repeat_span_days", "observed_days", "repeat_spend_mean")
NO_PURCHASE = -1.0
# Beside the backtest's inputs in their partition (value.backtest_output): {"cutoff": "YYYY-MM-DD"}.
CUTOFF_FILE = "_segcore_backtest_cutoff.json"


def backtest_cutoff(config: Config) -> dt.date:
    """Where the backtest's fit ends and its horizon starts: ``as_of − value.horizon_days``."""
    return config.as_of - dt.timedelta(days=config.value.horizon_days)


def cutoff_record(cutoff: dt.date) -> str:
    """The text of :data:`CUTOFF_FILE` beside the inputs for ``cutoff``."""
    return json.dumps({"cutoff": str(cutoff)})


def purchase_days(orders: DataFrame) -> DataFrame:
    """customer_id, day, spend: one row per customer and purchase day."""
    return orders.where("purchase").groupBy("customer_id", "day").agg(F.sum("net").alias("spend"))


def backtest_inputs(days: DataFrame, cutoff: dt.date, end: dt.date) -> DataFrame:
    """:func:`inputs_at_cutoff` from the purchase days (of :func:`purchase_days`): one aggregation."""
    day = F.col("day")
    after = (day >= F.lit(cutoff)) & (day < F.lit(end))
    summary = days.groupBy("customer_id").agg(
        *_summary(day < F.lit(cutoff)),
        F.count(F.when(after, F.lit(1))).cast("double").alias("actual_purchases"),
    )
    return inputs_at_cutoff(summary, cutoff)


def inputs_at_cutoff(summary: DataFrame, cutoff: dt.date) -> DataFrame:
    """:data:`INPUT_COLUMNS` as of ``cutoff`` and ``actual_purchases`` (the purchase days from
    ``cutoff`` on), per customer with a purchase day before ``cutoff``, from ``summary``: the
    purchase-day summary before ``cutoff`` that :func:`input_columns` reads, and
    ``actual_purchases``, per customer. (The feature job builds ``summary`` in its pass over the
    orders, :func:`segcore.features.aggregates.backtest_summary`.)"""
    inputs = [column.alias(name) for name, column in input_columns(cutoff).items()]
    return summary.where(F.col("_days") > 0).select("customer_id", *inputs, "actual_purchases")


def _summary(counted: Column) -> list[Column]:
    """The purchase-day summary :func:`input_columns` reads, over the days where ``counted``."""
    day = F.when(counted, F.col("day"))
    spend = F.when(counted, F.col("spend"))
    return [
        F.count(day).alias("_days"),
        F.min(day).alias("_first"),
        F.max(day).alias("_last"),
        F.sum(spend).alias("_spend"),
        F.min_by(spend, day).alias("_first_spend"),
    ]


def input_columns(as_of: dt.date) -> dict[str, Column]:
    """:data:`INPUT_COLUMNS` from a customer's purchase-day summary: ``_days`` (purchase days),
    ``_first`` and ``_last`` (days), ``_spend`` (over every purchase day), ``_first_spend`` (the
    first day's)."""
    repeats = (F.col("_days") - 1).cast("double")
    repeat_spend = F.try_divide(F.col("_spend") - F.col("_first_spend"), repeats)
    return {
        "repeat_purchases": repeats,
        "repeat_span_days": F.datediff("_last", "_first").cast("double"),
        "observed_days": F.datediff(F.date_sub(F.lit(as_of), 1), "_first").cast("double"),
        "repeat_spend_mean": F.coalesce(repeat_spend, F.lit(0.0)).cast("double"),
    }
