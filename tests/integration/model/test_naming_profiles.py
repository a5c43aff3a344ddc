"""Segment profiles and the preparation on Spark, on skewed data: every customer assigned and
profiled in one pass, matching an independent computation, names that follow the typical customer
rather than wholesale outliers, z-scores in the prepared space, and net spend at or below zero."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from segcore.errors import TrainingError
from segcore.model.preparation import Preparation
from segcore.model.profiles import PERCENTILES, Population, profile_with_population
from segcore.train.naming import name_segments

RFM = ["recency_days", "frequency", "monetary_total", "tenure_days"]
SIZES = [400, 300, 200]


def _customers(seed: int = 3) -> pd.DataFrame:
    """Three planted groups; five wholesale accounts (huge orders, long ago) sit in the lapsing,
    low-spend group 1, inflating its mean spend and the population's."""
    rng = np.random.default_rng(seed)

    def group(label, n, recency, frequency, spend, tenure):
        return pd.DataFrame(
            {
                "label": label,
                "recency_days": rng.uniform(*recency, n).round(),
                "frequency": rng.integers(*frequency, n).astype(float),
                "monetary_total": rng.lognormal(np.log(spend), 0.3, n),
                "tenure_days": rng.uniform(*tenure, n).round(),
            }
        )

    wholesale = group(1, 5, (97, 125), (2, 5), 1_000_000, (600, 700))
    return pd.concat(
        [
            group(0, SIZES[0], (1, 20), (8, 13), 500, (300, 700)),
            group(1, SIZES[1] - 5, (97, 125), (2, 5), 150, (300, 700)),
            wholesale,
            group(2, SIZES[2], (1, 30), (1, 2), 40, (5, 40)),
        ],
        ignore_index=True,
    )


def _profile(spark, customers: pd.DataFrame) -> tuple[pd.DataFrame, Population, Preparation]:
    """The profile of ``customers`` (in three partitions) by the planted groups' prepared means."""
    frame = spark.createDataFrame(customers.drop(columns="label")).repartition(3)
    preparation = Preparation.fit(frame, RFM, RFM, 0.01)
    prepared = preparation.transform(customers[RFM])
    centres = np.stack([prepared[customers["label"] == g].mean(axis=0) for g in range(len(SIZES))])
    profile, population = profile_with_population(frame, RFM, preparation, RFM, centres, [0, 1, 2])
    return profile, population, preparation


@pytest.fixture(scope="module")
def skewed(spark):
    customers = _customers()
    profile, population, _ = _profile(spark, customers)
    return customers, profile, population


def test_the_profile_is_one_pass_and_matches_an_independent_computation(spark, skewed):
    """Each customer lands in its planted group; sizes, means and z-scores are pandas' own; the
    medians and the population's percentiles are exact (a summary is exact up to its POINTS
    rows); the rows are read in one Spark pass, as many jobs as one grouped count; a second run
    gives the same profile."""
    customers, profile, population = skewed
    context = spark.sparkContext
    context.setJobGroup("test-profile", "profile")
    again, _, preparation = _profile(spark, customers)
    profile_jobs = len(context.statusTracker().getJobIdsForGroup("test-profile"))
    context.setJobGroup("test-count", "one grouped count")
    spark.createDataFrame(customers.drop(columns="label")).repartition(3).groupBy(
        "frequency"
    ).count().toPandas()
    count_jobs = len(context.statusTracker().getJobIdsForGroup("test-count"))
    context.setJobGroup("", "")
    # the preparation's fit runs jobs of its own: count the profile's alone
    context.setJobGroup("test-fit", "fit")
    Preparation.fit(spark.createDataFrame(customers.drop(columns="label")).repartition(3), RFM, RFM, 0.01)
    fit_jobs = len(context.statusTracker().getJobIdsForGroup("test-fit"))
    context.setJobGroup("", "")
    assert profile_jobs - fit_jobs == count_jobs
    pd.testing.assert_frame_equal(again, profile)

    groups = customers.groupby("label")
    assert profile["customers"].tolist() == SIZES
    prepared = pd.DataFrame(preparation.transform(customers[RFM]), columns=RFM)
    for f in RFM:
        np.testing.assert_allclose(profile[f"mean_{f}"], groups[f].mean(), rtol=1e-12)
        medians = groups[f].apply(lambda values: np.quantile(values, 0.5, method="inverted_cdf"))
        np.testing.assert_array_equal(profile[f"median_{f}"], medians)
        z = (prepared[f].groupby(customers["label"]).mean() - prepared[f].mean()) / prepared[f].std(ddof=0)
        np.testing.assert_allclose(profile[f"z_{f}"], z, rtol=1e-9)
        exact = np.quantile(customers[f], PERCENTILES, method="inverted_cdf")
        np.testing.assert_array_equal(population.percentiles[f], exact)


