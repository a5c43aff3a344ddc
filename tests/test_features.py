"""Feature values against an independent pandas computation on the same rows."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import make_config

from segcore.features import run_features

AS_OF = dt.date(2026, 4, 30)  # inside the lake's history: later rows must be ignored
SAMPLE = 40


@pytest.fixture(scope="module")
def built(spark, lake, tmp_path_factory):
    config = make_config(tmp_path_factory.mktemp("features"), lake, as_of=AS_OF.isoformat())
    result = run_features(spark, config)
    return config, result, pd.read_parquet(result.path).set_index("customer_id")


def _expected(lake, customer_ids) -> pd.DataFrame:
    """The features of a few customers, computed with pandas from the raw lake."""
    as_of = pd.Timestamp(AS_OF)
    customers = pd.read_parquet(lake / "customers").set_index("customer_id").loc[customer_ids]
    orders = pd.read_parquet(lake / "orders")
    orders = orders[orders.customer_id.isin(customer_ids) & (orders.order_ts < as_of)]
    events = pd.read_parquet(lake / "events")
    events = events[events.customer_id.isin(customer_ids) & (events.event_ts < as_of)]
    rows = {}
    for cid in customer_ids:
        o = orders[orders.customer_id == cid].sort_values("order_ts")
        e = events[events.customer_id == cid]
        tenure = (as_of - pd.Timestamp(customers.loc[cid, "signup_date"])).days
        day = o.order_ts.dt.normalize()
        recent = o.amount[day >= as_of - pd.Timedelta(days=90)].sum()
        prior = o.amount[
            (day < as_of - pd.Timedelta(days=90)) & (day >= as_of - pd.Timedelta(days=180))
        ].sum()
        gaps = o.order_ts.diff().dt.total_seconds().dropna() / 86400
        months = e.event_ts.dt.to_period("M").nunique()
        age = AS_OF.year - customers.loc[cid, "birth_year"]
        rows[cid] = {
            "frequency": len(o),
            "monetary_total": o.amount.sum(),
            "monetary_mean": o.amount.mean() if len(o) else 0.0,
            "recency_days": (as_of - day.max()).days if len(o) else tenure,
            "tenure_days": tenure,
            "discount_rate": (o.discount > 0).mean() if len(o) else 0.0,
            "return_rate": o.returned.mean() if len(o) else 0.0,
            "category_fashion_share": (o.category == "fashion").mean() if len(o) else 0.0,
            "channel_app_share": (o.channel == "app").mean() if len(o) else 0.0,
            "spend_trend": (recent - prior) / (recent + prior) if recent + prior else 0.0,
            "order_interval_cv": gaps.std(ddof=0) / gaps.mean() if len(gaps) and gaps.mean() else 0.0,
            "events_per_active_month": len(e) / months if months else 0.0,
            "sessions_per_active_month": e.session_id.nunique() / months if months else 0.0,
            "device_mobile_share": (e.device == "mobile").mean() if len(e) else 0.0,
            "os_ios_share": (e.os == "ios").mean() if len(e) else 0.0,
            "age": age,
            "age_band": sum(age >= bound for bound in (25, 35, 45, 55, 65)),
            "income_band_index": ["low", "lower_middle", "middle", "upper_middle", "high"].index(
                customers.loc[cid, "income_band"]
            ),
            "region_south": float(customers.loc[cid, "region"] == "south"),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def test_one_row_per_customer_who_signed_up_before_as_of(built, lake):
    _, result, table = built
    customers = pd.read_parquet(lake / "customers")
    expected = customers[pd.to_datetime(customers.signup_date) < pd.Timestamp(AS_OF)]
    assert table.index.is_unique
    assert set(table.index) == set(expected.customer_id)
    assert result.customers == len(expected)
    assert result.input_rows["customers"] == len(customers)


def test_all_features_numeric_and_finite(built):
    _, _, table = built
    assert all(np.issubdtype(dtype, np.floating) for dtype in table.dtypes)
    assert np.isfinite(table.to_numpy()).all()


def test_values_equal_an_independent_pandas_computation(built, lake):
    _, _, table = built
    rng = np.random.default_rng(0)
    sample = sorted(rng.choice(table.index.to_numpy(), SAMPLE, replace=False).tolist())
    expected = _expected(lake, sample)
    actual = table.loc[sample, expected.columns]
    pd.testing.assert_frame_equal(actual, expected.astype(float), check_names=False, rtol=1e-9, atol=1e-9)


def test_rerun_replaces_the_partition(spark, built):
    config, result, table = built
    again = run_features(spark, config)
    assert again.path == result.path
    pd.testing.assert_frame_equal(
        pd.read_parquet(again.path).set_index("customer_id").sort_index(), table.sort_index()
    )


def test_column_mapping_reads_a_lake_with_other_names(spark, lake, tmp_path, built):
    _, _, table = built
    renamed = tmp_path / "renamed"
    for name, renames in {
        "customers": {"customer_id": "cust_no"},
        "orders": {"customer_id": "cust_no", "order_ts": "InvoiceDate", "amount": "Revenue"},
        "events": {"customer_id": "cust_no"},
    }.items():
        (renamed / name).mkdir(parents=True)
        pd.read_parquet(lake / name).rename(columns=renames).to_parquet(renamed / name / "part.parquet")
    config = make_config(
        tmp_path,
        renamed,
        as_of=AS_OF.isoformat(),
        lake__customers__columns={"customer_id": "cust_no"},
        lake__orders__columns={"customer_id": "cust_no", "order_ts": "InvoiceDate", "amount": "Revenue"},
        lake__events__columns={"customer_id": "cust_no"},
    )
    mapped = pd.read_parquet(run_features(spark, config).path).set_index("customer_id")
    pd.testing.assert_frame_equal(mapped.sort_index(), table.sort_index())
