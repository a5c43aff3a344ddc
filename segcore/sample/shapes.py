"""Lakes shaped like real retail exports, for ``segcore generate --shape``.

- ``transactions``: one table, ``transactions/``, one row per invoice line as a shop system
  exports it: ``InvoiceNo`` (string; cancellations are separate invoices ``C<number>`` with
  negative quantities), ``StockCode``, ``Description``, ``Quantity``, ``InvoiceDate`` (a string,
  ``M/d/yyyy H:mm``), ``UnitPrice``, ``CustomerID`` (a float; blank for guest checkouts, about a
  quarter of the lines) and ``Country``; a few wholesale accounts buy in bulk. No customer master,
  no events. ``conf/examples/transactions.yaml`` maps it.
- ``normalized``: ``order_headers/`` (order_id, placed_at, status: complete, shipped or
  cancelled), ``order_lines/`` (order_id, line_no, sku, qty, unit_price, line_status: ok or
  returned), ``order_customers/`` (order_id, customer_key: one row per order, a few duplicated;
  guest orders have none) and ``products/`` (sku, category, product_name).
  ``conf/examples/normalized.yaml`` maps it with a query.

Both plant the hard cases: a customer whose huge order was cancelled, one whose only order was
cancelled, and one with nothing but a cancellation (transactions) or only cancelled orders
(normalized). The same seed gives the same lake.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segcore.sample.lake import CATEGORIES, check_replaceable, replace_lake

HISTORY_DAYS = 730
WHOLESALE_SHARE = 0.03
GUEST_LINE_SHARE = 0.25
CANCELLED_SHARE = 0.07
FILES_PER_TABLE = 3
COUNTRIES = ["United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands"]
MINUTE = np.timedelta64(1, "m")


@dataclass(frozen=True)
class ShapeSummary:
    path: str
    rows: dict[str, int]  # rows written by table


def _products(rng: np.random.Generator, n: int = 200) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sku": [f"{84000 + i}{'ABC'[i % 3] if i % 4 == 0 else ''}" for i in range(n)],
            "category": np.asarray(CATEGORIES, dtype=object)[rng.integers(0, len(CATEGORIES), n)],
            "product_name": [f"ITEM {i:03d}" for i in range(n)],
            "price": np.round(np.exp(rng.normal(1.0, 0.8, n)), 2) + 0.05,
        }
    )


def _order_times(rng: np.random.Generator, counts: np.ndarray, end: np.datetime64) -> np.ndarray:
    """Order times per buyer: between a first day in the history and a last active day."""
    n = len(counts)
    first = end - rng.integers(1, HISTORY_DAYS, n) * 1440 * MINUTE
    span = (end - first).astype(np.int64)
    lapse = np.minimum(rng.exponential(0.2, n) * span, span - 1).astype(np.int64)
    last = end - lapse * MINUTE
    lo, hi = np.repeat(first, counts), np.repeat(last, counts)
    offset = (rng.random(len(lo)) * (hi - lo).astype(np.int64)).astype(np.int64)
    return lo + offset * MINUTE


def _orders(rng: np.random.Generator, customers: int, end: np.datetime64) -> pd.DataFrame:
    """One row per order: buyer index (-1 for guests), time, wholesale flag, lines."""
    wholesale = rng.random(customers) < WHOLESALE_SHARE
    counts = np.where(wholesale, 15 + rng.poisson(25, customers), 1 + rng.poisson(2.5, customers))
    customer_lines = (counts * np.where(wholesale, 11, 5)).sum()  # expected lines of customers' orders
    guests = int(customer_lines * GUEST_LINE_SHARE / (1 - GUEST_LINE_SHARE) / 5)
    buyer = np.concatenate([np.repeat(np.arange(customers), counts), np.full(guests, -1)])
    bulk = np.concatenate([np.repeat(wholesale, counts), np.zeros(guests, bool)])
    ts = np.concatenate([_order_times(rng, counts, end), _order_times(rng, np.ones(guests, int), end)])
    lines = np.where(bulk, 1 + rng.poisson(10, len(bulk)), 1 + rng.poisson(4, len(bulk)))
    return pd.DataFrame({"buyer": buyer, "ts": ts, "bulk": bulk, "lines": lines})


def _lines(rng: np.random.Generator, orders: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """One row per order line: order index, product index, quantity."""
    order = np.repeat(np.arange(len(orders)), orders["lines"].to_numpy())
    bulk = orders["bulk"].to_numpy()[order]
    pack = rng.choice([12, 24, 48, 100], len(order))
    quantity = (1 + rng.poisson(2, len(order))) * np.where(bulk, pack, 1)
    return pd.DataFrame(
        {"order": order, "product": rng.integers(0, len(products), len(order)), "qty": quantity}
    )


def _plant(orders: pd.DataFrame, lines: pd.DataFrame, buyers: list[int], end: np.datetime64) -> tuple:
    """The hard cases, as extra orders of the given (otherwise orderless) buyers: a £2.90 order and a
    £166,400 one that gets cancelled; a single order that gets cancelled."""
    whale, cancelled_only = buyers
    at = end - 40 * 1440 * MINUTE
    extra = pd.DataFrame(
        {
            "buyer": [whale, whale, cancelled_only],
            "ts": [at - 5 * 1440 * MINUTE, at, at],
            "bulk": False,
            "lines": 1,
        }
    )
    first = len(orders)
    extra_lines = pd.DataFrame(
        {"order": [first, first + 1, first + 2], "product": [0, 1, 2], "qty": [1, 80_000, 3]}
    )
    prices = {0: 2.90, 1: 2.08}
    return (
        pd.concat([orders, extra], ignore_index=True),
        pd.concat([lines, extra_lines], ignore_index=True),
        prices,
    )


def _write(out: Path, tables: dict[str, pd.DataFrame], sort_by: dict[str, str]) -> ShapeSummary:
    """Write each table as a few Parquet files, replacing any previous lake only once complete."""
    check_replaceable(out)
    staging = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        for name, frame in tables.items():
            (staging / name).mkdir(parents=True)
            frame = frame.sort_values(sort_by[name], kind="stable") if name in sort_by else frame
            for i, part in enumerate(np.array_split(np.arange(len(frame)), FILES_PER_TABLE)):
                chunk = pa.Table.from_pandas(frame.iloc[part], preserve_index=False)
                pq.write_table(chunk, staging / name / f"part-{i:05d}.parquet")
        replace_lake(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ShapeSummary(str(out), {name: len(frame) for name, frame in tables.items()})


def _invoice_date(ts: np.ndarray) -> list[str]:
    return [f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}" for t in pd.DatetimeIndex(ts)]


def _shop(customers: int, seed: int, end: dt.date):
    """What both shapes are cut from: the generator, the end as a minute, products, orders and
    their lines (with the planted whale and cancelled orders), and the planted products' prices."""
    rng = np.random.default_rng(seed)
    end64 = np.datetime64(end.isoformat(), "m")
    products = _products(rng)
    orders = _orders(rng, customers, end64)
    lines = _lines(rng, orders, products)
    orders, lines, planted_prices = _plant(orders, lines, [customers, customers + 1], end64)
    return rng, end64, products, orders, lines, planted_prices


