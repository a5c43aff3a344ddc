"""Spark feature builders: one row per customer as of a date, from rows before that date only.

Groups (``features.groups``) and the tables they read:

- ``rfm`` (orders; customers optional): recency_days, frequency, monetary_total, monetary_mean,
  tenure_days, order_interval_cv, spend_trend
- ``behavioural`` (orders; events optional): category_<c>_share, channel_<c>_share, discount_rate,
  return_rate, and with events events_per_active_month, sessions_per_active_month
- ``demographic`` (customers): age, age_unknown, age_band, income_band_index
- ``geographic`` (customers): region_<r> (0/1)
- ``technographic`` (events): device_<d>_share, os_<o>_share

Orders may hold one row per order or one per order line: rows sharing an ``order_id`` are one order
(without an ``order_id`` every row is an order). A row with a negative amount is a return,
cancellation or credit note, netted by default (``features.returns``); a row flagged ``returned``
counts as a return in ``return_rate`` only. Exact definitions: README, "Output tables".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from segcore.config import Config
from segcore.errors import LakeError
from segcore.lake.tables import INPUT_ROWS_FILE, load_table
from segcore.storage.partitions import commit_partitions

AGE_BANDS = (25, 35, 45, 55, 65)  # upper bounds: <25 is band 0, ..., >=65 is band 5
UNKNOWN = -1.0  # age, age_band and income_band_index of a customer whose value is missing
TREND_DAYS = 90
WINDOW_DECIMALS = 6
SECONDS_PER_DAY = 86_400.0
ORDER_KEY = "_order"

# Columns each group reads, by table (a table a group can do without is read only when configured).
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
# Tables a group cannot do without (the others only add features when present).
REQUIRED_TABLES: dict[str, tuple[str, ...]] = {
    "rfm": ("orders",),
    "behavioural": ("orders",),
    "demographic": ("customers",),
    "geographic": ("customers",),
    "technographic": ("events",),
}
OPTIONAL_ORDER_COLUMNS = ("order_id", "returned")


@dataclass(frozen=True)
class FeatureResult:
    path: str
    customers: int
    feature_columns: list[str]
    input_rows: dict[str, int]


def slug(value: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", value.lower()).strip("_")


def _needed(groups: list[str]) -> dict[str, list[str]]:
    """Columns to read by table: the orders table always, customers and events when configured."""
    tables: dict[str, list[str]] = {
        "customers": ["customer_id"],
        "orders": ["customer_id", "order_ts", "amount"],
    }
    for group in groups:
        for table, columns in NEEDED_COLUMNS[group].items():
            tables.setdefault(table, [])
            tables[table] += [c for c in columns if c not in tables[table]]
    return tables


def _refuse_missing_tables(config: Config, groups: list[str]) -> None:
    for group in groups:
        for table in REQUIRED_TABLES[group]:
            if getattr(config.lake, table) is None:
                raise LakeError(
                    f"feature group '{group}' needs table '{table}', which this lake does not have "
                    f"(lake.{table}: null): remove '{group}' from features.groups or configure lake.{table}"
                )


def _share(column: str, value: str) -> Column:
    return F.avg((F.col(column) == F.lit(value)).cast("double"))


def _returned(orders: DataFrame) -> Column:
    if "returned" in orders.columns:
        return F.coalesce(F.col("returned").cast("boolean"), F.lit(False))
    return F.lit(False)


def apply_returns(orders: DataFrame, returns: str) -> DataFrame:
    """Order rows under ``features.returns``, with ``is_return`` (a negative or ``returned`` row).

    ``net``: rows are kept as they are, so negative amounts subtract from spend. ``exclude``:
    negative rows are dropped. ``refuse``: stop on any negative amount. The ``returned`` flag only
    marks a row as a return for ``return_rate``; amounts are taken as they are."""
    negative = F.col("amount") < 0
    if returns == "refuse":
        count = orders.where(negative).count()
        if count:
            raise LakeError(
                f"table 'orders': column 'amount' has {count} negative value(s) (returns, cancellations or "
                "credit notes) and features.returns is 'refuse': set features.returns to 'net' to subtract "
                "them or 'exclude' to leave them out"
            )
    if returns == "exclude":
        orders = orders.where(~negative)
    return orders.withColumn("is_return", negative | _returned(orders))


def _orders_of_lines(lines: DataFrame) -> DataFrame:
    """One row per order: its first timestamp, net amount, and whether it is a purchase (it has a
    row with a non-negative amount; an order of negative rows only is a return or cancellation)."""
    if "order_id" not in lines.columns:
        return lines.select(
            "customer_id", "order_ts", F.col("amount").alias("net"), (F.col("amount") >= 0).alias("purchase")
        )
    return lines.groupBy("customer_id", "order_id").agg(
        F.min("order_ts").alias("order_ts"),
        F.sum("amount").alias("net"),
        F.max(F.col("amount") >= 0).alias("purchase"),
    )


def _window_spend(net: Column) -> Column:
    """Net spend of a trend window, at least 0; rounded to 6 decimals so that purchases and their
    cancellations, summed in any order, leave exactly 0."""
    return F.greatest(F.round(F.sum(net), WINDOW_DECIMALS), F.lit(0.0))


def _rfm_features(lines: DataFrame, config: Config) -> DataFrame:
    """Per customer: frequency, net monetary, last purchase and first order day, interval CV, trend."""
    as_of = F.lit(config.as_of)
    orders = _orders_of_lines(lines).withColumn("day", F.to_date("order_ts"))
    purchases = orders.where("purchase")
    by_customer = Window.partitionBy("customer_id").orderBy("order_ts")
    gap_days = (
        F.unix_timestamp(F.col("order_ts").cast("timestamp"))
        - F.unix_timestamp(F.lag("order_ts").over(by_customer).cast("timestamp"))
    ) / SECONDS_PER_DAY
    intervals = (
        purchases.withColumn("gap_days", gap_days)
        .groupBy("customer_id")
        .agg(
            F.coalesce(F.try_divide(F.stddev_pop("gap_days"), F.avg("gap_days")), F.lit(0.0)).alias(
                "order_interval_cv"
            )
        )
    )
    recent = F.when(F.col("day") >= F.date_sub(as_of, TREND_DAYS), F.col("net")).otherwise(0.0)
    prior = F.when(
        (F.col("day") < F.date_sub(as_of, TREND_DAYS)) & (F.col("day") >= F.date_sub(as_of, 2 * TREND_DAYS)),
        F.col("net"),
    ).otherwise(0.0)
    frequency = F.count(F.when(F.col("purchase"), F.lit(1)))
    frame = orders.groupBy("customer_id").agg(
        frequency.cast("double").alias("frequency"),
        F.sum("net").cast("double").alias("monetary_total"),
        F.max(F.when(F.col("purchase"), F.col("day"))).alias("_last_purchase_day"),
        F.min("day").alias("_first_order_day"),
        _window_spend(recent).alias("_recent"),
        _window_spend(prior).alias("_prior"),
    )
    trend = F.try_divide(F.col("_recent") - F.col("_prior"), F.col("_recent") + F.col("_prior"))
    mean = F.try_divide(F.col("monetary_total"), F.col("frequency"))
    return (
        frame.withColumns(
            {
                "monetary_mean": F.coalesce(mean, F.lit(0.0)),
                "spend_trend": F.coalesce(trend, F.lit(0.0)).cast("double"),
            }
        )
        .drop("_recent", "_prior")
        .join(intervals, "customer_id", "left")
    )


def _behaviour_features(lines: DataFrame, config: Config) -> DataFrame:
    """Per customer, shares over order rows: categories, channels, discounted and returned rows."""
    features = config.features
    aggregates = [_share("category", c).alias(f"category_{slug(c)}_share") for c in features.categories]
    aggregates += [_share("channel", c).alias(f"channel_{slug(c)}_share") for c in features.channels]
    aggregates += [
        F.avg((F.col("discount") > 0).cast("double")).alias("discount_rate"),
        F.avg(F.col("is_return").cast("double")).alias("return_rate"),
    ]
    return lines.groupBy("customer_id").agg(*aggregates)


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
    """Attributes from the customer master; a missing value becomes :data:`UNKNOWN`, never a real one."""
    as_of = F.lit(config.as_of)
    columns: list[Column] = [F.col("customer_id")]
    if "rfm" in groups:
        columns.append(F.datediff(as_of, F.to_date("signup_date")).cast("double").alias("tenure_days"))
    if "demographic" in groups:
        birth_year = F.col("birth_year").cast("double")
        known = birth_year.isNotNull() & ~F.isnan(birth_year)
        age = F.year(as_of) - birth_year
        band = sum((age >= bound).cast("int") for bound in AGE_BANDS)
        bands = config.features.income_bands
        income = F.array_position(F.array(*[F.lit(b) for b in bands]), F.col("income_band")) - 1
        columns += [
            F.when(known, age).otherwise(UNKNOWN).cast("double").alias("age"),
            (~known).cast("double").alias("age_unknown"),
            F.when(known, band).otherwise(UNKNOWN).cast("double").alias("age_band"),
            F.coalesce(income.cast("double"), F.lit(UNKNOWN)).alias("income_band_index"),
        ]
    if "geographic" in groups:
        columns += [
            F.coalesce((F.col("region") == F.lit(r)).cast("double"), F.lit(0.0)).alias(f"region_{slug(r)}")
            for r in config.features.regions
        ]
    return customers.select(*columns)


def build_features(spark: SparkSession, config: Config) -> tuple[DataFrame, dict[str, int]]:
    """Read and check the lake and return the feature DataFrame (not yet written) and the input row
    counts (rows used, dropped and ignored, by table)."""
    groups = list(dict.fromkeys(config.features.groups))
    _refuse_missing_tables(config, groups)
    needed = _needed(groups)
    # Without rfm the signup date is still used, where the master has one, to keep only customers
    # who signed up before as_of.
    customers = load_table(spark, config, "customers", needed["customers"], optional=["signup_date"])
    optional = [c for c in OPTIONAL_ORDER_COLUMNS if c not in needed["orders"]]
    orders = load_table(
        spark, config, "orders", needed["orders"], optional, customers=customers.frame if customers else None
    )
    events = None
    if "events" in needed:
        events = load_table(
            spark, config, "events", needed["events"], customers=customers.frame if customers else None
        )
    input_rows = {
        name: n for table in (customers, orders, events) if table for name, n in table.counts.items()
    }

    lines = apply_returns(orders.frame, config.features.returns)
    if customers is not None:
        frame = _customer_features(customers.frame, config, groups)
    else:
        frame = lines.select("customer_id").distinct()
    if "rfm" in groups:
        frame = frame.join(_rfm_features(lines, config), "customer_id", "left")
        as_of = F.lit(config.as_of)
        if customers is None:
            frame = frame.withColumn("tenure_days", F.datediff(as_of, "_first_order_day").cast("double"))
        # A customer without a purchase counts as lapsed since signup (or since the first order).
        recency = F.coalesce(F.datediff(as_of, "_last_purchase_day").cast("double"), F.col("tenure_days"))
        frame = frame.withColumn("recency_days", recency).drop("_last_purchase_day", "_first_order_day")
    if "behavioural" in groups:
        frame = frame.join(_behaviour_features(lines, config), "customer_id", "left")
    if events is not None:
        frame = frame.join(_event_features(events.frame, config, groups), "customer_id", "left")
    frame = frame.fillna(0.0)
    feature_columns = [c for c in frame.columns if c != "customer_id"]
    return frame.select("customer_id", *feature_columns), input_rows


def run_features(spark: SparkSession, config: Config) -> FeatureResult:
    """Build the feature table for ``config.as_of`` and write it atomically to its partition."""
    target = config.partition(config.features.output)
    with commit_partitions(spark, [target]) as outputs:  # the output is checked writable first
        frame, input_rows = build_features(spark, config)
        written = outputs.write(frame, target, sidecar={INPUT_ROWS_FILE: json.dumps(input_rows)})
        customers = written.count()
    return FeatureResult(
        path=target,
        customers=customers,
        feature_columns=[c for c in written.columns if c != "customer_id"],
        input_rows=input_rows,
    )
