"""The lake's orders as one row per order, read the same way by every stage that looks at what
customers bought: the value backtest, campaign lift and the KPIs per segment."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession

from segcore.config import Config
from segcore.features.aggregates import apply_returns, orders_of_lines
from segcore.lake.tables import InputTable, kept_rows, load_table

ORDER_COLUMNS = ["customer_id", "order_ts", "amount"]


def orders_before(spark: SparkSession, config: Config, end: dt.date | None = None) -> InputTable:
    """The orders before ``end`` (default ``as_of``) as :func:`orders_of_lines` rows (customer_id,
    order_ts, day, net, purchase) under ``features.returns``, with the table's row counts."""
    dated = config if end is None else config.model_copy(update={"as_of": end})
    orders = load_table(spark, dated, "orders", ORDER_COLUMNS, ["order_id"])
    return InputTable(orders_of_lines(apply_returns(orders.frame, config.features.returns)), orders.counts)


def order_rows(spark: SparkSession, config: Config) -> DataFrame:
    """:func:`orders_before` ``as_of`` without a Spark job of its own: the rows the bad-rows policy
    keeps, its counts not computed (for a stage that reads a lake the feature job has checked)."""
    orders = kept_rows(spark, config, "orders", ORDER_COLUMNS, ["order_id"])
    return orders_of_lines(apply_returns(orders, config.features.returns))
