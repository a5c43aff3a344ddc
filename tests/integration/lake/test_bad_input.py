"""Bad input stops the stage with a message naming the table, column or key, and leaves the
previous output untouched."""

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_config
from pyspark.sql import functions as F

from segcore.errors import LakeError, TrainingError
from segcore.features.stage import run_features
from segcore.storage.partitions import read_partition, write_partition
from segcore.train.stage import train_segments


@pytest.fixture(scope="module")
def previous(spark, lake, tmp_path_factory):
    """A workdir holding a good feature partition, to check that failures leave it intact."""
    workdir = tmp_path_factory.mktemp("bad-input")
    config = make_config(workdir, lake)
    result = run_features(spark, config)
    return workdir, result.path, pd.read_parquet(result.path)


def _broken_lake(lake, tmp_path, table, change):
    """A copy of the lake in which ``change(frame)`` rewrote ``table``."""
    copy = tmp_path / "lake"
    for name in ("customers", "orders", "events"):
        if name == table:
            (copy / name).mkdir(parents=True)
            source = pq.read_table(lake / name)
            changed = change(source.to_pandas())
            schema = source.schema if changed.empty else None  # keep the types of an empty table
            table = pa.Table.from_pandas(changed, schema=schema, preserve_index=False)
            pq.write_table(table, copy / name / "part.parquet")
        else:
            shutil.copytree(lake / name, copy / name)
    return copy


def _assert_untouched(previous):
    _, path, frame = previous
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    leftovers = [p.name for p in (previous[0] / "features").iterdir() if p.name.startswith("_")]
    assert leftovers == []


