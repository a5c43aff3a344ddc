"""The sample lake is written a batch of customers at a time, and the batch size changes nothing
but how the files are cut into row groups."""

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from segcore.sample.lake import BLOCK_CUSTOMERS, generate_lake

END = dt.date(2026, 3, 15)
CUSTOMERS = 2 * BLOCK_CUSTOMERS + 321  # three blocks, the last one short


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    batched = generate_lake(root / "batched", CUSTOMERS, seed=3, end=END, batch_customers=BLOCK_CUSTOMERS)
    whole = generate_lake(root / "whole", CUSTOMERS, seed=3, end=END, batch_customers=10 * CUSTOMERS)
    return root / "batched", root / "whole", batched, whole


TABLES = {
    "customers": ["customer_id"],
    "planted_segments.parquet": ["customer_id"],
    "orders": ["order_id"],
    "events": ["customer_id", "event_ts", "event_type", "device", "os"],
}


@pytest.mark.parametrize("table", TABLES)
def test_small_batches_write_the_same_rows_as_one_batch(lakes, table):
    batched, whole, _, _ = lakes
    frames = [
        pd.read_parquet(lake / table).sort_values(TABLES[table], kind="stable").reset_index(drop=True)
        for lake in (batched, whole)
    ]
    pd.testing.assert_frame_equal(*frames)


def test_batches_become_row_groups_of_one_file_per_table_and_month(lakes):
    batched, whole, summary, _ = lakes
    assert pq.ParquetFile(batched / "customers" / "part-0.parquet").metadata.num_row_groups == 3
    assert pq.ParquetFile(whole / "customers" / "part-0.parquet").metadata.num_row_groups == 1
    for table in ("orders", "events"):
        months = sorted(p.name for p in (batched / table).iterdir())
        assert months[-1] == "month=2026-03" and len(months) > 12
        assert all([f.name for f in (batched / table / m).iterdir()] == ["part-0.parquet"] for m in months)
    orders = pd.read_parquet(batched / "orders")
    assert sorted(orders["order_id"]) == list(range(1, summary.orders + 1))  # ids run on across batches
    assert (orders["order_ts"].dt.strftime("%Y-%m") == orders["month"].astype(str)).all()


def test_every_customer_has_a_planted_segment(lakes):
    batched, _, summary, _ = lakes
    customers = pd.read_parquet(batched / "customers")
    planted = pd.read_parquet(batched / "planted_segments.parquet")
    assert len(customers) == summary.customers == CUSTOMERS
    assert customers["customer_id"].tolist() == planted["customer_id"].tolist()
    assert customers["customer_id"].is_unique
    assert planted["segment"].nunique() == 5


def test_generates_into_one_folder_at_once_leave_one_whole_lake(tmp_path):
    """A scheduler's overlapping runs: their swaps take turns, so neither crashes, and the lake is
    one run's, whole, with nothing staged left beside it."""

    def orders(lake):
        return ds.dataset(lake / "orders", partitioning="hive").to_table().sort_by("order_id")

    seeds = (11, 12)
    for seed in seeds:
        generate_lake(tmp_path / "alone" / str(seed), 200, seed=seed, end=END)
    runs = {seed: orders(tmp_path / "alone" / str(seed)) for seed in seeds}
    out = tmp_path / "at-once" / "lake"
    generate_lake(out, 200, seed=1, end=END)
    for _ in range(40):  # the swaps overlap in a few rounds: 2 of 3 runs of 40 crashed before
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda seed: generate_lake(out, 200, seed=seed, end=END), seeds))
        assert any(orders(out).equals(run) for run in runs.values())
        assert sorted(path.name for path in out.parent.iterdir()) == [".lake.lock", "lake"]


@pytest.mark.parametrize("shape", ["sample", "transactions"])
@pytest.mark.parametrize("taken", ["a file", "a folder of other files"])
def test_an_out_that_is_not_a_lake_is_refused_and_left_as_it_was(tmp_path, capsys, shape, taken):
    """A new lake replaces its whole folder: an --out that is a file, or a folder holding anything
    but a sample lake, exits 2 naming it, and nothing there is renamed, removed or written."""
    from segcore.cli.commands import main

    out = tmp_path / "out"
    if taken == "a file":
        out.write_text("important")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("important")
        (out / "orders").mkdir()  # a lake's name beside a stranger does not make it a lake
    before = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*"))
    assert main(["generate", "--out", str(out), "--customers", "10", "--shape", shape]) == 2
    error = capsys.readouterr().err
    expected = "is a file" if taken == "a file" else "holds notes.txt, which no sample lake has"
    assert f"segcore generate: error: {out} {expected}" in error
    assert sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")) == before
    assert (out if taken == "a file" else out / "notes.txt").read_text() == "important"


def test_a_lake_replaces_a_sample_lake_or_an_empty_folder(tmp_path):
    empty, lake = tmp_path / "empty", tmp_path / "lake"
    empty.mkdir()
    generate_lake(lake, 10, seed=1, end=END)
    for out in (empty, lake):
        assert generate_lake(out, 20, seed=2, end=END).customers == 20
        assert pq.read_table(out / "customers").num_rows == 20
