"""The feature groups' Spark aggregations, one row per customer, from rows before ``as_of``.

Orders may hold one row per order or one per order line: rows sharing an ``order_id`` are one order
(without an ``order_id`` every row is an order). A row with a negative amount is a return,
cancellation or credit note, netted by default (``features.returns``); a row flagged ``returned``
counts as a return in ``return_rate`` only. Exact definitions: README, "Output tables".
"""

from __future__ import annotations

import datetime as dt
import re

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from segcore.config import Config
from segcore.errors import LakeError
from segcore.value.inputs import INPUT_COLUMNS, input_columns

AGE_BANDS = (25, 35, 45, 55, 65)  # upper bounds: <25 is band 0, ..., >=65 is band 5
UNKNOWN = -1.0  # age, age_band and income_band_index of a customer whose value is missing
TREND_DAYS = 90
KPI_DAYS = 30  # the month of the KPI columns: the last KPI_DAYS days before as_of, and the ones before
KPI_COLUMNS = ("orders_last_30d", "revenue_last_30d", "orders_prior_30d", "revenue_prior_30d")
WINDOW_DECIMALS = 6
SECONDS_PER_DAY = 86_400.0
RFM_COLUMNS = (
    "frequency",
    "monetary_total",
    *KPI_COLUMNS,
    "monetary_mean",
    "spend_trend",
    "order_interval_cv",
    *INPUT_COLUMNS,
)
# order_features' columns for a value backtest cutoff, read by backtest_summary.
CUTOFF_SUMMARY = ("_days", "_first", "_first_spend", "_cutoff_days", "_cutoff_last", "_cutoff_spend")


def slug(value: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", value.lower()).strip("_")


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


def orders_of_lines(lines: DataFrame) -> DataFrame:
    """One row per order: its first timestamp and day, net amount, and whether it is a purchase (it
    has a row with a non-negative amount; an order of negative rows only is a return or cancellation)."""
    if "order_id" not in lines.columns:
        orders = lines.select(
            "customer_id", "order_ts", F.col("amount").alias("net"), (F.col("amount") >= 0).alias("purchase")
        )
    else:
        orders = lines.groupBy("customer_id", "order_id").agg(
            F.min("order_ts").alias("order_ts"),
            F.sum("amount").alias("net"),
            F.max(F.col("amount") >= 0).alias("purchase"),
        )
    return orders.withColumn("day", F.to_date("order_ts"))


def _window_spend(net: Column) -> Column:
    """Net spend of a trend window, at least 0; rounded to 6 decimals so that purchases and their
    cancellations, summed in any order, leave exactly 0."""
    return F.greatest(F.round(F.sum(net), WINDOW_DECIMALS), F.lit(0.0))


def _kpi_windows(as_of: dt.date) -> list[Column]:
    """:data:`KPI_COLUMNS`: purchase orders and net revenue (returns subtracted) of the last
    :data:`KPI_DAYS` days before ``as_of`` and of the ones before, aggregated in the rfm pass."""
    columns = []
    for name, first, last in (("last", 1, KPI_DAYS), ("prior", KPI_DAYS + 1, 2 * KPI_DAYS)):
        within = F.col("day").between(F.date_sub(F.lit(as_of), last), F.date_sub(F.lit(as_of), first))
        columns += [
            F.count(F.when(within & F.col("purchase"), F.lit(1))).cast("double").alias(f"orders_{name}_30d"),
            F.round(F.sum(F.when(within, F.col("net")).otherwise(0.0)), WINDOW_DECIMALS)
            .cast("double")
            .alias(f"revenue_{name}_30d"),
        ]
    return columns


def order_features(
    lines: DataFrame, config: Config, groups: list[str], cutoff: dt.date | None = None
) -> DataFrame:
    """Per customer, every feature of the orders table and ``_rows``, the customer's order rows,
    from two narrow scans of the rows: one sums ``_rows`` and the shares per customer (partly
    before its shuffle); for rfm, the other shuffles the rows by customer, sums them per order,
    orders them within the customer (for the interval CV and the purchase days) and sums them per
    customer, and the two are joined on their common partitioning. (One scan carrying the share
    counts through the per-order sums and the time order was slower: README, Results.)

    rfm: :data:`RFM_COLUMNS`, the value models' inputs (null without a purchase), and
    ``_last_purchase_day`` and ``_first_order_day``; with a value backtest ``cutoff``, the
    summary columns :func:`backtest_summary` reads; behavioural: the shares over order rows."""
    shares = _line_shares(config) if "behavioural" in groups else {}
    per_line = lines.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("_rows"),
        *[F.try_divide(F.sum(hit.cast("long")), F.count(hit)).alias(name) for name, hit in shares.items()],
    )
    if "rfm" not in groups:
        return per_line
    frame = (
        orders_of_lines(lines.repartition("customer_id"))
        .select("*", *_previous_purchases())
        .groupBy("customer_id")
        .agg(*_rfm_aggregates(config.as_of, cutoff))
        .join(per_line, "customer_id")
    )
    trend = F.try_divide(F.col("_recent") - F.col("_prior"), F.col("_recent") + F.col("_prior"))
    derived = {
        "monetary_mean": F.coalesce(F.try_divide(F.col("monetary_total"), F.col("frequency")), F.lit(0.0)),
        "spend_trend": F.coalesce(trend, F.lit(0.0)).cast("double"),
    }
    derived |= {
        name: F.when(F.col("_days") > 0, column) for name, column in input_columns(config.as_of).items()
    }
    return frame.select(
        "customer_id",
        "_rows",
        "_last_purchase_day",
        "_first_order_day",
        *(CUTOFF_SUMMARY if cutoff else ()),
        *[F.col(name) if name in frame.columns else derived[name].alias(name) for name in RFM_COLUMNS],
        *shares,
    )


