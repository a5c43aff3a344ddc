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

import datetime as dt
import json
from dataclasses import dataclass

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from segcore.config import Config
from segcore.errors import LakeError
from segcore.features.aggregates import (
    apply_returns,
    backtest_summary,
    customer_features,
    event_features,
    order_features,
)
from segcore.lake.tables import (
    INPUT_ROWS_FILE,
    InputTable,
    ObservedTable,
    load_table,
    observe_table,
    spark_reason,
)
from segcore.runtime.logs import step
from segcore.runtime.spark_stages import log_stages, spark_stages
from segcore.storage.partitions import Outputs, commit_partitions
from segcore.value.inputs import CUTOFF_FILE, NO_PURCHASE, backtest_cutoff, cutoff_record, inputs_at_cutoff

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
) -> tuple[InputTable | None, ObservedTable, ObservedTable | None]:
    """The customers (if any; checked by a job of their own), orders and events (if a group needs
    them; checked while the feature job runs), mapped."""
    needed = _needed(groups)
    # Without rfm the signup date is still used, where the master has one, to keep only customers
    # who signed up before as_of.
    customers = load_table(spark, config, "customers", needed["customers"], optional=["signup_date"])
    optional = [c for c in OPTIONAL_ORDER_COLUMNS if c not in needed["orders"]]
    orders = observe_table(spark, config, "orders", needed["orders"], optional)
    events = observe_table(spark, config, "events", needed["events"]) if "events" in needed else None
    return customers, orders, events


@dataclass(frozen=True)
class BacktestInputs:
    """The value backtest's inputs at ``cutoff``, from the per-customer order aggregate the feature
    table is built from, kept (``cached``) for this second write, to partition ``target``."""

    cutoff: dt.date
    inputs: DataFrame
    cached: DataFrame
    target: str


@dataclass(frozen=True)
class FeatureJob:
    """The feature table as one Spark job not yet run (``frame``); once it has run, :meth:`input_rows`
    gives the rows used, dropped and ignored by table, or raises :class:`LakeError` where a table
    breaks the bad-rows policy. ``backtest``: the value backtest's inputs, written after it."""

    frame: DataFrame
    customers: InputTable | None
    tables: list[ObservedTable]
    orphans: Observation | None
    backtest: BacktestInputs | None

    def release(self) -> None:
        """Drop what the job keeps for its second write."""
        if self.backtest is not None:
            self.backtest.cached.unpersist()

    def input_rows(self) -> dict[str, int]:
        rows = dict(self.customers.counts) if self.customers else {}
        for table in self.tables:
            rows |= table.counts()
        if self.orphans is not None:
            rows |= {name: int(count or 0) for name, count in self.orphans.get.items()}
        return rows


def build_features(spark: SparkSession, config: Config) -> FeatureJob:
    """Read and check the lake and plan the feature table: one job checks the customer master, and
    every count of the bad-rows policy of orders and events is observed in the job that writes the
    features (which scans the events once and the orders twice, see :func:`order_features`)."""
    groups = list(dict.fromkeys(config.features.groups))
    _refuse_missing_tables(config, groups)
    customers, orders, events = _read_tables(spark, config, groups)
    lines = apply_returns(orders.frame, config.features.returns)
    backtest_target = _backtest_target(config)
    cutoff = backtest_cutoff(config) if backtest_target else None
    per_table = {"orders": order_features(lines, config, groups, cutoff)}
    backtest = None
    if cutoff is not None:
        per_table["orders"] = per_table["orders"].cache()
        inputs = inputs_at_cutoff(backtest_summary(per_table["orders"]), cutoff)
        backtest = BacktestInputs(cutoff, inputs, per_table["orders"], backtest_target)
    if events is not None:
        per_table["events"] = event_features(events.frame, config, groups)
    if customers is None:
        frame, orphans = _without_master(per_table), None
    else:
        frame, orphans = _with_master(customer_features(customers.frame, config, groups), per_table)
    if "rfm" in groups:
        frame = _with_recency(frame, config.as_of, has_customers=customers is not None)
    order = [c for c in frame.columns if not c.startswith("_")]
    frame = frame.select(*order).fillna(0.0)
    tables = [table for table in (orders, events) if table is not None]
    return FeatureJob(frame, customers, tables, orphans, backtest)


def _backtest_target(config: Config) -> str | None:
    """The partition of the value backtest's inputs where train will backtest on this table (they
    come from the rfm group's pass over the orders), else None."""
    value = config.value
    if "rfm" in config.features.groups and value.enabled and value.backtest:
        return config.partition(value.backtest_output)
    return None


