"""The feature stage: one row per customer as of a date, from rows before that date only.

Groups (``features.groups``) and the tables they read:

- ``rfm`` (orders; customers optional): recency_days, frequency, monetary_total, monetary_mean,
  tenure_days, order_interval_cv, spend_trend, the value models' inputs repeat_purchases,
  repeat_span_days, observed_days, repeat_spend_mean, and the KPIs' inputs orders_last_30d,
  revenue_last_30d, orders_prior_30d, revenue_prior_30d (the 30 days before as_of and the 30 before)
- ``behavioural`` (orders; events optional): category_<c>_share, channel_<c>_share, discount_rate,
  return_rate, and with events events_per_active_month, sessions_per_active_month
- ``demographic`` (customers): age, age_unknown, age_band, income_band_index
- ``geographic`` (customers): region_<r> (0/1)
- ``technographic`` (events): device_<d>_share, os_<o>_share

The aggregations are in :mod:`segcore.features.aggregates`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segcore.config import Config
from segcore.errors import LakeError
from segcore.features.aggregates import (
    apply_returns,
    behaviour_features,
    customer_features,
    event_features,
    orders_of_lines,
    rfm_features,
)
from segcore.lake.tables import INPUT_ROWS_FILE, InputTable, load_table
from segcore.storage.partitions import commit_partitions
from segcore.value.inputs import NO_PURCHASE, purchase_days, value_inputs

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


def _read_tables(
    spark: SparkSession, config: Config, groups: list[str]
) -> tuple[InputTable | None, InputTable, InputTable | None]:
    """The customers (if any), orders and events (if a group needs them), checked and mapped."""
    needed = _needed(groups)
    # Without rfm the signup date is still used, where the master has one, to keep only customers
    # who signed up before as_of.
    customers = load_table(spark, config, "customers", needed["customers"], optional=["signup_date"])
    known = customers.frame if customers else None
    optional = [c for c in OPTIONAL_ORDER_COLUMNS if c not in needed["orders"]]
    orders = load_table(spark, config, "orders", needed["orders"], optional, customers=known)
    events = None
    if "events" in needed:
        events = load_table(spark, config, "events", needed["events"], customers=known)
    return customers, orders, events


def build_features(spark: SparkSession, config: Config) -> tuple[DataFrame, dict[str, int]]:
    """Read and check the lake and return the feature DataFrame (not yet written) and the input row
    counts (rows used, dropped and ignored, by table)."""
    groups = list(dict.fromkeys(config.features.groups))
    _refuse_missing_tables(config, groups)
    customers, orders, events = _read_tables(spark, config, groups)
    input_rows = {
        name: n for table in (customers, orders, events) if table for name, n in table.counts.items()
    }
    lines = apply_returns(orders.frame, config.features.returns)
    if customers is not None:
        frame = customer_features(customers.frame, config, groups)
    else:
        frame = lines.select("customer_id").distinct()
    if "rfm" in groups:
        frame = _with_rfm(frame, lines, config, has_customers=customers is not None)
    if "behavioural" in groups:
        frame = frame.join(behaviour_features(lines, config), "customer_id", "left")
    if events is not None:
        frame = frame.join(event_features(events.frame, config, groups), "customer_id", "left")
    frame = frame.fillna(0.0)
    feature_columns = [c for c in frame.columns if c != "customer_id"]
    return frame.select("customer_id", *feature_columns), input_rows


def _with_rfm(frame: DataFrame, lines: DataFrame, config: Config, has_customers: bool) -> DataFrame:
    """``frame`` with the rfm group and the value models' inputs (:mod:`segcore.value.inputs`);
    recency and, without a customers table, tenure from the orders."""
    orders = orders_of_lines(lines)
    frame = frame.join(rfm_features(orders, config), "customer_id", "left").join(
        value_inputs(purchase_days(orders), config.as_of), "customer_id", "left"
    )
    frame = frame.withColumn("observed_days", F.coalesce("observed_days", F.lit(NO_PURCHASE)))
    as_of = F.lit(config.as_of)
    if not has_customers:
        frame = frame.withColumn("tenure_days", F.datediff(as_of, "_first_order_day").cast("double"))
    # A customer without a purchase counts as lapsed since signup (or since the first order).
    recency = F.coalesce(F.datediff(as_of, "_last_purchase_day").cast("double"), F.col("tenure_days"))
    return frame.withColumn("recency_days", recency).drop("_last_purchase_day", "_first_order_day")


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