def _line_shares(config: Config) -> dict[str, Column]:
    """The behavioural shares over order rows: name -> whether a row counts (null: the row does not
    enter that share, as in an average)."""
    features = config.features
    shares = {f"category_{slug(c)}_share": F.col("category") == F.lit(c) for c in features.categories}
    shares |= {f"channel_{slug(c)}_share": F.col("channel") == F.lit(c) for c in features.channels}
    return shares | {"discount_rate": F.col("discount") > 0, "return_rate": F.col("is_return")}


def _previous_purchases() -> list[Column]:
    """Per order, in the customer's order of time: the previous purchase's time (``_previous``) and
    the first purchase's day so far (``_first_purchase_day``)."""
    in_time = Window.partitionBy("customer_id").orderBy("order_ts")
    purchase_time = F.when(F.col("purchase"), F.col("order_ts"))
    return [
        F.last(purchase_time, ignorenulls=True)
        .over(in_time.rowsBetween(Window.unboundedPreceding, -1))
        .alias("_previous"),
        F.to_date(
            F.first(purchase_time, ignorenulls=True).over(in_time.rowsBetween(Window.unboundedPreceding, 0))
        ).alias("_first_purchase_day"),
    ]


def _rfm_aggregates(as_of: dt.date, cutoff: dt.date | None) -> list[Column]:
    """The rfm group's per-customer sums over orders with :func:`_previous_purchases`, and the
    purchase-day summary of :func:`segcore.value.inputs.input_columns` (before ``cutoff`` too, if
    given)."""
    purchase = F.col("purchase")
    day = F.col("day")
    gap_days = F.when(purchase, (_seconds("order_ts") - _seconds("_previous")) / SECONDS_PER_DAY)
    new_day = purchase & (F.col("_previous").isNull() | (day != F.to_date("_previous")))
    recent = F.when(day >= F.date_sub(F.lit(as_of), TREND_DAYS), F.col("net")).otherwise(0.0)
    prior = F.when(
        (day < F.date_sub(F.lit(as_of), TREND_DAYS)) & (day >= F.date_sub(F.lit(as_of), 2 * TREND_DAYS)),
        F.col("net"),
    ).otherwise(0.0)
    return [
        F.count(F.when(purchase, F.lit(1))).cast("double").alias("frequency"),
        F.sum("net").cast("double").alias("monetary_total"),
        F.max(F.when(purchase, day)).alias("_last_purchase_day"),
        F.min(day).alias("_first_order_day"),
        _window_spend(recent).alias("_recent"),
        _window_spend(prior).alias("_prior"),
        *_kpi_windows(as_of),
        F.coalesce(F.try_divide(F.stddev_pop(gap_days), F.avg(gap_days)), F.lit(0.0)).alias(
            "order_interval_cv"
        ),
        F.count(F.when(new_day, F.lit(1))).alias("_days"),
        F.min(F.when(purchase, day)).alias("_first"),
        F.max(F.when(purchase, day)).alias("_last"),
        F.sum(F.when(purchase, F.col("net"))).alias("_spend"),
        F.sum(F.when(purchase & (day == F.col("_first_purchase_day")), F.col("net"))).alias("_first_spend"),
        *(_before_cutoff(cutoff, new_day) if cutoff else ()),
    ]


def _before_cutoff(cutoff: dt.date, new_day: Column) -> list[Column]:
    """The purchase-day summary before the value backtest's ``cutoff`` (the first purchase day and
    its spend are those before ``as_of``)."""
    before = F.col("day") < F.lit(cutoff)
    purchase = F.col("purchase") & before
    return [
        F.count(F.when(new_day & before, F.lit(1))).alias("_cutoff_days"),
        F.max(F.when(purchase, F.col("day"))).alias("_cutoff_last"),
        F.sum(F.when(purchase, F.col("net"))).alias("_cutoff_spend"),
    ]


def backtest_summary(orders: DataFrame) -> DataFrame:
    """Per customer, the summary :func:`segcore.value.inputs.inputs_at_cutoff` reads, from the
    columns :func:`order_features` adds for a backtest cutoff."""
    return orders.select(
        "customer_id",
        F.col("_cutoff_days").alias("_days"),
        "_first",
        F.col("_cutoff_last").alias("_last"),
        F.col("_cutoff_spend").alias("_spend"),
        "_first_spend",
        (F.col("_days") - F.col("_cutoff_days")).cast("double").alias("actual_purchases"),
    )


def _seconds(column: str) -> Column:
    return F.unix_timestamp(F.col(column).cast("timestamp"))


def event_features(events: DataFrame, config: Config, groups: list[str]) -> DataFrame:
    """Per customer: event and session rates per active month, device and OS shares, and ``_rows``
    (the customer's event rows). Distinct months and sessions are counted as sets (one hash
    aggregate, not one shuffle per distinct count)."""
    active_months = F.size(F.collect_set(F.date_trunc("month", F.col("event_ts").cast("timestamp"))))
    aggregates: list[Column] = [F.count(F.lit(1)).alias("_rows")]
    if "behavioural" in groups:
        aggregates += [
            F.try_divide(F.count(F.lit(1)), active_months).cast("double").alias("events_per_active_month"),
            F.try_divide(F.size(F.collect_set("session_id")), active_months)
            .cast("double")
            .alias("sessions_per_active_month"),
        ]
    if "technographic" in groups:
        aggregates += [_share("device", d).alias(f"device_{slug(d)}_share") for d in config.features.devices]
        aggregates += [_share("os", o).alias(f"os_{slug(o)}_share") for o in config.features.os]
    return events.groupBy("customer_id").agg(*aggregates)


def customer_features(customers: DataFrame, config: Config, groups: list[str]) -> DataFrame:
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
