"""The sample lake: customers, orders and events as Parquet, with planted segments.

Every customer belongs to one planted segment whose behaviour is drawn from its own
distributions (log-normal spend, seasonality, many one-time buyers among new and browsing
customers). Membership is written to ``planted_segments.parquet`` beside the tables so tests can
measure how well the pipeline recovers it. The same seed gives the same lake.

The lake is written as it is drawn, a batch of customers at a time, so memory stays bounded
whatever the number of customers: ``customers/part-0.parquet``, ``planted_segments.parquet`` and
one ``part-0.parquet`` per ``month=YYYY-MM`` folder of ``orders/`` and ``events/``, each getting a
row group per batch. Customers are drawn in blocks of :data:`BLOCK_CUSTOMERS`, each block from a
random stream of its own (the seed and the block's number), so the lake does not depend on the
batch size.

Behaviour can shift before the end date: with ``lapsing`` > 0 that share of the
``high_value_loyal`` customers of each block (drawn from a stream of their own, so the rest of the
lake is unchanged) lapse: their activity ends :data:`LAPSE_DAYS` days earlier, so they have no
orders and no events in the last month; or, with ``lapse_from``, on that date (a lapse between two
month-ends well before the end date, away from the end's own effects: active customers' last
activity is drawn from the weeks before the end date). The ``lapsed`` column of ``planted_segments.parquet``
marks them.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segcore.errors import SegcoreError
from segcore.runtime.file_lock import exclusive_lock

DAY = np.timedelta64(1, "D")
CATEGORIES = ["electronics", "fashion", "home", "beauty", "grocery", "sports"]
CHANNELS = ["web", "app", "store"]
REGIONS = {
    "north": ["Oslo", "Bergen", "Tromso"],
    "south": ["Madrid", "Seville", "Valencia"],
    "east": ["Warsaw", "Krakow", "Gdansk"],
    "west": ["Lisbon", "Porto", "Dublin"],
}
CITIES = [city for cities in REGIONS.values() for city in cities]  # region r's cities: 3r, 3r+1, 3r+2
INCOME_BANDS = ["low", "lower_middle", "middle", "upper_middle", "high"]
EVENT_TYPES = ["page_view", "search", "product_view", "add_to_cart", "checkout"]
DEVICES = ["mobile", "desktop", "tablet"]
OPERATING_SYSTEMS = ["macos", "windows", "ios", "android"]
# Contact names as CRMs hold them: commas, quotes, apostrophes and letters beyond ASCII.
GIVEN_NAMES = ["Anna", "José", "Zoë", "Łukasz", "Siobhán", 'Jan "Jim"', "Mia", "Øyvind", "Chloé", "Ola"]
FAMILY_NAMES = ["O'Brien", "Müller, Jr.", "Núñez", "Ålund", "Kowalski", "Smith", "Dubois", "Sørensen"]
# Seasonality of orders by month (Jan..Dec): a holiday peak and a summer dip.
MONTH_WEIGHT = np.array([0.8, 0.8, 0.9, 0.95, 1.0, 0.9, 0.85, 0.9, 1.0, 1.1, 1.5, 1.7])
BLOCK_CUSTOMERS = 10_000  # customers drawn from one random stream
BATCH_CUSTOMERS = 20_000  # customers held in memory at once (rounded up to whole blocks)
FIRST_CUSTOMER_ID = 100_001
LAPSING_SEGMENT = "high_value_loyal"
LAPSE_DAYS = 31
# What the sample lake's writers (generate_lake, segcore.sample.shapes) put in a lake's folder: a
# folder holding anything else is not theirs to replace.
LAKE_ENTRIES = frozenset(
    ("customers", "orders", "events", "planted_segments.parquet")
    + ("transactions", "order_headers", "order_lines", "order_customers", "products")
)


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


def _per_segment(field: str, index: int | None = None) -> np.ndarray:
    """A planted segment's setting (or one element of it) as an array indexed by segment."""
    values = [getattr(s, field) for s in PLANTED_SEGMENTS]
    return np.array(values if index is None else [v[index] for v in values])


def _strings(options: list[str], index: np.ndarray) -> pa.Array:
    """``options[index]`` as an Arrow string array, built without Python strings per row."""
    return pa.DictionaryArray.from_arrays(pa.array(index, pa.int32()), pa.array(options)).cast(pa.string())


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


