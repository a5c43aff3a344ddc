"""The bad-rows policy of an input table, applied to the rows before ``as_of`` only.

Rows that cannot be used (no customer id, an unparsable or missing time, a null or NaN amount) are
dropped and counted, up to ``lake.max_dropped_fraction`` of the table's rows before ``as_of``;
above it, or on a table-level fault (empty, no history, duplicate customers, absurd amounts), the
stage stops with :class:`LakeError`. Every count is one aggregate over the table's rows: a Spark job
of its own (:func:`apply_policy`), or observed while the job that uses the rows runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segcore.errors import LakeError

TIME_COLUMN = {"customers": "signup_date", "orders": "order_ts", "events": "event_ts"}
_NOUN = {"customers": "signup", "orders": "order", "events": "event"}
_PROBLEM = {"null_customer_id": "null", "bad_timestamp": "null or unparsable", "null_amount": "null or NaN"}
_REQUIRED_ROWS = ("customers", "orders")  # tables that must have rows before as_of


def _reasons(frame: DataFrame, table: str) -> list[tuple[str, str, Column]]:
    """(count name, column, condition) of each way a row can be unusable, in precedence order:
    a row is counted under the first reason that applies."""
    reasons = []
    if "customer_id" in frame.columns:
        reasons.append(("null_customer_id", "customer_id", F.col("customer_id").isNull()))
    if TIME_COLUMN[table] in frame.columns:
        reasons.append(("bad_timestamp", TIME_COLUMN[table], F.to_date(TIME_COLUMN[table]).isNull()))
    if "amount" in frame.columns:
        amount = F.col("amount").cast("double")
        reasons.append(("null_amount", "amount", amount.isNull() | F.isnan(amount)))
    return reasons


def _what(name: str, mapping: dict[str, str]) -> str:
    source = mapping.get(name, name)
    return f"'{name}'" if source == name else f"'{name}' (= {source})"


@dataclass(frozen=True)
class RowChecks:
    """The policy of one table as Spark aggregates over its rows (``aggregates``), the rows it keeps
    (``keep``), and :meth:`judge`, which turns the aggregates' values into counts or an error."""

    table: str
    as_of: dt.date
    max_dropped_fraction: float
    max_amount: float
    mapping: dict[str, str]
    reasons: list[tuple[str, str, Column]]
    keep: Column
    aggregates: list[Column]

    def judge(self, stats: dict[str, Any]) -> dict[str, int]:
        """Flat counts (``<table>`` rows used, ``<table>_after_as_of``, ``<table>_dropped_<reason>``),
        or :class:`LakeError` where the table breaks the policy."""
        table, as_of, mapping = self.table, self.as_of, self.mapping
        considered = stats["rows"] - (stats["after"] or 0)
        dropped = {name: stats[name] or 0 for name, _, _ in self.reasons}
        used = considered - sum(dropped.values())
        counts = {table: used, f"{table}_after_as_of": stats["after"] or 0}
        counts.update({f"{table}_dropped_{name}": n for name, n in dropped.items()})

        if table in _REQUIRED_ROWS:
            if stats["rows"] == 0:
                raise LakeError(f"table '{table}' is empty: point lake.{table} at a table with rows")
            if stats.get("first_day") is not None and stats["first_day"] >= as_of:
                raise LakeError(
                    f"as_of {as_of} is on or before the first {_NOUN[table]} ({stats['first_day']}) in table "
                    f"'{table}': there is no history to build features from; choose a later as_of"
                )
        detail = ", ".join(
            f"{_what(column, mapping)} {_PROBLEM[name]}: {dropped[name]:,}"
            for name, column, _ in self.reasons
        )
        limit = self.max_dropped_fraction
        if considered and sum(dropped.values()) > limit * considered:
            raise LakeError(
                f"table '{table}': {sum(dropped.values()):,} of {considered:,} rows before as_of {as_of} "
                f"cannot be used ({detail}), more than lake.max_dropped_fraction={limit:g}: "
                f"fix those rows or lake.{table}.columns, or raise lake.max_dropped_fraction"
            )
        if table in _REQUIRED_ROWS and used == 0:
            raise LakeError(f"table '{table}' has no usable rows before as_of {as_of} ({detail})")
        if stats.get("absurd"):
            raise LakeError(
                f"table '{table}': column {_what('amount', mapping)} has {stats['absurd']:,} value(s) beyond "
                f"+-features.max_order_amount={self.max_amount:g} (or infinite): fix them or raise that limit"
            )
        if "distinct" in stats and stats["distinct"] != used:
            raise LakeError(
                f"table '{table}': column {_what('customer_id', mapping)} has {used - stats['distinct']:,} "
                "duplicate id(s); the table must hold one row per customer: deduplicate it "
                "(lake.customers.query can)"
            )
        return counts


def row_checks(
    frame: DataFrame,
    table: str,
    as_of: dt.date,
    max_dropped_fraction: float,
    max_amount: float,
    mapping: dict[str, str],
) -> RowChecks:
    """The policy of ``frame`` (canonical columns of ``table``); ``mapping`` (segcore's name -> the
    lake's column or expression) only words the messages."""
    time = TIME_COLUMN[table] if TIME_COLUMN[table] in frame.columns else None
    after = F.coalesce(F.to_date(time) >= F.lit(as_of), F.lit(False)) if time else F.lit(False)
    reasons = _reasons(frame, table)
    unusable = F.lit(False)
    aggregates = [F.count(F.lit(1)).alias("rows"), F.sum(after.cast("long")).alias("after")]
    for name, _, condition in reasons:
        aggregates.append(F.sum((~after & ~unusable & condition).cast("long")).alias(name))
        unusable = unusable | condition
    keep = ~after & ~unusable
    if time:
        aggregates.append(F.min(F.to_date(time)).alias("first_day"))
    if "amount" in frame.columns:
        amount = F.abs(F.col("amount").cast("double"))
        aggregates.append(F.sum((keep & (amount > F.lit(max_amount))).cast("long")).alias("absurd"))
    if table == "customers" and "customer_id" in frame.columns:
        aggregates.append(F.count_distinct(F.when(keep, F.col("customer_id"))).alias("distinct"))
    return RowChecks(table, as_of, max_dropped_fraction, max_amount, mapping, reasons, keep, aggregates)


def apply_policy(frame: DataFrame, checks: RowChecks) -> tuple[DataFrame, dict[str, int]]:
    """The usable rows of ``frame`` before ``as_of`` and their counts, from one Spark job."""
    return frame.where(checks.keep), checks.judge(frame.agg(*checks.aggregates).first().asDict())


def count_orphans(frame: DataFrame, table: str, customers: DataFrame) -> dict[str, int]:
    """``<table>_orphan_customer``: rows whose customer is not in the customer master."""
    known = customers.select("customer_id").distinct()
    return {f"{table}_orphan_customer": frame.join(known, "customer_id", "left_anti").count()}
