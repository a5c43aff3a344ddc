"""Extending a sample lake: new days after its last order, a campaign's treatment list ordering
(1 + effect) times as often, and the lake left as it was when the extension is refused."""

import datetime as dt
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from segcore.errors import LakeError
from segcore.sample.extend import RATE_DAYS, extend_lake
from segcore.sample.lake import generate_lake

END = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    path = tmp_path_factory.mktemp("extend") / "lake"
    generate_lake(path, 4000, seed=5, end=END)
    return path


def _orders(lake) -> pd.DataFrame:
    return ds.dataset(lake / "orders", partitioning="hive").to_table().to_pandas()


def test_treated_customers_order_one_plus_effect_times_their_rate(tmp_path):
    copy = tmp_path / "lake"
    generate_lake(copy, 4000, seed=5, end=END)
    before = _orders(copy)
    customers = np.sort(before.customer_id.unique())
    treated = customers[::2]
    pd.DataFrame({"customer_id": treated, "name": "x, y"}).to_csv(tmp_path / "treatment.csv", index=False)
    extension = extend_lake(copy, 60, seed=1, campaign=str(tmp_path / "treatment.csv"), effect=0.5)
    after = _orders(copy)
    new = after[after.order_ts >= pd.Timestamp(END)]
    assert extension.start == END and extension.end == END + dt.timedelta(days=59)
    assert len(new) == extension.orders and new.order_ts.max() < pd.Timestamp(END + dt.timedelta(days=60))
    assert new.order_id.min() == before.order_id.max() + 1 and after.order_id.is_unique
    recent = before[before.order_ts >= pd.Timestamp(END - dt.timedelta(days=RATE_DAYS))]
    expected = (
        recent.customer_id.isin(treated).groupby(recent.customer_id.isin(treated)).size() * 60 / RATE_DAYS
    )
    drawn = new.customer_id.isin(treated).groupby(new.customer_id.isin(treated)).size()
    ratio = (drawn[True] / expected[True]) / (drawn[False] / expected[False])
    assert ratio == pytest.approx(1.5, rel=0.06)
    assert set(new.columns) == set(before.columns)


def test_a_refused_extension_leaves_the_lake_as_it_was(lake, tmp_path):
    files = sorted(p.relative_to(lake) for p in lake.rglob("*"))
    with pytest.raises(LakeError, match="--campaign .*no treatment list"):
        extend_lake(lake, 30, seed=1, campaign=str(tmp_path / "missing"), effect=0.2)
    with pytest.raises(LakeError, match="--effect must be above -1"):
        extend_lake(lake, 30, seed=1, campaign=str(tmp_path / "missing"), effect=-1.0)
    with pytest.raises(LakeError, match="--effect needs --campaign"):
        extend_lake(lake, 30, seed=1, effect=0.2)
    with pytest.raises(LakeError, match="no sample lake there"):
        extend_lake(tmp_path, 30, seed=1)
    assert sorted(p.relative_to(lake) for p in lake.rglob("*")) == files


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--campaign", "audiences/x"], "--campaign and --effect apply with --extend-days only"),
        (["--extend-days", "30"], "no sample lake there to extend"),
        (["--extend-days", "0"], "--extend-days must be at least 1"),
    ],
)
def test_generate_refuses_an_extension_it_cannot_make_with_exit_2(tmp_path, extra, message, capsys):
    from segcore.cli.commands import main

    assert main(["generate", "--out", str(tmp_path / "lake"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_an_extension_keeps_what_else_the_lake_folder_holds(lake, tmp_path):
    """Unlike a new lake, an extension adds to the folder: a file of the user's there stays."""
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    (copy / "notes.txt").write_text("important")
    extend_lake(copy, 3, seed=1)
    assert (copy / "notes.txt").read_text() == "important"


def test_two_extensions_at_once_both_land_one_after_the_other(lake, tmp_path):
    """A scheduler's overlapping runs: the second waits for the first and extends its result."""
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    before = ds.dataset(copy / "orders", partitioning="hive").count_rows()
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda seed: extend_lake(copy, 3, seed), (1, 2)))
    first, second = sorted(done, key=lambda extension: extension.start)
    assert second.start == first.end + dt.timedelta(days=1)
    after = ds.dataset(copy / "orders", partitioning="hive").to_table(columns=["order_id"])
    assert after.num_rows == before + first.orders + second.orders
    assert len(np.unique(after.column("order_id").to_numpy())) == after.num_rows
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lake.lock", "lake"]


@pytest.mark.parametrize(
    ("command", "option"),
    [("generate", "--out"), ("demo", "--workdir")],  # the demo writes its lake under --workdir
)
def test_a_folder_the_file_system_refuses_exits_3_naming_its_option(tmp_path, capsys, command, option):
    """A folder under a file (as a read-only or a full disk would): exit 3, one line naming the
    option the user gave it with, no traceback."""
    from segcore.cli.commands import main

    (tmp_path / "a-file").write_text("not a folder")
    folder = tmp_path / "a-file" / "lake"
    assert main([command, option, str(folder), "--customers", "10"]) == 3
    error = capsys.readouterr().err
    assert f"segcore {command}: error: Not a directory: {folder.parent}/" in error
    assert f"give {option} {folder} a folder that can be created and written" in error
    assert "Traceback" not in error and error.count("--") == 1


def test_an_extension_whose_lock_cannot_be_opened_exits_3_and_leaves_the_lake(lake, tmp_path, capsys):
    from segcore.cli.commands import main

    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    (tmp_path / ".lake.lock").mkdir()  # what the lock file's name is taken by
    before = _orders(copy)
    assert main(["generate", "--out", str(copy), "--extend-days", "3"]) == 3
    error = capsys.readouterr().err
    assert f"error: Is a directory: {tmp_path / '.lake.lock'}; give --out {copy} a folder" in error
    pd.testing.assert_frame_equal(_orders(copy), before)
