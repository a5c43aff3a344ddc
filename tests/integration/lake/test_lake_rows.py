"""The bad-rows policy: unusable rows before as_of are dropped and counted, up to
lake.max_dropped_fraction; rows on or after as_of are neither validated nor counted."""

import datetime as dt
import logging

import pytest
from conftest import config_with
from lake_data import CUSTOMER_COUNTS, LINE_COUNTS, USED_AMOUNTS, write_parquet

from segcore.errors import ConfigError, LakeError
from segcore.features.stage import run_features
from segcore.lake.tables import load_table

ORDER_COLUMNS = ["customer_id", "order_ts", "amount"]


def test_unusable_rows_are_dropped_and_counted(spark, lines_lake_data):
    config = config_with(lines_lake_data, lake__max_dropped_fraction=0.6)
    customers = load_table(spark, config, "customers", ["customer_id", "signup_date"])
    orders = load_table(spark, config, "orders", ORDER_COLUMNS, ["order_id"], customers=customers.frame)
    assert customers.counts == CUSTOMER_COUNTS
    assert orders.counts == {**LINE_COUNTS, "orders_orphan_customer": 1}
    rows = orders.frame.collect()
    assert sorted(row.amount for row in rows) == pytest.approx(USED_AMOUNTS)
    assert {row.customer_id for row in rows} == {17850, 99999}
    assert all(row.order_ts < dt.datetime(2026, 6, 30) for row in rows)
    assert sorted(row.customer_id for row in customers.frame.collect()) == [13047, 17000, 17850]


def test_the_feature_job_observes_the_counts_load_table_computes(spark, lines_lake_data, tmp_path, caplog):
    """The feature job counts while it writes (no job of its own): the same figures, orphans
    included; its log names each Spark stage, the orders' scan by its rows read."""
    config = config_with(
        lines_lake_data,
        workdir=str(tmp_path / "out"),
        lake__max_dropped_fraction=0.6,
        features__groups=["rfm"],
    )
    with caplog.at_level(logging.INFO, logger="segcore"):
        result = run_features(spark, config)
    assert result.input_rows == {**CUSTOMER_COUNTS, **LINE_COUNTS, "orders_orphan_customer": 1}
    read = sum(n for name, n in LINE_COUNTS.items() if name != "orders_orphan_customer")
    stages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("features: spark stage")]
    assert any(f"read orders ({read:,} rows)" in line for line in stages), stages
    assert any("write (" in line for line in stages), stages


def test_counts_cover_only_rows_before_as_of(spark, lines_lake_data):
    """A historical rebuild ignores later rows, bad or not: here every 2026 line is after as_of."""
    config = config_with(lines_lake_data, as_of="2026-01-01", lake__max_dropped_fraction=0.7)
    orders = load_table(spark, config, "orders", ORDER_COLUMNS)
    assert orders.counts == {
        "orders": 2,
        "orders_after_as_of": 5,
        "orders_dropped_null_customer_id": 2,
        "orders_dropped_bad_timestamp": 1,  # undated rows cannot be placed: they count before any as_of
        "orders_dropped_null_amount": 1,
    }


def test_too_many_dropped_rows_stop_the_stage_naming_table_columns_and_counts(spark, lines_lake_data):
    config = config_with(lines_lake_data)  # 5 of 9 rows before as_of are unusable; the default allows half
    message = (
        r"table 'orders': 5 of 9 rows before as_of 2026-06-30 cannot be used \("
        r"'customer_id' \(= CAST\(CustomerID AS BIGINT\)\) null: 2, "
        r"'order_ts' \(= to_timestamp\(InvoiceDate, 'M/d/yyyy H:mm'\)\) null or unparsable: 1, "
        r"'amount' \(= Quantity \* UnitPrice\) null or NaN: 2\), more than lake.max_dropped_fraction=0.5"
    )
    with pytest.raises(LakeError, match=message):
        load_table(spark, config, "orders", ORDER_COLUMNS)


