"""Small hand-made lakes for the lake tests, unlike the sample lake's habits: line-level orders in
several Parquet files, string timestamps, float customer ids with blanks, real NaNs, CSV sources."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from conftest import AS_OF


def write_parquet(path: Path, **columns: list) -> Path:
    """One Parquet file from Python lists (None is null, float('nan') stays NaN)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({name: pa.array(values) for name, values in columns.items()}), path)
    return path


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


NAN = float("nan")

# Invoice lines: (InvoiceNo, CustomerID, Quantity, UnitPrice, InvoiceDate), as_of 2026-06-30.
LINES = {
    "month=2025-12/part-0.parquet": [
        ("1001", 17850.0, 6, 2.55, "12/1/2025 8:26"),  # used
        ("1001", 17850.0, 2, 3.39, "12/1/2025 8:26"),  # used: a second line of the same invoice
        ("1002", None, 1, 1.00, "12/2/2025 9:00"),  # guest: dropped, null customer id
        ("1003", 13047.0, 3, None, "12/2/2025 9:30"),  # dropped: null amount
    ],
    "month=2026-01/part-0.parquet": [
        ("C1004", 17850.0, -1, 2.55, "1/3/2026 10:00"),  # used: a return, negative amount
        ("1005", 13047.0, 2, 1.25, "not a date"),  # dropped: bad timestamp
        ("1006", None, 1, 1.00, "not a date"),  # dropped: counted as null customer id (first reason)
        ("1010", 17850.0, 1, NAN, "1/9/2026 10:00"),  # dropped: NaN amount counts as null amount
        ("1009", 99999.0, 1, 5.00, "1/5/2026 12:00"),  # used; customer not in the master: an orphan
    ],
    "month=2026-07/part-0.parquet": [
        ("1007", None, 5, NAN, "7/2/2026 10:00"),  # after as_of: bad, but neither counted nor refused
        ("1008", 13047.0, 1, 1e12, "7/3/2026 11:00"),  # after as_of: absurd, but not refused
    ],
}
USED_AMOUNTS = sorted([6 * 2.55, 2 * 3.39, -2.55, 5.0])
LINE_COUNTS = {
    "orders": 4,
    "orders_after_as_of": 2,
    "orders_dropped_null_customer_id": 2,
    "orders_dropped_bad_timestamp": 1,
    "orders_dropped_null_amount": 2,
}
LINE_COLUMNS = {
    "order_id": "InvoiceNo",
    "customer_id": "CAST(CustomerID AS BIGINT)",
    "amount": "Quantity * UnitPrice",
    "order_ts": "to_timestamp(InvoiceDate, 'M/d/yyyy H:mm')",
}

# A customer master with string signup dates: (customer_id, signup_date).
CUSTOMERS = [
    (17850, "2024-03-01"),
    (13047, "2025-01-15 10:00:00"),
    (None, "2024-05-05"),  # dropped: null customer id
    (15000, "2026-08-01"),  # signs up after as_of
    (16000, "soon"),  # dropped: unparsable signup date
    (17000, "2023-01-01"),
]
CUSTOMER_COUNTS = {
    "customers": 3,
    "customers_after_as_of": 1,
    "customers_dropped_null_customer_id": 1,
    "customers_dropped_bad_timestamp": 1,
}


def write_lines(folder: Path, files: dict[str, list[tuple]] = LINES) -> Path:
    for name, rows in files.items():
        number, customer, quantity, price, date = (list(column) for column in zip(*rows, strict=True))
        write_parquet(
            folder / name,
            InvoiceNo=number,
            CustomerID=pa.array(customer, pa.float64()),
            Quantity=quantity,
            UnitPrice=pa.array(price, pa.float64()),
            InvoiceDate=date,
        )
    return folder


def write_customers(folder: Path) -> Path:
    ids, dates = (list(column) for column in zip(*CUSTOMERS, strict=True))
    write_parquet(folder / "part-0.parquet", customer_id=pa.array(ids, pa.int64()), signup_date=dates)
    return folder


def lines_lake(root: Path) -> dict:
    """Config data of a lake with invoice lines and a customer master (no events), building the
    RFM features."""
    return {
        "workdir": str(root),
        "as_of": AS_OF.isoformat(),
        "features": {"groups": ["rfm"]},
        "lake": {
            "customers": {"path": str(write_customers(root / "customers"))},
            "orders": {"path": str(write_lines(root / "lines")), "columns": dict(LINE_COLUMNS)},
            "events": None,
        },
    }


def write_config(path: Path, data: dict) -> Path:
    """A YAML config file for the ``segcore`` command."""
    path.write_text(yaml.safe_dump(data))
    return path
