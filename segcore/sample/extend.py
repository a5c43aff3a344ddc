"""More days for an existing sample lake, optionally with a campaign of known effect.

Each customer keeps buying (and browsing) at the daily rate of their last :data:`RATE_DAYS` days
in the lake: the new rows are drawn as a Poisson count per customer and copy a random one of the
customer's recent orders (or events) at a new time, so baskets, categories and returns keep their
mix. The customers of a campaign's treatment list order at ``1 + effect`` times their rate, so
their orders and revenue per customer are ``1 + effect`` times what they would have been: the lift
``segcore lift`` should find. The lake is extended as a whole or not at all (a hard-linked copy
gets the new files and replaces the lake).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from segcore.errors import LakeError
from segcore.sample.lake import one_writer_at_a_time, swap_into_place
from segcore.storage.versions import POINTER, local_partition

RATE_DAYS = 180
_TIME = {"orders": "order_ts", "events": "event_ts"}
_DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Extension:
    path: str
    start: dt.date  # first new day
    end: dt.date  # last new day
    orders: int
    events: int
    treated: int  # customers of the campaign's treatment list


def treatment_ids(campaign: str | os.PathLike) -> np.ndarray:
    """The customer ids of a treatment list: an audience export's partition or version folder, or
    its ``treatment.csv``."""
    path = Path(campaign)
    if path.is_dir():
        folder = Path(local_partition(path)) if (path / POINTER).exists() else path
        path = folder / "treatment.csv"
    if not path.is_file():
        raise LakeError(
            f"--campaign {campaign}: no treatment list there (an audience export or its treatment.csv)"
        )
    table = pv.read_csv(path, convert_options=pv.ConvertOptions(include_columns=["customer_id"]))
    return table.column("customer_id").to_numpy()


def _lake_end(lake: Path) -> tuple[dt.date, int]:
    """The lake's last order day and its largest order id (one read of the two columns)."""
    orders = ds.dataset(lake / "orders", partitioning="hive").to_table(columns=["order_ts", "order_id"])
    latest = pc.max(orders.column("order_ts")).as_py()
    if latest is None:
        raise LakeError(f"table 'orders' under {lake} has no orders to extend from")
    return latest.date(), pc.max(orders.column("order_id")).as_py()


def _recent(lake: Path, table: str, since: dt.date) -> pa.Table:
    """The rows of ``table`` from ``since`` on, sorted by customer."""
    column = _TIME[table]
    data = ds.dataset(lake / table, partitioning="hive")
    rows = data.to_table(
        filter=ds.field(column) >= pa.scalar(dt.datetime.combine(since, dt.time()), pa.timestamp("us"))
    )
    if "month" in rows.column_names:  # the partition folder, not a column of the lake's files
        rows = rows.drop_columns(["month"])
    return rows.sort_by("customer_id")


def _new_rows(
    rng: np.random.Generator,
    recent: pa.Table,
    start: dt.date,
    days: int,
    treated: np.ndarray | None = None,
    effect: float = 0.0,
) -> pa.Table:
    """Copies of ``recent`` rows at new times in ``days`` days from ``start``: per customer a
    Poisson count at their recent daily rate, ``1 + effect`` times that for the ``treated`` ids."""
    customers, first, count = np.unique(
        recent.column("customer_id").to_numpy(), return_index=True, return_counts=True
    )
    boost = 1.0 if treated is None else np.where(np.isin(customers, treated), 1.0 + effect, 1.0)
    expected = count / RATE_DAYS * days * boost
    drawn = rng.poisson(expected)
    owner = np.repeat(np.arange(len(customers)), drawn)
    source = first[owner] + (rng.random(len(owner)) * count[owner]).astype(np.int64)
    rows = recent.take(pa.array(source))
    seconds = (rng.random(len(owner)) * days * _DAY_SECONDS).astype(np.int64)
    base = np.datetime64(start.isoformat(), "s")
    times = pa.array((base + seconds.astype("timedelta64[s]")).astype("datetime64[us]"), pa.timestamp("us"))
    column = next(name for name in _TIME.values() if name in rows.column_names)
    return rows.set_column(rows.column_names.index(column), column, times)


def _numbered(orders: pa.Table, after: int) -> pa.Table:
    """``orders`` with order ids following ``after``, the lake's largest."""
    numbers = pa.array(np.arange(after + 1, after + 1 + orders.num_rows), pa.int64())
    return orders.set_column(orders.column_names.index("order_id"), "order_id", numbers)


def _with_sessions(events: pa.Table) -> pa.Table:
    """``events`` with the sample lake's session ids: one per customer and day."""
    day = events.column("event_ts").to_numpy().astype("datetime64[D]").astype(np.int64)
    sessions = events.column("customer_id").to_numpy() * 100_000 + day
    return events.set_column(
        events.column_names.index("session_id"), "session_id", pa.array(sessions, pa.int64())
    )


def _write_monthly(folder: Path, table: str, rows: pa.Table, tag: str) -> None:
    """``rows`` into ``<table>/month=YYYY-MM/part-<tag>.parquet`` files beside the lake's own."""
    months = rows.column(_TIME[table]).to_numpy().astype("datetime64[M]")
    for month in np.unique(months):
        path = folder / table / f"month={month}" / f"part-{tag}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows.filter(pa.array(months == month)), path)


def extend_lake(
    lake: str | os.PathLike, days: int, seed: int, campaign: str | None = None, effect: float = 0.0
) -> Extension:
    """Add ``days`` days after the lake's last order day (module docstring)."""
    lake = Path(lake)
    if days < 1:
        raise LakeError(f"--extend-days must be at least 1, got {days}")
    if not (lake / "orders").is_dir():
        raise LakeError(f"--out {lake}: no sample lake there to extend (no orders/ folder)")
    if effect <= -1:
        raise LakeError(f"--effect must be above -1 (a rate cannot fall below 0), got {effect}")
    if effect and campaign is None:
        raise LakeError("--effect needs --campaign: the treatment list whose customers it applies to")
    treated = treatment_ids(campaign) if campaign else np.array([], dtype=np.int64)
    with one_writer_at_a_time(lake):  # a run that overlaps this one extends its result
        return _extend(lake, days, seed, treated, effect)


def _extend(lake: Path, days: int, seed: int, treated: np.ndarray, effect: float) -> Extension:
    """:func:`extend_lake` once its arguments are checked, holding the lake's writer lock."""
    last, largest_id = _lake_end(lake)
    start = last + dt.timedelta(days=1)
    since = start - dt.timedelta(days=RATE_DAYS)

    rng = np.random.default_rng([seed, days, start.toordinal()])
    orders = _numbered(
        _new_rows(rng, _recent(lake, "orders", since), start, days, treated, effect), largest_id
    )
    events = None
    if (lake / "events").is_dir():
        events = _with_sessions(_new_rows(rng, _recent(lake, "events", since), start, days))
    staging = lake.parent / f".{lake.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        shutil.copytree(lake, staging, copy_function=os.link)  # the lake's files, shared, not copied
        tag = f"{start:%Y%m%d}-{days}d"
        _write_monthly(staging, "orders", orders, tag)
        if events is not None:
            _write_monthly(staging, "events", events, tag)
        swap_into_place(staging, lake)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Extension(
        str(lake),
        start,
        last + dt.timedelta(days=days),
        orders.num_rows,
        events.num_rows if events is not None else 0,
        len(treated),
    )
