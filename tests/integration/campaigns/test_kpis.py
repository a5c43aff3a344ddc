"""KPIs per segment of a scoring, against an independent pandas computation from the raw lake."""

import numpy as np
import pandas as pd
from conftest import AS_OF

from segcore.score.kpis import KPI_TABLE_COLUMNS
from segcore.storage.versions import local_partition


def _expected(lake, segments: pd.DataFrame) -> pd.DataFrame:
    as_of = pd.Timestamp(AS_OF)
    orders = pd.read_parquet(lake / "orders")
    day = orders.order_ts.dt.normalize()
    last = orders[(day >= as_of - pd.Timedelta(days=30)) & (day < as_of)]
    before = orders[(day >= as_of - pd.Timedelta(days=60)) & (day < as_of - pd.Timedelta(days=30))]
    customers = pd.read_parquet(lake / "customers").set_index("customer_id")
    frame = segments.set_index("customer_id")[["segment_id"]].copy()
    frame["bought"] = frame.index.isin(last.customer_id)
    frame["bought_before"] = frame.index.isin(before.customer_id)
    tenure = (as_of - pd.to_datetime(customers.signup_date)).dt.days
    frame["new"] = tenure.reindex(frame.index) <= 30
    frame["orders"] = last.groupby("customer_id").size().reindex(frame.index, fill_value=0)
    frame["revenue"] = last.groupby("customer_id").amount.sum().reindex(frame.index, fill_value=0.0)
    frame["revenue_before"] = before.groupby("customer_id").amount.sum().reindex(frame.index, fill_value=0.0)
    rows = []
    for segment_id, g in frame.groupby("segment_id"):
        retained = (g.bought & g.bought_before).sum()
        rows.append(
            {
                "segment_id": segment_id,
                "customers": len(g),
                "active_customers": g.bought.sum(),
                "retention": retained / g.bought_before.sum() if g.bought_before.any() else np.nan,
                "churned": g.bought_before.sum() - retained,
                "new_customers": g.new.sum(),
                "new_conversion": (g.new & g.bought).sum() / g.new.sum() if g.new.any() else np.nan,
                "orders": g.orders.sum(),
                "revenue": g.revenue.sum(),
                "average_order_value": g.revenue.sum() / g.orders.sum() if g.orders.sum() else np.nan,
                "revenue_growth": g.revenue.sum() / g.revenue_before.sum() - 1
                if g.revenue_before.sum()
                else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("segment_id")


def test_kpis_per_segment_equal_an_independent_computation(pipeline, lake):
    config, scored = pipeline["config"], pipeline["score"]
    segments = pd.read_parquet(local_partition(config.partition(config.score.output)))
    written = pd.read_parquet(local_partition(config.partition(config.score.kpis_output)))
    assert list(written.columns) == list(KPI_TABLE_COLUMNS)
    pd.testing.assert_frame_equal(written, scored.kpis, check_dtype=False)
    expected = _expected(lake, segments)
    actual = written.set_index("segment_id")[expected.columns]
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False, check_names=False, rtol=1e-9)
    assert (actual.retention.dropna().between(0, 1)).all()