def _without_master(per_table: dict[str, DataFrame]) -> DataFrame:
    """The customers with an order row, with the other tables' features."""
    frame = per_table["orders"]
    for table, features in per_table.items():
        if table != "orders":
            frame = frame.join(features.drop("_rows"), "customer_id", "left")
    return frame.drop("_rows")


def _with_master(master: DataFrame, per_table: dict[str, DataFrame]) -> tuple[DataFrame, Observation]:
    """The customer master's customers with every table's features, and an observation counting
    ``<table>_orphan_customer``, the rows of customers not in the master (not used)."""
    frame = master.withColumn("_known", F.lit(True))
    for table, features in per_table.items():
        frame = frame.join(features.withColumnRenamed("_rows", f"_{table}_rows"), "customer_id", "full")
    orphans = Observation("segcore_orphan_rows")
    counts = [
        F.sum(F.when(F.col("_known").isNull(), F.col(f"_{table}_rows"))).alias(f"{table}_orphan_customer")
        for table in per_table
    ]
    return frame.observe(orphans, *counts).where(F.col("_known")), orphans


def _with_recency(frame: DataFrame, as_of: dt.date, has_customers: bool) -> DataFrame:
    """recency_days (and, without a customers table, tenure_days) from the order days; a customer
    without a purchase counts as lapsed since signup (or since the first order)."""
    frame = frame.withColumn("observed_days", F.coalesce("observed_days", F.lit(NO_PURCHASE)))
    if not has_customers:
        frame = frame.withColumn("tenure_days", F.datediff(F.lit(as_of), "_first_order_day").cast("double"))
    recency = F.coalesce(F.datediff(F.lit(as_of), "_last_purchase_day").cast("double"), F.col("tenure_days"))
    columns = list(frame.columns)
    columns.insert(columns.index("repeat_spend_mean") + 1, "recency_days")
    return frame.withColumn("recency_days", recency).select(*columns)


def _write(outputs: Outputs, job: FeatureJob, target: str) -> DataFrame:
    try:
        return outputs.write(job.frame, target)
    except (PySparkException, Py4JJavaError) as exc:
        names = ", ".join(f"'{table.checks.table}'" for table in job.tables)
        raise LakeError(f"tables {names}: cannot read their rows: {spark_reason(exc)}") from None


def _write_job(
    spark: SparkSession, outputs: Outputs, job: FeatureJob, target: str
) -> tuple[DataFrame, dict[str, int]]:
    """Stage the feature table and its input row counts, judged by the bad-rows policy before
    anything else is written, then the value backtest's inputs."""
    with (
        step("features", "read, check, aggregate and write (one Spark job)"),
        spark_stages(spark) as stages,
    ):
        written = _write(outputs, job, target)
    input_rows = job.input_rows()
    log_stages("features", stages, _tables_by_rows(input_rows))
    outputs.write_text(target, INPUT_ROWS_FILE, json.dumps(input_rows))
    if job.backtest is not None:
        _write_backtest(outputs, job.backtest, files=len(written.inputFiles()))
    return written, input_rows


def _write_backtest(outputs: Outputs, backtest: BacktestInputs, files: int) -> None:
    """The value backtest's inputs, their cutoff beside them, in at most ``files`` files (the
    feature table's: the inputs come from a cached aggregate, whose partitions, as many as the
    shuffle's, adaptive execution does not merge)."""
    with step("features", f"write the value backtest's inputs (cutoff {backtest.cutoff})"):
        outputs.write(backtest.inputs.coalesce(max(1, files)), backtest.target)
        outputs.write_text(backtest.target, CUTOFF_FILE, cutoff_record(backtest.cutoff))


def _tables_by_rows(input_rows: dict[str, int]) -> dict[int, str]:
    """Each table's rows as read (used, dropped and after as_of) -> its name, to name scans."""
    read: dict[str, int] = {}
    for name, count in input_rows.items():
        table = name.split("_")[0]
        if not name.endswith("_orphan_customer"):
            read[table] = read.get(table, 0) + count
    return {count: table for table, count in read.items()}


def run_features(spark: SparkSession, config: Config) -> FeatureResult:
    """Build the feature table for ``config.as_of`` and write it atomically to its partition; a
    table that breaks the bad-rows policy stops the stage before the commit (the previous
    partition stays)."""
    target = config.partition(config.features.output)
    backtest = _backtest_target(config)
    targets = [target, *([backtest] if backtest else [])]
    with commit_partitions(spark, targets) as outputs:  # the outputs are checked writable first
        with step("features", "read and check the customer master, plan the job"):
            job = build_features(spark, config)
        try:
            written, input_rows = _write_job(spark, outputs, job, target)
        finally:
            job.release()
        customers = written.count()
    return FeatureResult(
        path=target,
        customers=customers,
        feature_columns=[c for c in written.columns if c != "customer_id"],
        input_rows=input_rows,
    )
