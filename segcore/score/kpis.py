"""KPIs per segment of one scoring, from the feature table's 30-day windows
(:data:`segcore.features.aggregates.KPI_COLUMNS`): sums in the scoring's aggregation by segment,
ratios on the driver.

- ``active_customers``: customers with a purchase in the last 30 days before as_of;
- ``retention``: of the ``prior_buyers`` (customers who bought in the 30 days before those), the
  share who bought again in the last 30; ``churned`` and ``churn_rate``: the others, and their share;
- ``new_customers``: signed up in the last 30 days; ``new_conversion``: the share of them who bought;
- ``orders``, ``revenue`` (net of returns) and ``average_order_value`` of the last 30 days;
  ``revenue_growth``: revenue over the 30 days before, minus 1.

Ratios without customers to count (no buyer in the month before, no new customer) are empty.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segcore.features.aggregates import KPI_COLUMNS, KPI_DAYS

KPI_TABLE_COLUMNS = (
    "segment_id",
    "segment_name",
    "customers",
    "active_customers",
    "prior_buyers",
    "retention",
    "churned",
    "churn_rate",
    "new_customers",
    "new_conversion",
    "orders",
    "revenue",
    "average_order_value",
    "revenue_growth",
)


# The feature columns the KPIs are summed from.
KPI_INPUTS = (*KPI_COLUMNS, "tenure_days")


def has_kpi_inputs(features: DataFrame) -> bool:
    return all(column in features.columns for column in KPI_INPUTS)


def _ratio(top: pd.Series, bottom: pd.Series) -> pd.Series:
    """``top / bottom``, empty (NaN) where ``bottom`` is 0."""
    return top / bottom.where(bottom != 0, np.nan)


def _count(condition) -> F.Column:
    return F.sum(condition.cast("long"))


def kpi_aggregates() -> list[Column]:
    """Per segment (in a groupBy by segment, over rows with :data:`KPI_COLUMNS` and tenure_days):
    the sums :func:`kpis_of_sums` turns into :data:`KPI_TABLE_COLUMNS`."""
    bought = F.col("orders_last_30d") > 0
    bought_before = F.col("orders_prior_30d") > 0
    new = F.col("tenure_days") <= KPI_DAYS
    return [
        _count(bought).alias("active_customers"),
        _count(bought_before).alias("prior_buyers"),
        _count(bought_before & bought).alias("_retained"),
        _count(new).alias("new_customers"),
        _count(new & bought).alias("_new_bought"),
        F.sum("orders_last_30d").alias("orders"),
        F.sum("revenue_last_30d").alias("revenue"),
        F.sum("revenue_prior_30d").alias("_revenue_before"),
    ]


def kpis_of_sums(sums: pd.DataFrame) -> pd.DataFrame:
    """:data:`KPI_TABLE_COLUMNS` by segment from :func:`kpi_aggregates`' sums (with segment_id,
    segment_name and customers)."""
    sums = sums.sort_values("segment_id", ignore_index=True)
    sums["retention"] = _ratio(sums["_retained"], sums["prior_buyers"])
    sums["churned"] = sums["prior_buyers"] - sums["_retained"]
    sums["churn_rate"] = 1 - sums["retention"]
    sums["new_conversion"] = _ratio(sums["_new_bought"], sums["new_customers"])
    sums["average_order_value"] = _ratio(sums["revenue"], sums["orders"])
    sums["revenue_growth"] = _ratio(sums["revenue"], sums["_revenue_before"]) - 1
    return sums[list(KPI_TABLE_COLUMNS)]