def _customers(rng: np.random.Generator, ids: np.ndarray, end: np.datetime64, segment: np.ndarray):
    """The customers table of one block, and each customer's signup day."""
    n = len(ids)
    tenure = rng.integers(_per_segment("tenure_days", 0)[segment], _per_segment("tenure_days", 1)[segment])
    signup = (end - tenure * DAY).astype("datetime64[D]")
    shift = _per_segment("income_shift")[segment]
    income = np.clip(np.round(rng.normal(2 + shift, 1.0)), 0, len(INCOME_BANDS) - 1).astype(int)
    region = rng.choice(len(REGIONS), size=n, p=[0.2, 0.3, 0.25, 0.25])
    city = 3 * region + rng.integers(0, 3, n)
    table = pa.table(
        {
            "customer_id": pa.array(ids, pa.int64()),
            "signup_date": pa.array(signup, pa.date32()),
            "birth_year": pa.array(rng.integers(1950, 2006, n), pa.int32()),
            "gender": _strings(["female", "male", "unknown"], rng.choice(3, size=n, p=[0.49, 0.47, 0.04])),
            "income_band": _strings(INCOME_BANDS, income),
            "country": _strings(["NO", "EU"], (region != 0).astype(int)),  # region 0 is the north
            "region": _strings(list(REGIONS), region),
            "city": _strings(CITIES, city),
            **_contacts(ids),
        }
    )
    return table, signup


