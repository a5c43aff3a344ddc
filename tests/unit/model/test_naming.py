"""Segments a marketer can trust on skewed data: robust naming rules, z-scores in the prepared
space, distinct qualifiers instead of numbers, a preparation that takes net spend at or below zero,
and a low-stability warning that says what to try."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segcore.config import build_config
from segcore.kmeans import LocalBlocks, fit
from segcore.model.preparation import Preparation
from segcore.model.profiles import (
    Population,
    mixed_percentiles,
    name_segments,
    profile_segments,
    profile_with_population,
)
from segcore.train.engines import fit_settings
from segcore.train.stage import select_k

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


def test_profile_and_population_come_from_one_aggregation(spark, skewed):
    """The population's percentiles ride on the profile's own Spark aggregation: the same number
    of Spark jobs as the profile alone, the same profile, and every customer's rank among all
    customers within 0.02 of the exact one."""
    customers, profile, population = skewed
    frame = spark.createDataFrame(customers)
    preparation = Preparation.fit(frame.drop("label"), RFM, RFM, 0.005)
    context, jobs = spark.sparkContext, {}
    for name, run in [("alone", profile_segments), ("with-population", profile_with_population)]:
        context.setJobGroup(f"test-profile-{name}", name)
        run(frame, RFM, preparation, RFM)
        jobs[name] = len(context.statusTracker().getJobIdsForGroup(f"test-profile-{name}"))
    context.setJobGroup("", "")
    assert jobs["with-population"] == jobs["alone"]
    pd.testing.assert_frame_equal(profile, profile_segments(frame, RFM, preparation, RFM))
    for feature in RFM:
        values = customers[feature].to_numpy()
        for value in np.quantile(values, np.linspace(0.02, 0.98, 25)):
            exact = (values < value).mean() + (values == value).mean() / 2
            assert population.rank(feature, value) == pytest.approx(exact, abs=0.02), (feature, value)


def test_mixed_percentiles_of_groups_are_the_populations():
    rng = np.random.default_rng(1)
    groups = [rng.normal(0, 1, 3_000), rng.exponential(5, 1_000) + 2, rng.integers(0, 4, 6_000).astype(float)]
    grids = [np.quantile(g, np.arange(1, 100) / 100, method="inverted_cdf") for g in groups]
    mixed = mixed_percentiles(grids, np.array([len(g) for g in groups], dtype=float))
    whole = np.concatenate(groups)
    # Each is (within a percentile) the smallest value with at least p of all customers at or below it.
    for p, value in zip(np.arange(1, 100) / 100, mixed, strict=True):
        assert (whole <= value).mean() >= p - 0.011 and (whole < value).mean() <= p + 0.011, (p, value)


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


def test_segments_sharing_a_name_are_told_apart_by_words_not_numbers():
    population = Population({f: list(np.linspace(1, 100, 99)) for f in RFM})
    medians = {f"median_{f}": 50.0 for f in RFM} | {"median_recency_days": 10.0, "median_frequency": 60.0}
    profile = pd.DataFrame(
        [
            {"segment_id": 0, **medians, "z_monetary_mean": 0.9, "z_spend_trend": 0.1, "z_frequency": 0.2},
            {"segment_id": 1, **medians, "z_monetary_mean": -0.7, "z_spend_trend": 0.0, "z_frequency": 0.1},
            {"segment_id": 2, **medians, "z_monetary_mean": 0.8, "z_spend_trend": -0.3, "z_frequency": 0.1},
        ]
    )
    names = name_segments(profile, population)
    assert len(set(names.values())) == 3
    assert not any(ch.isdigit() for name in names.values() for ch in name), names
    assert names[1] == "Loyal (small-basket)"
    # 0 and 2 are both big-basket: they differ most in spend trend.
    assert names[0] == "Loyal (big-basket, growing)"
    assert names[2] == "Loyal (big-basket, declining)"


def test_population_rank_counts_ties_half():
    population = Population({"frequency": [1.0] * 50 + [2.0] * 30 + [5.0] * 19})
    assert population.rank("frequency", 1.0) == pytest.approx(25 / 99)
    assert population.rank("frequency", 3.0) == pytest.approx(80 / 99)
    assert population.rank("tenure_days", 3.0) == 0.5  # a feature not profiled is neutral


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


def test_low_stability_says_what_to_try():
    points = np.random.default_rng(0).uniform(0, 1, (600, 2))
    config = build_config({"kmeans": {"k": 8}, "select": {"stability_min_ari": 0.99}})
    selection = select_k(config, {8: fit(LocalBlocks(points), 8, fit_settings(config.kmeans))}, points)
    assert selection.stability_ari < 0.99
    (warning,) = selection.warnings
    assert f"stability_ari={selection.stability_ari:.3f} is below select.stability_min_ari=0.99" in warning
    assert "another k (kmeans.k" in warning and "select.fixed_k" in warning
    assert "fewer or other features (train.features)" in warning and "another select.rule" in warning
