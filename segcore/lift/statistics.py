"""Treatment minus control from per-group sums, on the driver: only counts, sums and sums of
squares cross over from Spark, and they add up across segments.

For each metric (a per-customer value: 0/1 for conversion and retention) the lift is the
difference of the groups' means, with a normal (Welch) interval and a two-sided p-value; the
relative lift (treatment over control, minus 1) has a delta-method interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from scipy.stats import norm

# metric -> what it is, per customer of a group; retention counts only the window-before buyers.
METRICS = {
    "conversion": "share with an order in the window",
    "orders": "orders per customer",
    "revenue": "net revenue per customer",
    "retention": "share of the previous window's buyers who bought again",
}
ALL_SEGMENTS = "all"


@dataclass(frozen=True)
class Moments:
    """A group's count, sum and sum of squares of one metric."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """Sample variance (n − 1), never below 0 through rounding."""
        if self.n < 2:
            return math.nan
        return max(0.0, (self.squares - self.n * self.mean**2) / (self.n - 1))


def compare(treatment: Moments, control: Moments, confidence: float, min_customers: int) -> dict[str, float]:
    """Lift of ``treatment`` over ``control``: means, difference with interval and p-value, and
    relative lift with interval. Intervals are NaN where a group has fewer than ``min_customers``."""
    row = {
        "treatment_customers": treatment.n,
        "control_customers": control.n,
        "treatment": treatment.mean,
        "control": control.mean,
        "lift": treatment.mean - control.mean,
    }
    nan = dict.fromkeys(
        ("lift_low", "lift_high", "p_value", "relative_lift", "relative_low", "relative_high"), math.nan
    )
    if min(treatment.n, control.n) < min_customers:
        return row | nan
    z = norm.ppf(0.5 + confidence / 2)
    var_t, var_c = treatment.variance / treatment.n, control.variance / control.n
    se = math.sqrt(var_t + var_c)
    lift = row["lift"]
    row |= {
        "lift_low": lift - z * se,
        "lift_high": lift + z * se,
        "p_value": 2 * norm.sf(abs(lift) / se) if se > 0 else (1.0 if lift == 0 else 0.0),
    }
    base = control.mean
    if base == 0:
        return row | {key: math.nan for key in ("relative_lift", "relative_low", "relative_high")}
    relative = treatment.mean / base - 1
    relative_se = math.sqrt(var_t / base**2 + treatment.mean**2 * var_c / base**4)
    return row | {
        "relative_lift": relative,
        "relative_low": relative - z * relative_se,
        "relative_high": relative + z * relative_se,
    }


def lift_table(sums: pd.DataFrame, confidence: float, min_customers: int) -> pd.DataFrame:
    """One row per segment (and :data:`ALL_SEGMENTS` first) and metric, from ``sums``: segment_id,
    segment_name, group and per metric ``n_<m>``, ``sum_<m>``, ``squares_<m>``, one row per
    segment and group."""
    overall = sums.drop(columns=["segment_id", "segment_name"]).groupby("group", as_index=False).sum()
    overall = overall.assign(segment_id=ALL_SEGMENTS, segment_name="all customers")
    segments = sums.sort_values("segment_id").assign(segment_id=lambda f: f["segment_id"].astype(str))
    rows = []
    for (segment_id, name), groups in pd.concat([overall, segments]).groupby(
        ["segment_id", "segment_name"], sort=False
    ):
        by_group = groups.set_index("group").reindex(["treatment", "control"]).fillna(0)
        for metric in METRICS:
            moments = {
                group: Moments(
                    int(by_group.at[group, f"n_{metric}"]),
                    float(by_group.at[group, f"sum_{metric}"]),
                    float(by_group.at[group, f"squares_{metric}"]),
                )
                for group in ("treatment", "control")
            }
            figures = compare(moments["treatment"], moments["control"], confidence, min_customers)
            rows.append({"segment_id": segment_id, "segment_name": name, "metric": metric, **figures})
    return pd.DataFrame(rows)