def _contacts(ids: np.ndarray) -> dict[str, pa.Array]:
    """A name and an e-mail address per customer, from the ids alone (the other columns' random
    streams are left as they were)."""
    given = _strings(GIVEN_NAMES, ids % len(GIVEN_NAMES))
    family = _strings(FAMILY_NAMES, (ids // len(GIVEN_NAMES)) % len(FAMILY_NAMES))
    number = pc.cast(pa.array(ids, pa.int64()), pa.string())
    return {
        "name": pc.binary_join_element_wise(given, family, " "),
        "email": pc.binary_join_element_wise("customer", number, "@example.com", ""),
    }


def _windows(rng: np.random.Generator, signup: np.ndarray, segment: np.ndarray, end: np.datetime64):
    """Per customer: first and last moment of activity."""
    lapse = rng.integers(_per_segment("lapse_days", 0)[segment], _per_segment("lapse_days", 1)[segment])
    first = signup.astype("datetime64[s]")
    last = np.maximum((end - lapse * DAY).astype("datetime64[s]"), first + DAY)
    return first, last


def _lapsing(seed: int, number: int, segment: np.ndarray, share: float) -> np.ndarray:
    """Which customers of block ``number`` lapse: ``share`` of its lapsing segment, from a stream of
    their own."""
    loyal = np.flatnonzero(segment == [s.name for s in PLANTED_SEGMENTS].index(LAPSING_SEGMENT))
    chosen = np.random.default_rng([seed, number, LAPSE_DAYS]).choice(
        loyal, round(share * len(loyal)), replace=False
    )
    lapsed = np.zeros(len(segment), dtype=bool)
    lapsed[chosen] = True
    return lapsed


def _orders(rng, ids, segment, first, last, first_order_id: int) -> pa.Table:
    counts = np.maximum(
        rng.poisson(_per_segment("orders_mean")[segment]), _per_segment("min_orders")[segment]
    )
    row_seg = np.repeat(segment, counts)
    n = len(row_seg)
    discounted = rng.random(n) < _per_segment("discount_prob")[row_seg]
    weights = _per_segment("category_weights")
    cumulative = (weights / weights.sum(axis=1, keepdims=True)).cumsum(axis=1)[row_seg]
    category = (rng.random(n)[:, None] > cumulative).sum(axis=1).clip(0, len(CATEGORIES) - 1)
    ts = _seasonal_times(rng, np.repeat(first, counts), np.repeat(last, counts))
    log_mu, log_sigma = _per_segment("log_amount", 0)[row_seg], _per_segment("log_amount", 1)[row_seg]
    return pa.table(
        {
            "order_id": pa.array(np.arange(first_order_id, first_order_id + n), pa.int64()),
            "customer_id": pa.array(np.repeat(ids, counts), pa.int64()),
            "order_ts": pa.array(ts.astype("datetime64[us]"), pa.timestamp("us")),
            "amount": pa.array(np.round(np.exp(rng.normal(log_mu, log_sigma)), 2), pa.float64()),
            "quantity": pa.array(1 + rng.poisson(1.2, n), pa.int32()),
            "category": _strings(CATEGORIES, category),
            "channel": _strings(CHANNELS, rng.choice(len(CHANNELS), size=n, p=[0.5, 0.3, 0.2])),
            "discount": pa.array(
                np.where(discounted, np.round(rng.uniform(0.05, 0.5, n), 2), 0.0), pa.float64()
            ),
            "returned": pa.array(rng.random(n) < _per_segment("return_prob")[row_seg], pa.bool_()),
        }
    )


def _events(rng, ids, segment, first, last) -> pa.Table:
    counts = rng.poisson(_per_segment("events_mean")[segment])
    row_seg = np.repeat(segment, counts)
    n = len(row_seg)
    mobile = rng.random(n) < _per_segment("mobile_prob")[row_seg]
    device = np.where(mobile, 0, 1 + rng.choice(2, size=n, p=[0.8, 0.2]))  # DEVICES
    apple = rng.random(n) < 0.45
    os_index = np.where(device == 1, 0, 2) + ~apple  # desktop: macos/windows; else ios/android
    ts = _seasonal_times(rng, np.repeat(first, counts), np.repeat(last, counts))
    customer = np.repeat(ids, counts)
    return pa.table(
        {
            "customer_id": pa.array(customer, pa.int64()),
            "event_ts": pa.array(ts.astype("datetime64[us]"), pa.timestamp("us")),
            "event_type": _strings(
                EVENT_TYPES, rng.choice(len(EVENT_TYPES), size=n, p=[0.4, 0.2, 0.25, 0.1, 0.05])
            ),
            "device": _strings(DEVICES, device),
            "os": _strings(OPERATING_SYSTEMS, os_index),
            # One session per customer and active day.
            "session_id": pa.array(
                customer * 100_000 + ts.astype("datetime64[D]").astype(np.int64), pa.int64()
            ),
        }
    )


@dataclass
class _Block:
    customers: pa.Table
    planted: pa.Table
    orders: pa.Table
    events: pa.Table


def _block(
    seed: int,
    number: int,
    customers: int,
    end: dt.date,
    first_order_id: int,
    lapsing: float,
    lapse_from: dt.date | None = None,
) -> _Block:
    """Block ``number`` of the lake: its customers, their planted segments, orders and events."""
    rng = np.random.default_rng([seed, number])
    start = number * BLOCK_CUSTOMERS
    ids = np.arange(FIRST_CUSTOMER_ID + start, FIRST_CUSTOMER_ID + min(start + BLOCK_CUSTOMERS, customers))
    weights = _per_segment("weight")
    segment = rng.choice(len(PLANTED_SEGMENTS), size=len(ids), p=weights / weights.sum())
    table, signup = _customers(rng, ids, np.datetime64(end.isoformat(), "D"), segment)
    first, last = _windows(rng, signup, segment, np.datetime64(end.isoformat(), "s"))
    lapsed = _lapsing(seed, number, segment, lapsing)
    if lapse_from is None:
        stopped = last - LAPSE_DAYS * DAY
    else:
        stopped = np.minimum(last, np.datetime64(lapse_from.isoformat(), "s"))
    last = np.where(lapsed, np.maximum(stopped, first + DAY), last)
    names = [s.name for s in PLANTED_SEGMENTS]
    planted = pa.table(
        {
            "customer_id": pa.array(ids, pa.int64()),
            "segment": _strings(names, segment),
            "lapsed": pa.array(lapsed, pa.bool_()),
        }
    )
    return _Block(
        table,
        planted,
        _orders(rng, ids, segment, first, last, first_order_id),
        _events(rng, ids, segment, first, last),
    )


def _blocks(
    customers: int, seed: int, end: dt.date, lapsing: float, lapse_from: dt.date | None = None
) -> Iterator[_Block]:
    """The lake's blocks in order (order ids run on from one block to the next)."""
    orders = 0
    for number in range(-(-customers // BLOCK_CUSTOMERS)):
        block = _block(seed, number, customers, end, orders + 1, lapsing, lapse_from)
        orders += block.orders.num_rows
        yield block


class _LakeWriter:
    """The lake's Parquet files under ``folder``: ``customers/part-0.parquet``,
    ``planted_segments.parquet``, and ``orders/`` and ``events/`` with one ``part-0.parquet`` per
    ``month=YYYY-MM`` folder; every file gets a row group per batch of blocks."""

    MONTHLY = {"orders": "order_ts", "events": "event_ts"}

    def __init__(self, folder: Path, stack: ExitStack):
        self.folder, self.stack = folder, stack
        self.writers: dict[Path, pq.ParquetWriter] = {}

    def write(self, blocks: list[_Block]) -> None:
        self._append(self.folder / "customers" / "part-0.parquet", _concat(blocks, "customers"))
        self._append(self.folder / "planted_segments.parquet", _concat(blocks, "planted"))
        for name, ts_column in self.MONTHLY.items():
            table = _concat(blocks, name)
            months = table.column(ts_column).to_numpy().astype("datetime64[M]")
            order = np.argsort(months, kind="stable")
            table, months = table.take(order), months[order]
            found, starts = np.unique(months, return_index=True)
            for month, start, stop in zip(found, starts, [*starts[1:], len(months)], strict=True):
                path = self.folder / name / f"month={month}" / "part-0.parquet"
                self._append(path, table.slice(start, stop - start))

    def _append(self, path: Path, table: pa.Table) -> None:
        if path not in self.writers:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writers[path] = self.stack.enter_context(pq.ParquetWriter(path, table.schema))
        self.writers[path].write_table(table)


def _concat(blocks: list[_Block], table: str) -> pa.Table:
    return pa.concat_tables([getattr(block, table) for block in blocks])


@dataclass(frozen=True)
class LakeSummary:
    path: str
    customers: int
    orders: int
    events: int


def generate_lake(
    out: str | Path,
    customers: int,
    seed: int,
    end: dt.date,
    lapsing: float = 0.0,
    batch_customers: int = BATCH_CUSTOMERS,
    lapse_from: dt.date | None = None,
) -> LakeSummary:
    """Write ``customers/``, ``orders/``, ``events/`` and ``planted_segments.parquet`` under
    ``out``, ``batch_customers`` customers (whole blocks) at a time, replacing any previous lake
    there only once the new one is complete; ``lapsing``: the share of loyal customers without
    activity in the last month, or from ``lapse_from`` on (module docstring)."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if not 0 <= lapsing <= 1:
        raise ValueError("lapsing must be a share between 0 and 1")
    blocks_per_batch = max(1, -(-batch_customers // BLOCK_CUSTOMERS))
    out = Path(out)
    check_replaceable(out)
    staging = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    orders = events = 0
    try:
        with ExitStack() as stack:
            lake, blocks = _LakeWriter(staging, stack), _blocks(customers, seed, end, lapsing, lapse_from)
            while batch := list(islice(blocks, blocks_per_batch)):
                lake.write(batch)
                orders += sum(block.orders.num_rows for block in batch)
                events += sum(block.events.num_rows for block in batch)
        replace_lake(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return LakeSummary(str(out), customers, orders, events)


@contextmanager
def one_writer_at_a_time(out: Path) -> Iterator[None]:
    """Writers of the lake ``out`` (generate, extend) take turns, on the file ``.<name>.lock``
    beside it: a scheduler's overlapping runs neither crash nor lose a run's rows."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out.parent / f".{out.name}.lock"):
        yield


def check_replaceable(out: Path) -> None:
    """Refuse an ``out`` that a new lake may not replace: a file, or a folder holding anything but
    a sample lake (:data:`LAKE_ENTRIES`), since the lake replaces the whole folder."""
    if out.exists() and not out.is_dir():
        raise SegcoreError(f"{out} is a file: give the sample lake a new folder, or a sample lake's folder")
    entries = [entry.name for entry in out.iterdir()] if out.exists() else []
    strangers = sorted(name for name in entries if name not in LAKE_ENTRIES)
    if strangers:
        more = f" and {len(strangers) - 3} more" if len(strangers) > 3 else ""
        raise SegcoreError(
            f"{out} holds {', '.join(strangers[:3])}{more}, which no sample lake has: a new lake replaces "
            "the whole folder, so give a new or empty folder (or a sample lake's), or move those away"
        )


def replace_lake(staging: Path, out: Path) -> None:
    """Put the new lake ``staging`` in place of ``out``, in turn with the lake's other writers,
    unless :func:`check_replaceable` refuses ``out`` by then."""
    with one_writer_at_a_time(out):
        check_replaceable(out)
        swap_into_place(staging, out)


def swap_into_place(staging: Path, out: Path) -> None:
    """Replace ``out`` by the complete folder ``staging`` (readers never see half a lake); the
    caller holds :func:`one_writer_at_a_time` for ``out``."""
    if out.exists():
        retired = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        out.rename(retired)
        staging.rename(out)
        shutil.rmtree(retired)
    else:
        staging.rename(out)
