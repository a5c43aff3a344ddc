"""Files that lie: every file of an input folder is checked before Spark reads it, and a file that
lacks a used column, holds it with another type or at another CSV position, or is truncated stops
the stage naming the file and the column."""

from pathlib import Path

import pyarrow as pa
import pytest
from conftest import config_with
from lake_data import LINE_COUNTS, write_csv, write_parquet

from segcore.errors import LakeError
from segcore.lake.tables import load_table

ORDER_COLUMNS = ["customer_id", "order_ts", "amount"]
EXTRA = "month=2026-02/part-9.parquet"


def _extra_file(data, **columns):
    """Add a file beside the good invoice-line files; returns its path."""
    return write_parquet(Path(data["lake"]["orders"]["path"]) / EXTRA, **columns)


def _line(**changes):
    line = {
        "InvoiceNo": ["2001"],
        "CustomerID": [17850.0],
        "Quantity": [1],
        "UnitPrice": [4.0],
        "InvoiceDate": ["2/1/2026 9:00"],
    }
    return {**line, **changes}


def _load(spark, data):
    return load_table(spark, config_with(data, lake__max_dropped_fraction=0.6), "orders", ORDER_COLUMNS)


def test_a_file_missing_a_used_column_is_named(spark, lines_lake_data):
    line = _line()
    del line["UnitPrice"]
    _extra_file(lines_lake_data, **line)
    with pytest.raises(
        LakeError, match=rf"table 'orders': file \S+/{EXTRA} has no column 'UnitPrice' \(1 of 4 files lack it"
    ):
        _load(spark, lines_lake_data)


def test_a_file_with_another_type_is_named(spark, lines_lake_data):
    _extra_file(lines_lake_data, **_line(UnitPrice=["4.00"]))
    with pytest.raises(
        LakeError,
        match=rf"table 'orders': file \S+/{EXTRA} has column 'UnitPrice' of type string, the other files of "
        r"type double",
    ):
        _load(spark, lines_lake_data)


def test_float_ids_in_one_file_and_integers_in_another_are_named(spark, lines_lake_data):
    _extra_file(lines_lake_data, **_line(CustomerID=pa.array([17850], pa.int64())))
    with pytest.raises(LakeError, match=rf"file \S+/{EXTRA} has column 'CustomerID' of type int64"):
        _load(spark, lines_lake_data)


def test_a_truncated_file_is_named(spark, lines_lake_data):
    path = _extra_file(lines_lake_data, **_line())
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(
        LakeError,
        match=rf"table 'orders': file \S+/{EXTRA} is not a readable Parquet file \(truncated or corrupt",
    ):
        _load(spark, lines_lake_data)


def test_unused_columns_may_differ_between_files(spark, lines_lake_data):
    """Only the columns the mapping refers to are checked: an extra or missing unused column is fine."""
    _extra_file(lines_lake_data, **_line(), Country=["France"])
    orders = _load(spark, lines_lake_data)
    assert orders.counts["orders"] == LINE_COUNTS["orders"] + 1


def test_a_csv_file_with_its_columns_in_another_order_is_named(spark, tmp_path):
    header = "order_id,customer_id,order_ts,amount"
    write_csv(tmp_path / "orders" / "a.csv", header, "1,7,2026-01-02 10:00:00,5.5")
    write_csv(tmp_path / "orders" / "b.csv", header, "2,8,2026-01-03 10:00:00,1.5")
    write_csv(tmp_path / "orders" / "c.csv", "order_id,amount,customer_id,order_ts", "3,2.5,9,2026-01-04")
    data = {"workdir": str(tmp_path), "lake": {"orders": {"path": "orders", "format": "csv"}}}
    columns = {"customer_id": "CAST(customer_id AS BIGINT)", "amount": "CAST(amount AS DOUBLE)"}
    config = config_with(data, lake__orders__columns=columns)
    with pytest.raises(
        LakeError,
        match=r"file \S+/c.csv has column 'amount' at position 2, the other files at position 4",
    ):
        load_table(spark, config, "orders", ORDER_COLUMNS)
    (tmp_path / "orders" / "c.csv").unlink()
    orders = load_table(spark, config, "orders", ORDER_COLUMNS)
    assert sorted((row.customer_id, row.amount) for row in orders.frame.collect()) == [(7, 5.5), (8, 1.5)]


def test_a_source_file_that_lies_is_named_with_its_source(spark, tmp_path):
    write_parquet(tmp_path / "lines" / "a.parquet", num=[1], who=[5], price=[2.0], at=["2026-01-01"])
    write_parquet(tmp_path / "lines" / "b.parquet", num=[2], who=[6], price=["2.0"], at=["2026-01-02"])
    query = "SELECT num AS order_id, who AS customer_id, at AS order_ts, price AS amount FROM lines"
    config = config_with(
        {"workdir": str(tmp_path)},
        lake__sources={"lines": {"path": "lines"}},
        lake__orders={"query": query},
    )
    with pytest.raises(
        LakeError, match=r"source 'lines': file \S+/b.parquet has column 'price' of type string"
    ):
        load_table(spark, config, "orders", ORDER_COLUMNS)
