"""Lift from per-group sums: the figures a two-sample comparison on the rows themselves gives."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from segcore.lift.statistics import METRICS, Moments, compare, lift_table


def _moments(values: np.ndarray) -> Moments:
    return Moments(len(values), float(values.sum()), float((values**2).sum()))


def test_the_interval_and_p_value_match_welchs_test_on_the_rows():
    rng = np.random.default_rng(1)
    treatment, control = rng.gamma(2.0, 30.0, 800), rng.gamma(2.0, 25.0, 700)
    row = compare(_moments(treatment), _moments(control), 0.95, 30)
    assert row["lift"] == pytest.approx(treatment.mean() - control.mean())
    se = math.sqrt(treatment.var(ddof=1) / 800 + control.var(ddof=1) / 700)
    assert row["lift_low"] == pytest.approx(row["lift"] - 1.959964 * se, rel=1e-6)
    welch = stats.ttest_ind(treatment, control, equal_var=False)
    assert row["p_value"] == pytest.approx(welch.pvalue, rel=0.02)  # normal against t on ~1,400 degrees
    assert row["relative_lift"] == pytest.approx(treatment.mean() / control.mean() - 1)
    assert row["relative_low"] < row["relative_lift"] < row["relative_high"]


def test_the_relative_interval_covers_a_known_ratio_about_95_times_in_100():
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(400):
        control = rng.poisson(rng.gamma(1.0, 1.0, 1500))
        treatment = rng.poisson(1.2 * rng.gamma(1.0, 1.0, 1500))
        row = compare(_moments(treatment.astype(float)), _moments(control.astype(float)), 0.95, 30)
        covered += row["relative_low"] <= 0.2 <= row["relative_high"]
    assert 0.92 <= covered / 400 <= 0.98


def test_a_group_below_the_minimum_gets_no_interval():
    small = compare(_moments(np.ones(50)), _moments(np.ones(10)), 0.95, 30)
    assert math.isnan(small["lift_low"]) and math.isnan(small["p_value"])
    assert small["control_customers"] == 10


def test_the_all_customers_rows_add_the_segments_sums():
    rng = np.random.default_rng(3)
    rows, pooled = [], {"treatment": [], "control": []}
    for segment in (0, 1):
        for group, size in (("treatment", 300), ("control", 200)):
            values = rng.poisson(1 + segment, size).astype(float)
            pooled[group].append(values)
            row = {"segment_id": segment, "segment_name": f"s{segment}", "group": group}
            for metric in METRICS:
                row |= {
                    f"n_{metric}": size,
                    f"sum_{metric}": values.sum(),
                    f"squares_{metric}": (values**2).sum(),
                }
            rows.append(row)
    table = lift_table(pd.DataFrame(rows), 0.95, 30)
    assert list(table.segment_id.unique()) == ["all", "0", "1"]
    overall = table[(table.segment_id == "all") & (table.metric == "orders")].iloc[0]
    treatment, control = (np.concatenate(pooled[g]) for g in ("treatment", "control"))
    assert overall.treatment_customers == 600
    assert overall.lift == pytest.approx(treatment.mean() - control.mean())
