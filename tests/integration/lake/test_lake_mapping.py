"""Mapping by configuration: column names or Spark SQL expressions, a filter, and tables defined by
a query over Parquet and CSV sources; a bad expression, filter or query is one clear line."""

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest
from conftest import config_with
from lake_data import LINE_COUNTS, USED_AMOUNTS, write_csv, write_parquet

from segcore.errors import LakeError
from segcore.lake.tables import _user_sql, load_table

ORDER_COLUMNS = ["customer_id", "order_ts", "amount"]


def _orders(spark, data, optional=(), **changes):
    config = config_with(data, lake__max_dropped_fraction=0.7, **changes)
    return load_table(spark, config, "orders", ORDER_COLUMNS, optional)


def test_expressions_derive_amount_id_and_time_from_line_columns(spark, lines_lake_data):
    orders = _orders(spark, lines_lake_data, optional=["order_id"])
    assert orders.frame.columns == [*ORDER_COLUMNS, "order_id"]
    assert dict(orders.frame.dtypes) == {
        "customer_id": "bigint",
        "order_ts": "timestamp",
        "amount": "double",
        "order_id": "string",
    }
    first = orders.frame.where("order_id = '1001'").orderBy("amount").first()
    assert (first.customer_id, first.order_ts, first.amount) == (17850, dt.datetime(2025, 12, 1, 8, 26), 6.78)


def test_a_filter_keeps_the_rows_its_predicate_accepts_without_counting_them_as_dropped(
    spark, lines_lake_data
):
    orders = _orders(spark, lines_lake_data, lake__orders__filter="NOT InvoiceNo LIKE 'C%'")
    assert sorted(row.amount for row in orders.frame.collect()) == pytest.approx(
        [a for a in USED_AMOUNTS if a > 0]
    )
    assert orders.counts == {**LINE_COUNTS, "orders": LINE_COUNTS["orders"] - 1}


def test_optional_columns_are_left_out_only_where_the_lake_lacks_them(spark, lines_lake_data):
    """order_id mapped to itself is optional; mapped to null it is absent; a rename must resolve."""
    columns = {k: v for k, v in lines_lake_data["lake"]["orders"]["columns"].items() if k != "order_id"}
    assert (
        "order_id"
        not in _orders(spark, lines_lake_data, ["order_id"], lake__orders__columns=columns).frame.columns
    )
    absent = {**columns, "order_id": None, "returned": None}
    assert _orders(
        spark, lines_lake_data, ["order_id", "returned"], lake__orders__columns=absent
    ).frame.columns == (ORDER_COLUMNS)
    with pytest.raises(
        LakeError, match=r"column 'Invoice' \(segcore's 'order_id'\) not found in \S+/lines; "
    ):
        _orders(
            spark, lines_lake_data, ["order_id"], lake__orders__columns={**columns, "order_id": "Invoice"}
        )
    with pytest.raises(LakeError, match=r"lake.orders.columns.amount is null \(no such column\) but"):
        _orders(spark, lines_lake_data, lake__orders__columns={**columns, "amount": None})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "amount",
            "Quantity * UnitPrce",
            r"lake.orders.columns.amount: cannot use 'Quantity \* UnitPrce': "
            r"\[UNRESOLVED_COLUMN.WITH_SUGGESTION\] .*`UnitPrce` cannot be resolved. "
            r"Did you mean one of the following\? \[`UnitPrice`",
        ),
        (
            "order_ts",
            "to_timestamp(InvoiceDate, 'M/d/yyyy H:mm'",
            r"lake.orders.columns.order_ts: cannot use .*: \[PARSE_SYNTAX_ERROR\] Syntax error at or near "
            r"end of input",
        ),
        (
            "customer_id",
            "CustomerID",
            r"table 'orders': column 'CustomerID' \(segcore's 'customer_id'\) has type double, expected an "
            r"integer or string id: map it with an expression, e.g. CAST\(<column> AS BIGINT\)",
        ),
        (
            "amount",
            "concat(Quantity, 'x')",
            r"table 'orders': column 'concat\(Quantity, 'x'\)' \(segcore's 'amount'\) has type string, "
            r"expected a number: map it with an expression, e.g. CAST\(<column> AS DOUBLE\)",
        ),
    ],
    ids=["unknown column", "syntax error", "float id", "wrong type"],
)
def test_a_bad_expression_is_one_line_naming_the_key_and_the_reason(
    spark, lines_lake_data, key, value, message
):
    columns = {**lines_lake_data["lake"]["orders"]["columns"], key: value}
    with pytest.raises(LakeError, match=message) as error:
        _orders(spark, lines_lake_data, lake__orders__columns=columns)
    assert "\n" not in str(error.value)


