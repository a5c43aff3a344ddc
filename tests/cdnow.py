"""The CDNOW sample (2,357 customers, 1997-01 to 1998-06) that the `lifetimes` package ships, as a
lake folder of Parquet orders with a config mapping its columns, as a user would bring it."""

import importlib.util
from pathlib import Path

import pandas as pd

COLUMNS = ["customer", "customer_index", "date", "cds", "dollar_value"]
# The lake's own column names mapped to segcore's.
MAPPING = {
    "customer_id": "customer",
    "order_ts": "to_date(CAST(date AS STRING), 'yyyyMMdd')",
    "amount": "dollar_value",
    "order_id": None,
    "returned": None,
}


def cdnow_file() -> Path:
    """The text file, found without importing `lifetimes` (whose import is slow)."""
    (folder,) = importlib.util.find_spec("lifetimes").submodule_search_locations
    return Path(folder, "datasets", "CDNOW_sample.txt")


def cdnow_lake(root: Path) -> Path:
    """``root/orders/part-0.parquet`` of the sample's rows; returns the orders folder."""
    orders = pd.read_csv(cdnow_file(), sep=r"\s+", header=None, names=COLUMNS)
    folder = root / "orders"
    folder.mkdir(parents=True)
    orders.to_parquet(folder / "part-0.parquet", index=False)
    return folder


def cdnow_config(workdir: Path, orders: Path, **value) -> dict:
    """Config data: orders only, the rfm group, time in weeks, ``value`` settings added."""
    return {
        "workdir": str(workdir),
        "as_of": "1997-10-01",
        "lake": {"customers": None, "events": None, "orders": {"path": str(orders), "columns": MAPPING}},
        "features": {"groups": ["rfm"]},
        "value": {"time_unit": "week", **value},
    }
