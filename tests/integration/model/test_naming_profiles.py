"""Segment profiles and the preparation on Spark, on skewed data: the population's percentiles
from the profile's own aggregation, names that follow the typical customer rather than wholesale
outliers, z-scores in the prepared space, and net spend at or below zero."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segcore.model.preparation import Preparation
from segcore.model.profiles import profile_table, profile_with_population, segment_aggregates
from segcore.train.naming import name_segments

RFM = ["recency_days", "frequency", "monetary_total", "tenure_days"]


def _customers(seed: int = 3) -> pd.DataFrame:
    """Three labelled groups; five wholesale accounts (huge, frequent, recent orders) sit in the
    lapsing, low-spend segment 1, inflating its means and the population's."""
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

    wholesale = group(1, 5, (1, 3), (400, 600), 1_000_000, (600, 700))
    return pd.concat(
        [
            group(0, 400, (1, 20), (8, 13), 500, (300, 700)),
            group(1, 295, (97, 125), (2, 5), 150, (300, 700)),
            wholesale,
            group(2, 200, (1, 30), (1, 2), 40, (5, 40)),
        ],
        ignore_index=True,
    )


@pytest.fixture(scope="module")
def skewed(spark):
    customers = _customers()
    frame = spark.createDataFrame(customers)
    preparation = Preparation.fit(frame.drop("label"), RFM, RFM, 0.005)
    profile, population = profile_with_population(frame, RFM, preparation, RFM)
    return customers, profile, population


def _profile_alone(frame, features, preparation, log_features):
    """The profile without naming percentiles: one aggregation of :func:`segment_aggregates`."""
    grouped = frame.groupBy("label").agg(*segment_aggregates(features, preparation, log_features)).toPandas()
    return profile_table(grouped, features)


def test_profile_and_population_come_from_one_aggregation(spark, skewed):
    """The population's percentiles ride on the profile's own Spark aggregation: the same number
    of Spark jobs as the profile alone, the same profile, and every customer's rank among all
    customers within 0.02 of the exact one."""
    customers, profile, population = skewed
    frame = spark.createDataFrame(customers)
    preparation = Preparation.fit(frame.drop("label"), RFM, RFM, 0.005)
    context, jobs = spark.sparkContext, {}
    for name, run in [("alone", _profile_alone), ("with-population", profile_with_population)]:
        context.setJobGroup(f"test-profile-{name}", name)
        run(frame, RFM, preparation, RFM)
        jobs[name] = len(context.statusTracker().getJobIdsForGroup(f"test-profile-{name}"))
    context.setJobGroup("", "")
    assert jobs["with-population"] == jobs["alone"]
    alone = _profile_alone(frame, RFM, preparation, RFM)
    medians = [f"median_{f}" for f in RFM]  # from the finer sketch of the naming features' percentiles
    pd.testing.assert_frame_equal(profile.drop(columns=medians), alone.drop(columns=medians))
    pd.testing.assert_frame_equal(profile[medians], alone[medians], rtol=0.02)
    for feature in RFM:
        values = customers[feature].to_numpy()
        for value in np.quantile(values, np.linspace(0.02, 0.98, 25)):
            exact = (values < value).mean() + (values == value).mean() / 2
            assert population.rank(feature, value) == pytest.approx(exact, abs=0.02), (feature, value)


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
