"""Feature values against an independent pandas computation on the same rows."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_config

from segcore.errors import LakeError
from segcore.features.stage import run_features
from segcore.storage.versions import local_partition

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
        last_month = (day >= as_of - pd.Timedelta(days=30)) & (day < as_of)
        month_before = (day >= as_of - pd.Timedelta(days=60)) & (day < as_of - pd.Timedelta(days=30))
        gaps = o.order_ts.diff().dt.total_seconds().dropna() / 86400
        spend = o[o.amount >= 0].groupby(day).amount.sum().sort_index()  # per purchase day
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
            "orders_last_30d": last_month.sum(),
            "revenue_last_30d": o.amount[last_month].sum(),
            "orders_prior_30d": month_before.sum(),
            "revenue_prior_30d": o.amount[month_before].sum(),
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
            "repeat_purchases": max(len(spend) - 1, 0),
            "repeat_span_days": (spend.index[-1] - spend.index[0]).days if len(spend) else 0.0,
            "observed_days": (as_of - pd.Timedelta(days=1) - spend.index[0]).days if len(spend) else -1.0,
            "repeat_spend_mean": (spend.sum() - spend.iloc[0]) / (len(spend) - 1) if len(spend) > 1 else 0.0,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def test_one_row_per_customer_who_signed_up_before_as_of(built, lake):
    _, result, table = built
    customers = pd.read_parquet(lake / "customers")
    expected = customers[pd.to_datetime(customers.signup_date) < pd.Timestamp(AS_OF)]
    assert table.index.is_unique
    assert set(table.index) == set(expected.customer_id)
    assert result.customers == len(expected)
    assert result.input_rows["customers"] == len(expected)


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


# Order lines of a small lake (as_of 2026-04-30): customer 1 has a two-line order, a one-line order
# and a cancellation invoice; customer 2 a purchase flagged returned and another purchase; customer 3
# only a cancellation; customer 4 an order before and one after as_of.
LINES = pd.DataFrame(
    {
        "order_id": ["A1", "A1", "A2", "C1", "B1", "B2", "C2", "D0", "D1"],
        "customer_id": [1, 1, 1, 1, 2, 2, 3, 4, 4],
        "order_ts": pd.to_datetime(
            [
                t
                for t in (
                    "2026-01-10 09:00",
                    "2026-01-10 09:00",
                    "2026-03-01 12:00",
                    "2026-03-05 08:00",
                    "2026-02-01 10:00",
                    "2026-04-01 10:00",
                    "2026-02-15 10:00",
                    "2026-01-01 10:00",
                    "2026-06-29 10:00",
                )
            ]
        ).astype("datetime64[us]"),  # Spark reads microseconds, not pandas' default nanoseconds
        "amount": [10.0, 5.0, 20.0, -5.0, 30.0, 40.0, -8.0, 3.0, 7.0],
        "returned": [False, False, False, False, True, False, False, False, False],
        "category": ["home", "home", "fashion", "home", "home", "sports", "home", "home", "home"],
        "channel": ["web"] * 9,
        "discount": [0.0] * 9,
    }
)


def _lines_config(tmp_path, lines=LINES, **overrides):
    (tmp_path / "lines").mkdir(exist_ok=True)
    lines.to_parquet(tmp_path / "lines" / "part.parquet")
    return make_config(
        tmp_path,
        tmp_path,
        as_of=AS_OF.isoformat(),
        lake__customers=None,
        lake__events=None,
        lake__orders={"path": str(tmp_path / "lines")},
        **{"features__groups": ["rfm"], **overrides},
    )


def _rfm(spark, config) -> pd.DataFrame:
    columns = ["frequency", "monetary_total", "monetary_mean", "recency_days", "tenure_days"]
    return pd.read_parquet(run_features(spark, config).path).set_index("customer_id").sort_index()[columns]


def test_order_lines_make_orders_and_returns_are_netted(spark, tmp_path):
    table = _rfm(spark, _lines_config(tmp_path))
    expected = pd.DataFrame(
        {
            # 1: two orders (the cancellation invoice is no order), 30 = 10 + 5 + 20 - 5.
            # 2: the flag marks a return for return_rate only; amounts count as they are.
            # 3: only a cancellation: no order, net -8, lapsed since its first row.
            # 4: the order after as_of is ignored.
            "frequency": [2.0, 2.0, 0.0, 1.0],
            "monetary_total": [30.0, 70.0, -8.0, 3.0],
            "monetary_mean": [15.0, 35.0, 0.0, 3.0],
            "recency_days": [60.0, 29.0, 74.0, 119.0],
            "tenure_days": [110.0, 88.0, 74.0, 119.0],
        },
        index=pd.Index([1, 2, 3, 4], name="customer_id"),
    )
    pd.testing.assert_frame_equal(table, expected)


def test_returns_exclude_gives_gross_spend(spark, tmp_path):
    table = _rfm(spark, _lines_config(tmp_path, features__returns="exclude"))
    assert list(table.index) == [1, 2, 4]  # customer 3 had nothing but a return
    assert table.monetary_total.tolist() == [35.0, 70.0, 3.0]
    assert table.frequency.tolist() == [2.0, 2.0, 1.0]


def test_returns_refuse_stops_naming_table_column_and_setting(spark, tmp_path):
    with pytest.raises(LakeError) as caught:
        run_features(spark, _lines_config(tmp_path, features__returns="refuse"))
    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert "table 'orders'" in message and "column 'amount'" in message
    assert "2 negative value(s)" in message and "features.returns" in message


def test_without_order_id_every_row_is_an_order(spark, tmp_path):
    config = _lines_config(tmp_path, lake__orders__columns={"order_id": None})
    table = _rfm(spark, config)
    assert table.frequency.tolist() == [3.0, 2.0, 0.0, 1.0]  # customer 1: three purchase rows
    assert table.monetary_mean.tolist() == [10.0, 35.0, 0.0, 3.0]


def test_without_events_the_event_features_are_left_out(spark, tmp_path):
    config = _lines_config(tmp_path, features__groups=["rfm", "behavioural"])
    table = pd.read_parquet(run_features(spark, config).path).set_index("customer_id").sort_index()
    assert "events_per_active_month" not in table and "sessions_per_active_month" not in table
    # Return rows are negative rows or rows flagged returned, as a share of the customer's rows.
    assert table.return_rate.tolist() == [0.25, 0.5, 1.0, 0.0]
    assert table.category_home_share.tolist() == [0.75, 0.5, 1.0, 1.0]


def test_order_row_shares_without_the_rfm_group_are_those_with_it(spark, tmp_path):
    """The shares have a per-customer sum of their own, joined to the rfm pass where there is one."""
    config = _lines_config(tmp_path, features__groups=["behavioural"])
    table = pd.read_parquet(run_features(spark, config).path).set_index("customer_id").sort_index()
    assert table.return_rate.tolist() == [0.25, 0.5, 1.0, 0.0]
    assert table.category_home_share.tolist() == [0.75, 0.5, 1.0, 1.0]
    assert "frequency" not in table


@pytest.mark.parametrize(
    ("group", "table", "absent"),
    [("demographic", "customers", "lake__customers"), ("technographic", "events", "lake__events")],
)
def test_a_group_needing_a_missing_table_is_refused(spark, lake, tmp_path, group, table, absent):
    config = make_config(tmp_path, lake, **{absent: None, "features__groups": ["rfm", group]})
    with pytest.raises(LakeError) as caught:
        run_features(spark, config)
    assert caught.value.exit_code == 2
    assert f"feature group '{group}' needs table '{table}'" in str(caught.value)
    assert f"lake.{table}: null" in str(caught.value)


def test_missing_customer_attributes_are_unknown_never_a_real_value(spark, tmp_path):
    customers = pa.table(
        {
            "customer_id": pa.array([1, 2, 3, 4], pa.int64()),
            "signup_date": pa.array([dt.date(2025, 1, 1)] * 4),
            "birth_year": pa.array([1980.0, None, float("nan"), 1990.0], pa.float64(), from_pandas=False),
            "income_band": ["low", None, "platinum", "high"],
            "region": ["north", None, "south", "west"],
        }
    )
    (tmp_path / "customers").mkdir()
    pq.write_table(customers, tmp_path / "customers" / "part.parquet")
    config = _lines_config(tmp_path, features__groups=["rfm", "demographic", "geographic"])
    config.lake.customers = make_config(tmp_path, tmp_path).lake.customers
    table = pd.read_parquet(run_features(spark, config).path).set_index("customer_id").sort_index()
    assert table.age.tolist() == [46.0, -1.0, -1.0, 36.0]
    assert table.age_unknown.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert table.age_band.tolist() == [3.0, -1.0, -1.0, 2.0]
    assert table.income_band_index.tolist() == [0.0, -1.0, -1.0, 4.0]
    assert table[[f"region_{r}" for r in ("north", "south", "east", "west")]].sum(axis=1).tolist() == [
        1.0,
        0.0,
        1.0,
        1.0,
    ]
    assert table.tenure_days.tolist() == [484.0] * 4  # from the master's signup date


def test_without_rfm_customers_are_still_those_who_signed_up_before_as_of(spark, lake, tmp_path):
    config = make_config(tmp_path, lake, as_of=AS_OF.isoformat(), features__groups=["geographic"])
    table = pd.read_parquet(run_features(spark, config).path)
    customers = pd.read_parquet(lake / "customers")
    expected = customers[pd.to_datetime(customers.signup_date) < pd.Timestamp(AS_OF)]
    assert len(expected) < len(customers)
    assert sorted(table.customer_id) == sorted(expected.customer_id)
    assert [c for c in table.columns if c != "customer_id"] == [
        "region_north",
        "region_south",
        "region_east",
        "region_west",
    ]


def test_the_value_backtest_inputs_take_no_more_files_than_the_feature_table(spark, lake, tmp_path):
    """With a cluster's many shuffle partitions the backtest's inputs, from a cached aggregate
    that adaptive execution does not merge, were written as one file per partition."""
    config = make_config(tmp_path, lake, value__backtest=True)
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "40")
    try:
        run_features(spark, config)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)

    def files(output: str) -> list[Path]:
        return list(Path(local_partition(config.partition(output))).glob("*.parquet"))

    assert 1 <= len(files(config.value.backtest_output)) <= len(files(config.features.output)) < 40