CASES = {
    "missing column": (
        "orders",
        lambda f: f.drop(columns=["amount"]),
        {},
        r"table 'orders': column 'amount' .*not found",
    ),
    "wrong type": (
        "orders",
        lambda f: f.assign(amount=f.amount.astype(str)),
        {},
        r"table 'orders': column 'amount' .*type string, expected a number",
    ),
    "too many guest orders": (
        "orders",
        lambda f: f.assign(customer_id=f.customer_id.astype("Int64").mask(f.index % 3 != 0)),
        {},
        r"table 'orders': [\d,]+ of [\d,]+ rows before as_of 2026-06-30 cannot be used \('customer_id' null: "
        r"[\d,]+, 'order_ts' null or unparsable: 0, 'amount' null or NaN: 0\), more than "
        r"lake.max_dropped_fraction=0.5",
    ),
    "duplicate customer ids": (
        "customers",
        lambda f: pd.concat([f, f.head(3)]),
        {},
        r"table 'customers': column 'customer_id' has 3 duplicate",
    ),
    "empty table": ("customers", lambda f: f.head(0), {}, r"table 'customers' is empty"),
    "mapped column absent": (
        "orders",
        lambda f: f,
        {"lake__orders__columns": {"order_ts": "InvoiceDate"}},
        r"column 'InvoiceDate' \(segcore's 'order_ts'\) not found",
    ),
    "as_of before all data": (
        "orders",
        lambda f: f,
        {"as_of": "2020-01-01"},
        r"as_of 2020-01-01 is on or before the first signup \(\S+\) in table 'customers'",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_lake_is_refused_and_output_kept(spark, lake, tmp_path, previous, case):
    table, change, overrides, message = CASES[case]
    broken = _broken_lake(lake, tmp_path, table, change)
    config = make_config(previous[0], broken, **overrides)
    with pytest.raises(LakeError, match=message):
        run_features(spark, config)
    _assert_untouched(previous)


def test_missing_lake_path_is_named(spark, tmp_path, previous):
    config = make_config(previous[0], tmp_path / "no-such-lake")
    with pytest.raises(LakeError, match=r"table 'customers': path .*no-such-lake/customers does not exist"):
        run_features(spark, config)
    _assert_untouched(previous)


def test_failed_write_keeps_the_previous_partition(spark, previous):
    _, path, _ = previous
    failing = spark.range(10).select(F.raise_error(F.lit("boom")).alias("x"))
    with pytest.raises(Exception, match="boom"):
        write_partition(failing, path)
    _assert_untouched(previous)


def test_k_larger_than_customers_is_refused(spark, previous, lake):
    workdir, _, frame = previous
    config = make_config(workdir, lake, kmeans__k=len(frame) + 1)
    with pytest.raises(
        TrainingError, match=rf"kmeans.k={len(frame) + 1} is larger than the number of customers"
    ):
        train_segments(spark, config)


def test_constant_feature_is_named(spark, lake, tmp_path):
    config = make_config(
        tmp_path,
        lake,
        train__features=["frequency", "region_nowhere"],
        features__regions=["nowhere"],
        features__groups=["rfm", "geographic"],
    )
    run_features(spark, config)
    with pytest.raises(TrainingError, match=r"\['region_nowhere'\] are constant"):
        train_segments(spark, config)


def test_feature_not_in_table_is_named(spark, previous, lake):
    config = make_config(previous[0], lake, train__features=["frequency", "loyalty_points"])
    with pytest.raises(TrainingError, match=r"no column\(s\) \['loyalty_points'\]"):
        train_segments(spark, config)


def test_missing_feature_partition_is_named(spark, lake, tmp_path):
    config = make_config(tmp_path, lake, as_of=dt.date(2026, 1, 31).isoformat())
    with pytest.raises(LakeError, match=r"feature table .*as_of=2026-01-31 does not exist"):
        train_segments(spark, config)


def test_scoring_with_a_model_whose_features_are_missing_is_refused(spark, lake, tmp_path):
    from segcore.errors import ModelError
    from segcore.score.stage import score_segments

    config = make_config(tmp_path, lake, train__features=["frequency", "monetary_total", "age"])
    run_features(spark, config)
    train_segments(spark, config)
    narrow = make_config(tmp_path, lake, features__groups=["rfm"])
    run_features(spark, narrow)
    with pytest.raises(ModelError, match=r"needs feature column\(s\) \['age'\] that table 'features'"):
        score_segments(spark, narrow)


def test_scoring_model_inputs_with_bad_values_is_refused_and_keeps_the_segments(
    spark, previous, lake, tmp_path
):
    """Null, NaN and infinite values of the model's features: score names the table, the columns
    and the count, and the segments scored before stay as they were."""
    from segcore.errors import ModelError
    from segcore.score.stage import score_segments

    _, _, frame = previous
    config = make_config(tmp_path, lake)
    write_partition(spark.createDataFrame(frame), config.partition("features"))
    train_segments(spark, config)
    score_segments(spark, config)
    before = read_partition(spark, config.partition("segments"), "segments", "").toPandas()
    bad = frame.copy()
    bad.loc[[3, 7], "frequency"] = np.nan
    bad.loc[11, "monetary_total"] = np.inf
    write_partition(spark.createDataFrame(bad), config.partition("features"))
    with pytest.raises(
        ModelError,
        match=r"table 'features' \(.*\): column\(s\) \['frequency', 'monetary_total'\] that the model "
        r"reads hold 3 null, NaN or infinite value\(s\); nothing was written",
    ):
        score_segments(spark, config)
    after = read_partition(spark, config.partition("segments"), "segments", "").toPandas()
    pd.testing.assert_frame_equal(after, before)


def test_duplicate_customer_rows_in_the_feature_table_are_refused(spark, previous, lake, tmp_path):
    _, _, frame = previous
    doubled = pd.concat([frame, frame.iloc[[5, 9, 9]]])  # customers 5 and 9: three extra rows
    config = make_config(tmp_path, lake)
    write_partition(spark.createDataFrame(doubled), config.partition("features"))
    with pytest.raises(
        LakeError,
        match=rf"feature table {tmp_path}/features/as_of=2026-06-30/v-\S+ has 3 duplicate customer_id "
        rf"row\(s\) \({len(frame) + 3:,} rows, {len(frame):,} customers\)",
    ):
        train_segments(spark, config)
