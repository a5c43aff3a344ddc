"""The lake's orders as one row per order, read the same way by every stage that looks at what
customers bought: the value backtest, campaign lift and the KPIs per segment."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession

from segcore.config import Config
from segcore.features.aggregates import apply_returns, orders_of_lines
from segcore.lake.tables import InputTable, load_table


def orders_before(spark: SparkSession, config: Config, end: dt.date | None = None) -> InputTable:
    """The orders before ``end`` (default ``as_of``) as :func:`orders_of_lines` rows (customer_id,
    order_ts, day, net, purchase) under ``features.returns``, with the table's row counts."""
    dated = config if end is None else config.model_copy(update={"as_of": end})
    orders = load_table(spark, dated, "orders", ["customer_id", "order_ts", "amount"], ["order_id"])
    return InputTable(orders_of_lines(apply_returns(orders.frame, config.features.returns)), orders.counts)