def test_a_column_with_nulls_is_profiled_over_its_values(spark):
    """A whole-number column outside the model, null for some customers (as an interval for a
    customer with one order): its mean and median are those of its values, and the segment keeps
    all its customers."""
    customers = _customers()
    frame = spark.createDataFrame(customers.drop(columns="label"))
    gaps = (F.col("frequency") < 3) | (F.col("tenure_days") > 650)
    frame = frame.withColumn("orders_kept", F.when(~gaps, F.col("frequency").cast("int")))
    preparation = Preparation.fit(frame, RFM, RFM, 0.01)
    prepared = preparation.transform(customers[RFM])
    centres = np.stack([prepared[customers["label"] == g].mean(axis=0) for g in range(len(SIZES))])
    profile, _ = profile_with_population(frame, [*RFM, "orders_kept"], preparation, RFM, centres, [0, 1, 2])
    kept = customers["frequency"].where((customers["frequency"] >= 3) & (customers["tenure_days"] <= 650))
    assert profile["customers"].tolist() == SIZES
    for segment, values in kept.groupby(customers["label"]):
        row = profile.set_index("segment_id").loc[segment]
        if values.isna().all():  # a segment without a value of the column: no figure, no error
            assert np.isnan(row.mean_orders_kept) and np.isnan(row.median_orders_kept)
            continue
        assert row.mean_orders_kept == pytest.approx(values.mean(), rel=1e-12)
        assert row.median_orders_kept == np.quantile(values.dropna(), 0.5, method="inverted_cdf")
    counts = kept.groupby(customers["label"]).count()
    assert (counts == 0).any() and ((counts > 0) & (counts < SIZES)).any()  # both cases were met


def test_names_follow_the_typical_customer_not_wholesale_outliers(skewed):
    customers, profile, population = skewed
    names = name_segments(profile, population)
    lapsing = profile.set_index("segment_id").loc[1]
    # The wholesale accounts lift the lapsing segment's mean spend above everyone's mean ...
    assert lapsing.mean_monetary_total > customers.monetary_total.mean()
    # ... yet its typical customer last bought 97-125 days ago, rarely, for little.
    assert names[1].startswith(("Hibernating", "About to sleep")), names
    assert names[0].startswith(("Champions", "Loyal")), names
    assert names[2].startswith("New customers"), names


def test_z_scores_are_in_the_prepared_space(skewed):
    customers, profile, _ = skewed
    lapsing = profile.set_index("segment_id").loc[1]
    raw_z = (lapsing.mean_monetary_total - customers.monetary_total.mean()) / customers.monetary_total.std(
        ddof=0
    )
    assert raw_z > 0  # in raw units the wholesale accounts make the segment look like big spenders
    assert lapsing.z_monetary_total < 0  # as the model sees spend (signed log, clipped) it is below
    assert lapsing.z_recency_days > 1.0


def test_preparation_takes_net_spend_at_or_below_zero(spark):
    values = pd.DataFrame(
        {"monetary_total": [-250.0, -2.0, 0.0, 3.0, 40.0, 500.0, 1e6], "frequency": range(7)}
    )
    preparation = Preparation.fit(
        spark.createDataFrame(values), ["monetary_total", "frequency"], ["monetary_total"], 0.0
    )
    prepared = preparation.transform(values)
    assert np.isfinite(prepared).all()
    order = np.argsort(prepared[:, 0])
    assert order.tolist() == list(range(7))  # the signed log keeps the order of refunds and spend
    np.testing.assert_allclose(preparation.inverse(prepared)[:, 0], values.monetary_total, rtol=1e-9)


def test_preparation_refuses_null_nan_and_infinite_values_naming_the_columns(spark):
    """Bad values are counted per column before anything is fitted; a column with no value at all
    is refused the same way, not with a crash."""
    values = pd.DataFrame(
        {
            "frequency": [1.0, 2.0, np.nan, 4.0, 5.0],
            "monetary_total": [10.0, np.inf, 30.0, -np.inf, 50.0],
            "tenure_days": [np.nan] * 5,
            "recency_days": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    frame = spark.createDataFrame(values).withColumn("frequency", F.expr("nullif(frequency, 2.0)"))
    with pytest.raises(TrainingError) as refused:
        Preparation.fit(frame, RFM, ["monetary_total"], 0.01, table="features")
    message = str(refused.value)
    assert "table 'features'" in message
    assert "['frequency', 'monetary_total', 'tenure_days']" in message
    assert "hold 9 null, NaN or infinite value(s)" in message  # 2 + 2 + 5
