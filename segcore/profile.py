"""Per-segment statistics and readable segment names.

Naming rules (each compares a segment's mean to the population mean of the same feature):

1. ``tenure_days`` below 35% of the population's → **New customers**.
2. ``recency_days`` above 150% of the population's: if ``monetary_total`` is at least the
   population's → **Can't lose them**; else if ``recency_days`` is above 250% → **Lost**;
   else → **Hibernating**.
3. ``recency_days`` above 110% with ``frequency`` at least the population's → **At risk**.
4. Otherwise (recent): ``frequency`` and ``monetary_total`` above 130% → **Champions**;
   ``frequency`` at least the population's → **Loyal**; else → **Potential loyalists**.

Each name gets a qualifier from the segment's most distinctive other feature (largest absolute
standardized difference among :data:`QUALIFIERS`, when it is at least
:data:`QUALIFIER_MIN_Z`), e.g. "Loyal (discount-driven)"; names still equal get a number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

QUALIFIERS: dict[str, tuple[str, str]] = {
    "discount_rate": ("discount-driven", "full-price"),
    "device_mobile_share": ("mobile-first", "desktop-first"),
    "events_per_active_month": ("heavy browsers", "light browsers"),
    "return_rate": ("frequent returners", "rare returners"),
    "monetary_mean": ("big-basket", "small-basket"),
    "spend_trend": ("growing", "declining"),
}
QUALIFIER_MIN_Z = 0.5
MEDIAN_ACCURACY = 10_000


def feature_columns(frame: DataFrame) -> list[str]:
    """Every feature of a feature table (all its columns but the customer id)."""
    return [c for c in frame.columns if c != "customer_id"]


def profile_segments(labelled: DataFrame, features: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """One row per segment (Spark aggregation over every customer, ``label`` = segment id): size,
    share of customers and revenue, mean and median of each of ``features`` in original units, and
    its standardized difference from the population. Also returns the population means."""
    aggregates = [F.count(F.lit(1)).alias("customers")]
    for f in features:
        aggregates += [
            F.avg(f).alias(f"mean_{f}"),
            F.percentile_approx(f, 0.5, MEDIAN_ACCURACY).cast("double").alias(f"median_{f}"),
            F.sum(F.col(f) * F.col(f)).alias(f"squares_{f}"),
        ]
    grouped = labelled.groupBy("label").agg(*aggregates).toPandas().sort_values("label", ignore_index=True)
    sizes = grouped["customers"].astype(float)
    total = sizes.sum()
    columns = {
        "segment_id": grouped["label"].astype(int),
        "customers": grouped["customers"],
        "share": sizes / total,
    }
    if "monetary_total" in features:
        revenue = grouped["mean_monetary_total"] * sizes
        columns["revenue_share"] = revenue / max(revenue.sum(), 1e-12)
    population = {}
    for f in features:
        mean = (grouped[f"mean_{f}"] * sizes).sum() / total
        spread = np.sqrt(max(grouped[f"squares_{f}"].sum() / total - mean**2, 0.0))
        population[f] = mean
        columns[f"mean_{f}"] = grouped[f"mean_{f}"]
        columns[f"median_{f}"] = grouped[f"median_{f}"]
        columns[f"z_{f}"] = (grouped[f"mean_{f}"] - mean) / spread if spread > 0 else 0.0
    profile = pd.DataFrame(columns)
    return profile, pd.Series(population)


def _rfm_name(row: pd.Series, population: pd.Series) -> str:
    def ratio(feature: str) -> float:
        if f"mean_{feature}" not in row or not population.get(feature):
            return 1.0
        return row[f"mean_{feature}"] / population[feature]

    if ratio("tenure_days") < 0.35:
        return "New customers"
    if ratio("recency_days") > 1.5:
        if ratio("monetary_total") >= 1.0:
            return "Can't lose them"
        return "Lost" if ratio("recency_days") > 2.5 else "Hibernating"
    if ratio("recency_days") > 1.1 and ratio("frequency") >= 1.0:
        return "At risk"
    if ratio("frequency") > 1.3 and ratio("monetary_total") > 1.3:
        return "Champions"
    return "Loyal" if ratio("frequency") >= 1.0 else "Potential loyalists"


def _qualifier(row: pd.Series) -> str | None:
    scored = [(abs(row[f"z_{f}"]), f) for f in QUALIFIERS if f"z_{f}" in row]
    if not scored or max(scored)[0] < QUALIFIER_MIN_Z:
        return None
    _, feature = max(scored)
    high, low = QUALIFIERS[feature]
    return high if row[f"z_{feature}"] > 0 else low


def name_segments(profile: pd.DataFrame, population_means: pd.Series) -> dict[int, str]:
    """Unique readable names by segment id (rules in the module docstring)."""
    names = {}
    for _, row in profile.iterrows():
        base, qualifier = _rfm_name(row, population_means), _qualifier(row)
        names[int(row.segment_id)] = f"{base} ({qualifier})" if qualifier else base
    repeated = pd.Series(names).duplicated(keep=False)
    ordinal: dict[str, int] = {}
    for sid in sorted(names):
        if repeated[sid]:
            ordinal[names[sid]] = ordinal.get(names[sid], 0) + 1
            names[sid] = f"{names[sid]} {ordinal[names[sid]]}"
    return names


def summary_table(profile: pd.DataFrame, names: dict[int, str]) -> pd.DataFrame:
    """The table the demo prints: name, size, share, average spend, recency."""
    return pd.DataFrame(
        {
            "segment_id": profile["segment_id"],
            "segment_name": profile["segment_id"].map(names),
            "customers": profile["customers"],
            "share": profile["share"].round(3),
            "avg_spend": profile.get("mean_monetary_total", pd.Series(np.nan, index=profile.index)).round(2),
            "avg_recency_days": profile.get(
                "mean_recency_days", pd.Series(np.nan, index=profile.index)
            ).round(1),
        }
    ).sort_values("customers", ascending=False, ignore_index=True)
