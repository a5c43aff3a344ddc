"""Segments a marketer can trust: distinct qualifiers instead of numbers, ranks that count ties
half, and a low-stability warning that says what to try."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segcore.config import build_config
from segcore.kmeans import LocalBlocks, fit
from segcore.model.profiles import Population
from segcore.train.engines import fit_settings
from segcore.train.naming import name_segments
from segcore.train.sweep import select_k

RFM = ["recency_days", "frequency", "monetary_total", "tenure_days"]


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


def test_low_stability_says_what_to_try():
    points = np.random.default_rng(0).uniform(0, 1, (600, 2))
    config = build_config({"kmeans": {"k": 8}, "select": {"stability_min_ari": 0.99}})
    selection = select_k(config, {8: fit(LocalBlocks(points), 8, fit_settings(config.kmeans))}, points)
    assert selection.stability_ari < 0.99
    (warning,) = selection.warnings
    assert f"stability_ari={selection.stability_ari:.3f} is below select.stability_min_ari=0.99" in warning
    assert "another k (kmeans.k" in warning and "select.fixed_k" in warning
    assert "fewer or other features (train.features)" in warning and "another select.rule" in warning
