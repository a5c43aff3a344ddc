"""The lift stage (Spark): an audience's treatment group against its control group over the
``days`` after ``start``, from the lake's orders; the table is printed by the CLI and recorded in
an MLflow run (``stage=lift``: the headline figures as metrics, the table as ``lift/lift.csv``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segcore.audiences.definition import CONTROL, TREATMENT
from segcore.audiences.stage import MEMBERS, audience_file, latest_export
from segcore.config import Config
from segcore.errors import ConfigError, LakeError
from segcore.features.orders import orders_before
from segcore.lake.tables import InputTable
from segcore.lift.outcomes import group_sums, member_outcomes
from segcore.lift.statistics import ALL_SEGMENTS, METRICS, lift_table
from segcore.runtime.logs import step
from segcore.tracking.artifacts import LIFT_ARTIFACT
from segcore.tracking.lifecycle import tracked_run
from segcore.tracking.store import open_tracking


@dataclass(frozen=True)
class LiftResult:
    audience: str
    export: str  # the audience partition whose groups were compared
    start: dt.date
    end: dt.date  # exclusive
    table: pd.DataFrame
    confidence: float
    run_id: str


def measure_lift(spark: SparkSession, config: Config, audience: str, start: dt.date, days: int) -> LiftResult:
    """Lift of ``audience`` (its latest export on or before ``start``) over ``[start, start + days)``."""
    if days < 1:
        raise ConfigError(f"--days must be at least 1, got {days}")
    end = start + dt.timedelta(days=days)
    _check_not_future(start, end)
    export = latest_export(spark, config, audience, start)
    members = spark.read.parquet(audience_file(spark, export, MEMBERS))
    members = members.select("customer_id", "group", "segment_id", "segment_name")
    _check_groups(config, audience, export, members)
    with step("lift", f"{audience}: outcomes {start} to {end}") as figures:
        orders = orders_before(spark, config, end)
        _check_window_ended(orders, start, end)
        sums = group_sums(member_outcomes(members, orders.frame, start, end))
        figures["segments"] = sums["segment_id"].nunique()
    table = lift_table(sums, config.campaigns.confidence, config.campaigns.min_group_customers)
    result = LiftResult(audience, export, start, end, table, config.campaigns.confidence, "")
    with step("lift", "record the MLflow run"):
        return replace(result, run_id=_record(config, result))


def _check_not_future(start: dt.date, end: dt.date) -> None:
    today = dt.date.today()
    if end > today:
        raise ConfigError(
            f"the window {start} to {end - dt.timedelta(days=1)} has not ended yet (today is {today}): "
            "measure lift once it has, or shorten --days"
        )


def _check_groups(config: Config, audience: str, export: str, members: DataFrame) -> None:
    """Both groups are there, and the control group is large enough for an interval."""
    sizes = dict(members.groupBy("group").count().collect())
    control, minimum = sizes.get(CONTROL, 0), config.campaigns.min_group_customers
    if not sizes.get(TREATMENT, 0):
        raise LakeError(
            f"audience '{audience}' ({export}) has no treatment group: nobody was sent the campaign"
        )
    if control == 0:
        raise LakeError(
            f"audience '{audience}' ({export}) has no control group (audiences.{audience}.control_share 0?): "
            "lift needs customers held back; export it with a control_share above 0"
        )
    if control < minimum:
        raise LakeError(
            f"audience '{audience}' ({export}): its control group of {control} customer(s) is too small "
            f"for an interval (campaigns.min_group_customers is {minimum}): raise "
            f"audiences.{audience}.control_share or widen the audience"
        )


def _check_window_ended(orders: InputTable, start: dt.date, end: dt.date) -> None:
    """The lake holds orders up to the window's last day: a lake loaded only part of the way would
    count missing orders as customers who did not buy."""
    if orders.counts.get("orders_after_as_of", 0):
        return
    last_day = end - dt.timedelta(days=1)
    latest = orders.frame.where(F.col("day") >= F.lit(start)).agg(F.max("day")).first()[0]
    if latest is None or latest < last_day:
        raise LakeError(
            f"table 'orders' has {f'orders up to {latest}' if latest else f'no orders from {start}'}, but "
            f"the window {start} to {last_day} has not ended in the lake yet: load its orders, or "
            "shorten --days"
        )


def _record(config: Config, result: LiftResult) -> str:
    """The MLflow run: the all-customers figures per metric as metrics, the whole table as CSV."""
    name = f"lift-{result.audience}-{result.start}"
    with tracked_run(open_tracking(config), name) as run:
        run.set_tags(
            {
                "stage": "lift",
                "audience": result.audience,
                "start": result.start.isoformat(),
                "end": result.end.isoformat(),
            }
        )
        run.log_params(
            {
                "audience": result.audience,
                "export": result.export,
                "start": result.start.isoformat(),
                "days": (result.end - result.start).days,
                "confidence": config.campaigns.confidence,
                "min_group_customers": config.campaigns.min_group_customers,
            }
        )
        overall = result.table[result.table["segment_id"] == ALL_SEGMENTS].set_index("metric")
        metrics = {
            "treatment_customers": overall.at["conversion", "treatment_customers"],
            "control_customers": overall.at["conversion", "control_customers"],
        }
        for metric in METRICS:
            for column in ("lift", "lift_low", "lift_high", "relative_lift", "p_value"):
                metrics[f"{metric}_{column}"] = overall.at[metric, column]
        run.log_metrics(metrics)
        run.log_table(result.table, LIFT_ARTIFACT)
    return run.run_id