def test_absurd_amounts_before_as_of_are_refused(spark, lines_lake_data):
    config = config_with(lines_lake_data, lake__max_dropped_fraction=0.6, features__max_order_amount=10.0)
    with pytest.raises(
        LakeError,
        match=r"table 'orders': column 'amount' \(= Quantity \* UnitPrice\) has 1 value\(s\) beyond "
        r"\+-features.max_order_amount=10",
    ):
        load_table(spark, config, "orders", ORDER_COLUMNS)


def test_duplicate_customers_are_refused(spark, tmp_path):
    write_parquet(tmp_path / "c" / "a.parquet", customer_id=[1, 2, 2, 3, 3], signup_date=["2025-01-01"] * 5)
    config = config_with({"workdir": str(tmp_path), "lake": {"customers": {"path": str(tmp_path / "c")}}})
    with pytest.raises(LakeError, match=r"table 'customers': column 'customer_id' has 2 duplicate id\(s\)"):
        load_table(spark, config, "customers", ["customer_id", "signup_date"])


def test_a_customer_master_can_be_deduplicated_by_query(spark, tmp_path):
    write_parquet(
        tmp_path / "people" / "a.parquet",
        person=[1, 2, 2, 3],
        since=["2025-01-01", "2025-02-01", "2024-12-01", "2025-03-01"],
    )
    query = "SELECT person AS customer_id, MIN(since) AS signup_date FROM people GROUP BY person"
    config = config_with(
        {"workdir": str(tmp_path)},
        lake__sources={"people": {"path": "people"}},
        lake__customers={"query": query},
    )
    customers = load_table(spark, config, "customers", ["customer_id", "signup_date"])
    signups = {row.customer_id: row.signup_date.date() for row in customers.frame.collect()}
    assert signups == {1: dt.date(2025, 1, 1), 2: dt.date(2024, 12, 1), 3: dt.date(2025, 3, 1)}


def test_no_history_before_as_of_is_refused(spark, lines_lake_data):
    message = r"as_of 2020-01-01 is on or before the first order \(2025-12-01\) in table 'orders'"
    with pytest.raises(LakeError, match=message):
        load_table(spark, config_with(lines_lake_data, as_of="2020-01-01"), "orders", ORDER_COLUMNS)


def test_an_absent_table_is_none_and_orders_are_required(spark, lines_lake_data):
    assert load_table(spark, config_with(lines_lake_data), "events", ["customer_id", "event_ts"]) is None
    with pytest.raises(ConfigError, match=r"config key 'lake.orders': .*the orders table is required"):
        config_with(lines_lake_data, lake__orders=None)


def test_events_with_string_times_guests_and_orphans_are_counted(spark, lines_lake_data, tmp_path):
    write_parquet(
        tmp_path / "events" / "day=1" / "a.parquet",
        visitor=["17850", None, "13047", "555", "17850"],
        at=["2026-03-01T10:00:00", "2026-03-01T11:00:00", "03/01/2026", "2026-05-01", "2026-06-30 00:00:00"],
    )
    write_parquet(tmp_path / "events" / "day=2" / "b.parquet", visitor=["13047"], at=["2026-04-02 08:15:00"])
    config = config_with(
        lines_lake_data,
        lake__events={
            "path": str(tmp_path / "events"),
            "columns": {"customer_id": "CAST(visitor AS BIGINT)", "event_ts": "at"},
        },
    )
    customers = load_table(spark, config, "customers", ["customer_id", "signup_date"])
    events = load_table(spark, config, "events", ["customer_id", "event_ts"], customers=customers.frame)
    assert events.counts == {
        "events": 3,
        "events_after_as_of": 1,
        "events_dropped_null_customer_id": 1,
        "events_dropped_bad_timestamp": 1,
        "events_orphan_customer": 1,
    }
    assert sorted((row.event_ts, row.customer_id) for row in events.frame.collect()) == [
        (dt.datetime(2026, 3, 1, 10), 17850),
        (dt.datetime(2026, 4, 2, 8, 15), 13047),
        (dt.datetime(2026, 5, 1), 555),
    ]