def generate_transactions(out: str | Path, customers: int, seed: int, end: dt.date) -> ShapeSummary:
    """Write ``transactions/`` (see the module docstring) under ``out``."""
    rng, end64, products, orders, lines, planted_prices = _shop(customers, seed, end)
    ids = rng.choice(np.arange(12_000, 99_999), customers + 3, replace=False).astype(np.float64)
    country = np.asarray(COUNTRIES, dtype=object)[rng.choice(len(COUNTRIES), customers + 3)]

    # Cancellations: separate later invoices with negative quantities for some lines of an order.
    whale_small, planted = len(orders) - 3, [len(orders) - 2, len(orders) - 1]
    cancelled = np.flatnonzero(rng.random(len(orders)) < CANCELLED_SHARE)
    cancelled = np.union1d(np.setdiff1d(cancelled, [whale_small]), planted)
    back = lines[lines["order"].isin(cancelled)]
    back = back[(rng.random(len(back)) < 0.6) | back["order"].isin(planted)]
    delay = np.where(np.isin(cancelled, planted), 1440, rng.integers(60, 20 * 1440, len(cancelled))) * MINUTE
    cancel_orders = orders.iloc[cancelled].assign(ts=lambda o: np.minimum(o.ts + delay, end64 - MINUTE))
    cancel_orders = cancel_orders[cancel_orders.index.isin(back["order"])]
    cancel_index = dict(
        zip(cancel_orders.index, range(len(orders), len(orders) + len(cancel_orders)), strict=True)
    )
    back = back.assign(order=back["order"].map(cancel_index), qty=-back["qty"])
    # One customer has nothing but a cancellation (the purchase was before the history began).
    only_cancel = pd.DataFrame({"buyer": [customers + 2], "ts": [end64 - 100 * 1440 * MINUTE], "bulk": False})
    all_orders = pd.concat([orders, cancel_orders, only_cancel], ignore_index=True)
    back = pd.concat([back, pd.DataFrame({"order": [len(all_orders) - 1], "product": [5], "qty": [-2]})])
    all_lines = pd.concat([lines, back], ignore_index=True)
    is_cancel = np.arange(len(all_orders)) >= len(orders)
    number = pd.Series(all_orders["ts"].rank(method="first").astype(int) + 536_364)
    invoice = np.where(is_cancel, "C" + number.astype(str), number.astype(str))

    price = products["price"].to_numpy().copy()
    for product, value in planted_prices.items():
        price[product] = value
    order = all_lines["order"].to_numpy()
    buyer = all_orders["buyer"].to_numpy()[order]
    guest = buyer < 0
    table = pd.DataFrame(
        {
            "InvoiceNo": invoice[order],
            "StockCode": products["sku"].to_numpy()[all_lines["product"]],
            "Description": products["product_name"].to_numpy()[all_lines["product"]],
            "Quantity": all_lines["qty"].to_numpy().astype(np.int64),
            "InvoiceDate": _invoice_date(all_orders["ts"].to_numpy()[order]),
            "UnitPrice": price[all_lines["product"]],
            "CustomerID": np.where(guest, np.nan, ids[np.maximum(buyer, 0)]),
            "Country": np.where(guest, "United Kingdom", country[np.maximum(buyer, 0)]),
            "_ts": all_orders["ts"].to_numpy()[order],
        }
    )
    table = table.sort_values("_ts", kind="stable").drop(columns="_ts")
    return _write(Path(out), {"transactions": table}, {})


