"""The sample lake: customers, orders and events as Parquet, with planted segments.

Every customer belongs to one planted segment whose behaviour is drawn from its own
distributions (log-normal spend, seasonality, many one-time buyers among new and browsing
customers). Membership is written to ``planted_segments.parquet`` beside the tables so tests can
measure how well the pipeline recovers it. The same seed gives the same lake.

Behaviour can shift before the end date: with ``lapsing`` > 0 that share of the
``high_value_loyal`` customers (drawn from their own seeded stream, so the rest of the lake is
unchanged) lapse: their activity ends :data:`LAPSE_DAYS` days earlier, so they have no orders
and no events in the last month. The ``lapsed`` column of ``planted_segments.parquet`` marks them.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

DAY = np.timedelta64(1, "D")
CATEGORIES = ["electronics", "fashion", "home", "beauty", "grocery", "sports"]
CHANNELS = ["web", "app", "store"]
REGIONS = {
    "north": ["Oslo", "Bergen", "Tromso"],
    "south": ["Madrid", "Seville", "Valencia"],
    "east": ["Warsaw", "Krakow", "Gdansk"],
    "west": ["Lisbon", "Porto", "Dublin"],
}
INCOME_BANDS = ["low", "lower_middle", "middle", "upper_middle", "high"]
EVENT_TYPES = ["page_view", "search", "product_view", "add_to_cart", "checkout"]
# Seasonality of orders by month (Jan..Dec): a holiday peak and a summer dip.
MONTH_WEIGHT = np.array([0.8, 0.8, 0.9, 0.95, 1.0, 0.9, 0.85, 0.9, 1.0, 1.1, 1.5, 1.7])
LAPSING_SEGMENT = "high_value_loyal"
LAPSE_DAYS = 31


@dataclass(frozen=True)
class PlantedSegment:
    """How the customers of one planted segment behave."""

    name: str
    weight: float
    tenure_days: tuple[int, int]  # signup this many days before the end date
    lapse_days: tuple[int, int]  # last activity this many days before the end date
    orders_mean: float
    min_orders: int
    log_amount: tuple[float, float]  # mean and sigma of log(amount)
    discount_prob: float
    return_prob: float
    events_mean: float
    mobile_prob: float
    income_shift: float  # shifts the income band distribution up (+) or down (-)
    category_weights: tuple[float, ...]


PLANTED_SEGMENTS: tuple[PlantedSegment, ...] = (
    PlantedSegment(
        "high_value_loyal",
        0.15,
        (420, 730),
        (0, 20),
        55,
        12,
        (4.7, 0.45),
        0.10,
        0.04,
        14,
        0.35,
        1.0,
        (3, 2, 2, 1, 1, 1),
    ),
    PlantedSegment(
        "lapsed_big_spenders",
        0.15,
        (450, 730),
        (200, 420),
        30,
        8,
        (4.8, 0.45),
        0.10,
        0.05,
        5,
        0.30,
        0.8,
        (3, 2, 2, 1, 0.5, 1),
    ),
    PlantedSegment(
        "bargain_hunters",
        0.25,
        (200, 730),
        (0, 45),
        26,
        6,
        (3.1, 0.45),
        0.75,
        0.15,
        10,
        0.45,
        -0.6,
        (1, 3, 1, 2, 3, 1),
    ),
    PlantedSegment(
        "new_customers",
        0.20,
        (5, 75),
        (0, 5),
        0.4,
        1,
        (3.9, 0.55),
        0.30,
        0.05,
        6,
        0.50,
        0.0,
        (1, 1, 1, 1, 1, 1),
    ),
    PlantedSegment(
        "mobile_first_browsers",
        0.25,
        (150, 730),
        (0, 30),
        1.0,
        1,
        (3.5, 0.55),
        0.25,
        0.08,
        70,
        0.92,
        -0.2,
        (2, 2, 1, 2, 1, 1),
    ),
)


def _choice(rng: np.random.Generator, options: list[str], n: int, p=None) -> np.ndarray:
    return np.asarray(options, dtype=object)[rng.choice(len(options), size=n, p=p)]


def _seasonal_times(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """One timestamp per (lo, hi) window, drawn with the monthly seasonality."""
    out = np.empty(len(lo), dtype="datetime64[s]")
    todo = np.arange(len(lo))
    span = (hi - lo).astype("timedelta64[s]").astype(np.int64)
    while len(todo):
        offset = (rng.random(len(todo)) * span[todo]).astype(np.int64)
        ts = lo[todo] + offset.astype("timedelta64[s]")
        month = ts.astype("datetime64[M]").astype(np.int64) % 12
        keep = rng.random(len(todo)) < MONTH_WEIGHT[month] / MONTH_WEIGHT.max()
        out[todo[keep]] = ts[keep]
        todo = todo[~keep]
    return out


def _customers(rng, n, end, segment_idx) -> pd.DataFrame:
    segs = PLANTED_SEGMENTS
    tenure = np.array([rng.integers(*segs[s].tenure_days) for s in segment_idx])
    shift = np.array([segs[s].income_shift for s in segment_idx])
    income = np.clip(np.round(rng.normal(2 + shift, 1.0)), 0, len(INCOME_BANDS) - 1).astype(int)
    region = _choice(rng, list(REGIONS), n, p=[0.2, 0.3, 0.25, 0.25])
    city = np.array([REGIONS[r][i] for r, i in zip(region, rng.integers(0, 3, n), strict=True)])
    return pd.DataFrame(
        {
            "customer_id": np.arange(100_001, 100_001 + n, dtype=np.int64),
            "signup_date": pd.to_datetime((end - tenure * DAY).astype("datetime64[D]")).date,
            "birth_year": rng.integers(1950, 2006, n).astype(np.int32),
            "gender": _choice(rng, ["female", "male", "unknown"], n, p=[0.49, 0.47, 0.04]),
            "income_band": np.asarray(INCOME_BANDS, dtype=object)[income],
            "country": np.where(np.isin(region, ["north"]), "NO", "EU"),
            "region": region,
            "city": city,
        }
    )


def _windows(rng, customers: pd.DataFrame, segment_idx, end):
    """Per customer: first and last moment of activity."""
    lapse = np.array([rng.integers(*PLANTED_SEGMENTS[s].lapse_days) for s in segment_idx])
    first = np.asarray(customers["signup_date"], dtype="datetime64[D]").astype("datetime64[s]")
    last = (end - lapse * DAY).astype("datetime64[s]")
    last = np.maximum(last, first + DAY)
    return first, last


def _lapsing(seed: int, segment_idx: np.ndarray, share: float) -> np.ndarray:
    """Which customers lapse: ``share`` of the lapsing segment, from a stream of their own."""
    loyal = np.flatnonzero(segment_idx == [s.name for s in PLANTED_SEGMENTS].index(LAPSING_SEGMENT))
    chosen = np.random.default_rng([seed, LAPSE_DAYS]).choice(loyal, round(share * len(loyal)), replace=False)
    lapsed = np.zeros(len(segment_idx), dtype=bool)
    lapsed[chosen] = True
    return lapsed


def _orders(rng, customers, segment_idx, first, last) -> pd.DataFrame:
    segs = PLANTED_SEGMENTS
    mean = np.array([segs[s].orders_mean for s in segment_idx])
    floor = np.array([segs[s].min_orders for s in segment_idx])
    counts = np.maximum(rng.poisson(mean), floor)
    row_seg = np.repeat(segment_idx, counts)
    n = len(row_seg)
    log_mu = np.array([s.log_amount[0] for s in segs])[row_seg]
    log_sigma = np.array([s.log_amount[1] for s in segs])[row_seg]
    discounted = rng.random(n) < np.array([s.discount_prob for s in segs])[row_seg]
    category_p = np.array([np.asarray(s.category_weights) / sum(s.category_weights) for s in segs])
    cumulative = category_p.cumsum(axis=1)[row_seg]
    category = (rng.random(n)[:, None] > cumulative).sum(axis=1).clip(0, len(CATEGORIES) - 1)
    ts = _seasonal_times(rng, np.repeat(first, counts), np.repeat(last, counts))
    return pd.DataFrame(
        {
            "order_id": np.arange(1, n + 1, dtype=np.int64),
            "customer_id": np.repeat(customers["customer_id"].to_numpy(), counts),
            "order_ts": ts.astype("datetime64[us]"),
            "amount": np.round(np.exp(rng.normal(log_mu, log_sigma)), 2),
            "quantity": (1 + rng.poisson(1.2, n)).astype(np.int32),
            "category": np.asarray(CATEGORIES, dtype=object)[category],
            "channel": _choice(rng, CHANNELS, n, p=[0.5, 0.3, 0.2]),
            "discount": np.where(discounted, np.round(rng.uniform(0.05, 0.5, n), 2), 0.0),
            "returned": rng.random(n) < np.array([s.return_prob for s in segs])[row_seg],
        }
    )


def _events(rng, customers, segment_idx, first, last) -> pd.DataFrame:
    segs = PLANTED_SEGMENTS
    counts = rng.poisson(np.array([segs[s].events_mean for s in segment_idx]))
    row_seg = np.repeat(segment_idx, counts)
    n = len(row_seg)
    mobile = rng.random(n) < np.array([s.mobile_prob for s in segs])[row_seg]
    device = np.where(mobile, "mobile", _choice(rng, ["desktop", "tablet"], n, p=[0.8, 0.2]))
    apple = rng.random(n) < 0.45
    os_name = np.where(
        device == "desktop", np.where(apple, "macos", "windows"), np.where(apple, "ios", "android")
    )
    ts = _seasonal_times(rng, np.repeat(first, counts), np.repeat(last, counts))
    return pd.DataFrame(
        {
            "customer_id": np.repeat(customers["customer_id"].to_numpy(), counts),
            "event_ts": ts.astype("datetime64[us]"),
            "event_type": _choice(rng, EVENT_TYPES, n, p=[0.4, 0.2, 0.25, 0.1, 0.05]),
            "device": device,
            "os": os_name,
            # One session per customer and active day.
            "session_id": np.repeat(customers["customer_id"].to_numpy(), counts) * 100_000
            + ts.astype("datetime64[D]").astype(np.int64),
        }
    )


def _write_by_month(frame: pd.DataFrame, ts_column: str, directory: Path) -> None:
    frame = frame.assign(month=frame[ts_column].dt.strftime("%Y-%m"))
    ds.write_dataset(
        pa.Table.from_pandas(frame, preserve_index=False),
        directory,
        format="parquet",
        partitioning=["month"],
        partitioning_flavor="hive",
        max_rows_per_file=2_000_000,
    )


@dataclass(frozen=True)
class LakeSummary:
    path: str
    customers: int
    orders: int
    events: int


def generate_lake(
    out: str | Path, customers: int, seed: int, end: dt.date, lapsing: float = 0.0
) -> LakeSummary:
    """Write ``customers/``, ``orders/``, ``events/`` and ``planted_segments.parquet`` under
    ``out``, replacing any previous lake there only once the new one is complete; ``lapsing``:
    the share of loyal customers without activity in the last month (module docstring)."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if not 0 <= lapsing <= 1:
        raise ValueError("lapsing must be a share between 0 and 1")
    rng = np.random.default_rng(seed)
    end64 = np.datetime64(end.isoformat(), "s")
    weights = np.array([s.weight for s in PLANTED_SEGMENTS])
    segment_idx = rng.choice(len(PLANTED_SEGMENTS), size=customers, p=weights / weights.sum())
    table = _customers(rng, customers, np.datetime64(end.isoformat(), "D"), segment_idx)
    first, last = _windows(rng, table, segment_idx, end64)
    lapsed = _lapsing(seed, segment_idx, lapsing)
    last = np.where(lapsed, np.maximum(last - LAPSE_DAYS * DAY, first + DAY), last)
    orders = _orders(rng, table, segment_idx, first, last)
    events = _events(rng, table, segment_idx, first, last)

    out = Path(out)
    staging = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), _file(staging, "customers"))
        _write_by_month(orders, "order_ts", staging / "orders")
        _write_by_month(events, "event_ts", staging / "events")
        planted = pd.DataFrame(
            {
                "customer_id": table["customer_id"],
                "segment": np.asarray([s.name for s in PLANTED_SEGMENTS], dtype=object)[segment_idx],
                "lapsed": lapsed,
            }
        )
        pq.write_table(
            pa.Table.from_pandas(planted, preserve_index=False), staging / "planted_segments.parquet"
        )
        swap_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return LakeSummary(str(out), customers, len(orders), len(events))


def _file(directory: Path, table: str) -> Path:
    (directory / table).mkdir()
    return directory / table / "part-0.parquet"


def swap_into_place(staging: Path, out: Path) -> None:
    """Replace ``out`` by the complete folder ``staging`` (readers never see half a lake)."""
    if out.exists():
        retired = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        out.rename(retired)
        staging.rename(out)
        shutil.rmtree(retired)
    else:
        staging.rename(out)