def test_a_bad_filter_is_named(spark, lines_lake_data):
    with pytest.raises(
        LakeError, match=r"lake.orders.filter: cannot use 'Country = ': \[PARSE_SYNTAX_ERROR\]"
    ):
        _orders(spark, lines_lake_data, lake__orders__filter="Country = ")


def _normalized(root):
    """Order headers (CSV), order lines (two Parquet files), a per-order customer key table and a
    product table, as a normalized shop database exports them."""
    write_csv(
        root / "headers" / "h.csv",
        "order_id;customer_key;placed_at;status",
        "1;k1;2026-01-05 10:00:00;complete",
        "2;k2;2026-02-07 11:30:00;complete",
        "3;k1;2026-03-01 09:00:00;cancelled",
        "4;k3;2026-03-02 09:00:00;complete",
    )
    write_parquet(root / "lines" / "a.parquet", order_id=[1, 1, 2], product=["p1", "p2", "p1"], qty=[2, 1, 1])
    write_parquet(root / "lines" / "b.parquet", order_id=[3, 4], product=["p2", "p2"], qty=[5, 3])
    write_parquet(root / "keys" / "k.parquet", customer_key=["k1", "k2", "k3"], person=[10, 20, 10])
    write_parquet(root / "products" / "p.parquet", product=["p1", "p2"], price=pa.array([4.5, 10.0]))
    return {
        "workdir": str(root),
        "lake": {
            "sources": {
                "headers": {"path": "headers", "format": "csv", "options": {"sep": ";"}},
                "lines": {"path": "lines"},
                "keys": {"path": "keys"},
                "products": {"path": "products"},
            },
            "orders": {
                "query": """
                    SELECT h.order_id, k.person AS customer_id, h.placed_at AS order_ts,
                           SUM(l.qty * p.price) AS amount
                    FROM headers h
                    JOIN lines l ON l.order_id = h.order_id
                    JOIN products p ON p.product = l.product
                    JOIN keys k ON k.customer_key = h.customer_key
                    WHERE h.status <> 'cancelled'
                    GROUP BY h.order_id, k.person, h.placed_at
                """
            },
        },
    }


def test_a_query_defines_orders_over_parquet_and_csv_sources(spark, tmp_path):
    data = _normalized(tmp_path)
    orders = load_table(spark, config_with(data), "orders", ORDER_COLUMNS, ["order_id"])
    rows = sorted((int(r.order_id), r.customer_id, r.order_ts, r.amount) for r in orders.frame.collect())
    assert rows == [
        (1, 10, dt.datetime(2026, 1, 5, 10), 19.0),
        (2, 20, dt.datetime(2026, 2, 7, 11, 30), 4.5),
        (4, 10, dt.datetime(2026, 3, 2, 9), 30.0),
    ]
    assert orders.counts["orders"] == 3


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "SELECT * FROM order_lines",
            r"table 'orders': lake.orders.query fails: \[TABLE_OR_VIEW_NOT_FOUND\] The table or view "
            r"`order_lines` cannot be found",
        ),
        (
            "SELECT order_id, qty AS amount FROM lines",
            r"table 'orders': column 'customer_id' \(segcore's 'customer_id'\) not found in the result of "
            r"lake.orders.query; it has \['amount', 'order_id'\]",
        ),
    ],
    ids=["unknown view", "missing canonical column"],
)
def test_a_failing_query_names_the_table_and_the_reason(spark, tmp_path, query, message):
    data = _normalized(tmp_path)
    data["lake"]["orders"]["query"] = query
    with pytest.raises(LakeError, match=message) as error:
        load_table(spark, config_with(data), "orders", ORDER_COLUMNS)
    assert "\n" not in str(error.value)


def test_user_sql_analysed_in_two_threads_at_once_leaves_the_session_setting_as_it_was(spark):
    """A second thread's analysis that would start inside the first's and end after it waits its
    turn: once both end, ANSI mode is what it was before either."""
    before = spark.conf.get("spark.sql.ansi.enabled")
    entered, release = threading.Event(), threading.Event()

    def second() -> None:
        with _user_sql(spark):
            entered.set()
            release.wait(60)

    with ThreadPoolExecutor(1) as pool:
        with _user_sql(spark):
            done = pool.submit(second)
            entered.wait(2)  # without turns, the second analysis starts at once
        release.set()
        done.result(timeout=60)
    assert spark.conf.get("spark.sql.ansi.enabled") == before