def generate_normalized(out: str | Path, customers: int, seed: int, end: dt.date) -> ShapeSummary:
    """Write ``order_headers/``, ``order_lines/``, ``order_customers/`` and ``products/`` under ``out``."""
    rng, end64, products, orders, lines, planted_prices = _shop(customers, seed, end)
    # One more customer whose orders were all cancelled (status), and the planted ones cancelled too.
    extra = pd.DataFrame({"buyer": [customers + 2] * 2, "ts": end64 - np.array([90, 30]) * 1440 * MINUTE})
    orders = pd.concat([orders, extra.assign(bulk=False, lines=1)], ignore_index=True)
    lines = pd.concat(
        [lines, pd.DataFrame({"order": [len(orders) - 2, len(orders) - 1], "product": 3, "qty": 1})]
    )
    status = np.asarray(["complete", "shipped", "cancelled"], dtype=object)[
        rng.choice(3, len(orders), p=[0.85, 1 - 0.85 - CANCELLED_SHARE, CANCELLED_SHARE])
    ]
    # Planted, in order: the whale's small order (stands), its huge order, the single order of
    # another customer, and a third customer's two orders (all cancelled).
    status[len(orders) - 5] = "complete"
    status[len(orders) - 4 :] = "cancelled"
    order_id = np.asarray([f"SO-{i:07d}" for i in rng.permutation(len(orders)) + 1_000_000], dtype=object)
    keys = np.asarray(
        [f"CUST-{i:06d}" for i in rng.choice(900_000, customers + 3, replace=False)], dtype=object
    )

    price = products["price"].to_numpy().copy()
    for product, value in planted_prices.items():
        price[product] = value
    headers = pd.DataFrame(
        {
            "order_id": order_id,
            "placed_at": orders["ts"].to_numpy().astype("datetime64[us]"),
            "status": status,
        }
    )
    order = lines["order"].to_numpy()
    line_table = pd.DataFrame(
        {
            "order_id": order_id[order],
            "line_no": lines.groupby("order").cumcount().to_numpy() + 1,
            "sku": products["sku"].to_numpy()[lines["product"]],
            "qty": lines["qty"].to_numpy().astype(np.int32),
            "unit_price": price[lines["product"]],
            # The planted orders (the last five) keep every line.
            "line_status": np.where(
                (rng.random(len(lines)) < 0.05) & (order < len(orders) - 5), "returned", "ok"
            ),
        }
    )
    buyer = orders["buyer"].to_numpy()
    known = np.flatnonzero(buyer >= 0)
    links = pd.DataFrame({"order_id": order_id[known], "customer_key": keys[buyer[known]]})
    duplicated = links.sample(frac=0.03, random_state=seed)
    links = pd.concat([links, duplicated], ignore_index=True)
    product_table = products.drop(columns="price")
    return _write(
        Path(out),
        {
            "order_headers": headers,
            "order_lines": line_table,
            "order_customers": links,
            "products": product_table,
        },
        {"order_headers": "placed_at", "order_lines": "order_id", "order_customers": "order_id"},
    )


SHAPES: dict[str, Callable[[str | Path, int, int, dt.date], ShapeSummary]] = {
    "transactions": generate_transactions,
    "normalized": generate_normalized,
}
