"""Spark feature builders: one row per customer as of a date, from rows before that date only.

Groups (``features.groups``):

- ``rfm``: recency_days, frequency, monetary_total, monetary_mean, tenure_days,
  order_interval_cv, spend_trend
- ``behavioural``: category_<c>_share, channel_<c>_share, discount_rate, return_rate,
  events_per_active_month, sessions_per_active_month
- ``demographic``: age, age_band, income_band_index
- ``geographic``: region_<r> (0/1)
- ``technographic``: device_<d>_share, os_<o>_share
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from segcore.config import Config
from segcore.lake import INPUT_ROWS_FILE, check_customers, check_orders, read_table, write_partition

AGE_BANDS = (25, 35, 45, 55, 65)  # upper bounds: <25 is band 0, ..., >=65 is band 5
TREND_DAYS = 90
SECONDS_PER_DAY = 86_400.0

NEEDED_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "rfm": {"customers": ("customer_id", "signup_date"), "orders": ("customer_id", "order_ts", "amount")},
    "behavioural": {
        "orders": ("customer_id", "order_ts", "amount", "category", "channel", "discount", "returned"),
        "events": ("customer_id", "event_ts", "session_id"),
    },
    "demographic": {"customers": ("customer_id", "birth_year", "income_band")},
    "geographic": {"customers": ("customer_id", "region")},
    "technographic": {"events": ("customer_id", "event_ts", "device", "os")},
}


@dataclass(frozen=True)
class FeatureResult:
    path: str
    customers: int
    feature_columns: list[str]
    input_rows: dict[str, int]


def slug(value: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", value.lower()).strip("_")


def _needed(groups: list[str]) -> dict[str, list[str]]:
    tables: dict[str, list[str]] = {"customers": ["customer_id", "signup_date"]}
    for group in groups:
        for table, columns in NEEDED_COLUMNS[group].items():
            tables.setdefault(table, [])
            tables[table] += [c for c in columns if c not in tables[table]]
    return tables


def _share(column: str, value: str) -> Column:
    return F.avg((F.col(column) == F.lit(value)).cast("double"))


def _order_features(orders: DataFrame, config: Config, groups: list[str]) -> DataFrame:
    as_of = F.lit(config.as_of)
    day = F.to_date("order_ts")
    by_customer = Window.partitionBy("customer_id").orderBy("order_ts")
    gap_days = (
        F.unix_timestamp(F.col("order_ts").cast("timestamp"))
        - F.unix_timestamp(F.lag("order_ts").over(by_customer).cast("timestamp"))
    ) / SECONDS_PER_DAY
    orders = orders.withColumn("gap_days", gap_days)
    recent = F.when(day >= F.date_sub(as_of, TREND_DAYS), F.col("amount")).otherwise(0.0)
    prior = F.when(
        (day < F.date_sub(as_of, TREND_DAYS)) & (day >= F.date_sub(as_of, 2 * TREND_DAYS)),
        F.col("amount"),
    ).otherwise(0.0)
    aggregates: list[Column] = []
    if "rfm" in groups:
        aggregates += [
            F.count(F.lit(1)).cast("double").alias("frequency"),
            F.sum("amount").cast("double").alias("monetary_total"),
            F.avg("amount").cast("double").alias("monetary_mean"),
            F.max(day).alias("last_order_day"),
            F.coalesce(F.try_divide(F.stddev_pop("gap_days"), F.avg("gap_days")), F.lit(0.0)).alias(
                "order_interval_cv"
            ),
            F.sum(recent).alias("_recent"),
            F.sum(prior).alias("_prior"),
        ]
    if "behavioural" in groups:
        features = config.features
        aggregates += [_share("category", c).alias(f"category_{slug(c)}_share") for c in features.categories]
        aggregates += [_share("channel", c).alias(f"channel_{slug(c)}_share") for c in features.channels]
        aggregates += [
            F.avg((F.col("discount") > 0).cast("double")).alias("discount_rate"),
            F.avg(F.col("returned").cast("double")).alias("return_rate"),
        ]
    frame = orders.groupBy("customer_id").agg(*aggregates)
    if "rfm" in groups:
        trend = F.try_divide(F.col("_recent") - F.col("_prior"), F.col("_recent") + F.col("_prior"))
        frame = frame.withColumn("spend_trend", F.coalesce(trend, F.lit(0.0))).drop("_recent", "_prior")
    return frame


def _event_features(events: DataFrame, config: Config, groups: list[str]) -> DataFrame:
    active_months = F.count_distinct(F.date_trunc("month", F.col("event_ts").cast("timestamp")))
    aggregates: list[Column] = []
    if "behavioural" in groups:
        aggregates += [
            (F.count(F.lit(1)) / active_months).cast("double").alias("events_per_active_month"),
            (F.count_distinct("session_id") / active_months)
            .cast("double")
            .alias("sessions_per_active_month"),
        ]
    if "technographic" in groups:
        aggregates += [_share("device", d).alias(f"device_{slug(d)}_share") for d in config.features.devices]
        aggregates += [_share("os", o).alias(f"os_{slug(o)}_share") for o in config.features.os]
    return events.groupBy("customer_id").agg(*aggregates)


def _customer_features(customers: DataFrame, config: Config, groups: list[str]) -> DataFrame:
    as_of = F.lit(config.as_of)
    columns: list[Column] = [F.col("customer_id")]
    if "rfm" in groups:
        columns.append(F.datediff(as_of, F.to_date("signup_date")).cast("double").alias("tenure_days"))
    if "demographic" in groups:
        age = F.year(as_of) - F.col("birth_year")
        band = sum((age >= bound).cast("int") for bound in AGE_BANDS)
        bands = config.features.income_bands
        income = F.array_position(F.array(*[F.lit(b) for b in bands]), F.col("income_band")) - 1
        columns += [
            age.cast("double").alias("age"),
            band.cast("double").alias("age_band"),
            income.cast("double").alias("income_band_index"),
        ]
    if "geographic" in groups:
        columns += [
            (F.col("region") == F.lit(r)).cast("double").alias(f"region_{slug(r)}")
            for r in config.features.regions
        ]
    return customers.select(*columns)


def build_features(spark: SparkSession, config: Config) -> tuple[DataFrame, dict[str, int]]:
    """Validate the lake and return the feature DataFrame (not yet written) and input row counts."""
    groups = list(dict.fromkeys(config.features.groups))
    needed = _needed(groups)
    as_of = F.lit(config.as_of)
    customers = read_table(spark, config, "customers", needed["customers"])
    tables = {
        name: read_table(spark, config, name, cols) for name, cols in needed.items() if name != "customers"
    }
    input_rows = {"customers": check_customers(customers)}
    if "orders" in tables:
        input_rows["orders"] = check_orders(tables["orders"], config.as_of, config.features.max_order_amount)
    if "events" in tables:
        input_rows["events"] = tables["events"].count()

    customers = customers.where(F.to_date("signup_date") < as_of)
    frame = _customer_features(customers, config, groups)
    if "orders" in tables:
        orders = tables["orders"].where(F.to_date("order_ts") < as_of)
        frame = frame.join(_order_features(orders, config, groups), "customer_id", "left")
    if "events" in tables:
        events = tables["events"].where(F.to_date("event_ts") < as_of)
        frame = frame.join(_event_features(events, config, groups), "customer_id", "left")
    if "rfm" in groups:
        # A customer who never ordered counts as lapsed since signup.
        recency = F.coalesce(F.datediff(as_of, F.col("last_order_day")).cast("double"), F.col("tenure_days"))
        frame = frame.withColumn("recency_days", recency).drop("last_order_day")
    frame = frame.fillna(0.0)
    feature_columns = [c for c in frame.columns if c != "customer_id"]
    return frame.select("customer_id", *feature_columns), input_rows


def run_features(spark: SparkSession, config: Config) -> FeatureResult:
    """Build the feature table for ``config.as_of`` and write it atomically to its partition."""
    frame, input_rows = build_features(spark, config)
    target = config.partition(config.features.output)
    write_partition(frame, target, sidecar={INPUT_ROWS_FILE: json.dumps(input_rows)})
    written = spark.read.parquet(target)
    return FeatureResult(
        path=target,
        customers=written.count(),
        feature_columns=[c for c in written.columns if c != "customer_id"],
        input_rows=input_rows,
    )
