"""The backtest's one pass in Spark: the value model scores each partition's Arrow batches and sums
them (segcore.value.backtest_sums), Spark adds the partitions' bins up, and the figures and deciles
equal those of the same sums over every customer in pandas."""

import pandas as pd
import pytest
from value_data import backtest_customers, cdnow_model

from segcore.value.backtest import sums_over_horizon
from segcore.value.backtest_sums import PartitionSums, deciles, forecasts, metrics

MODEL = cdnow_model()


def test_the_spark_pass_sums_what_pandas_sums_over_every_customer(spark):
    customers = backtest_customers(6_000, seed=5)
    frame = spark.createDataFrame(customers).repartition(3)
    summed = sums_over_horizon(frame, MODEL)

    whole = PartitionSums()
    whole.add(forecasts(MODEL, customers))
    expected = whole.rows()
    assert metrics(summed) == pytest.approx(metrics(expected), rel=1e-12)
    pd.testing.assert_frame_equal(deciles(summed), deciles(expected), rtol=1e-12)
    assert sorted(set(summed["kind"])) == ["model_churn", "naive_churn", "purchases", "totals"]


def test_partitions_without_customers_add_nothing(spark):
    frame = spark.createDataFrame(backtest_customers(3, seed=6)).repartition(6)  # three empty partitions
    assert metrics(sums_over_horizon(frame, MODEL))["customers"] == 3
