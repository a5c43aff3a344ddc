"""Per-segment statistics and readable segment names.

Names use robust statistics, so a few wholesale accounts cannot tilt them: each rule reads the
*rank* of the segment's median among all customers (0 = lowest, 1 = highest; the share of
customers below it, ties counted half) for recency, frequency, spend and tenure:

1. tenure rank below 0.25 → **New customers**.
2. recency rank above 0.75 (among the longest inactive): spend rank at least 0.5 →
   **Can't lose them**; else recency rank above 0.9 → **Lost**; else → **Hibernating**.
3. recency rank above 0.5: frequency rank at least 0.5 → **At risk**; else → **About to sleep**.
4. Otherwise (recent): frequency and spend ranks above 0.75 → **Champions**; frequency rank at
   least 0.5 → **Loyal**; else → **Potential loyalists**.

A missing feature counts as rank 0.5. Each name gets a qualifier from the segment's most distinctive
behaviour (largest absolute z-score among :data:`QUALIFIERS`, when at least
:data:`QUALIFIER_MIN_Z`), e.g. "Loyal (discount-driven)". Segments that still share a name are told
apart by the feature on which they differ most ("Loyal (big-basket)" / "Loyal (small-basket)"),
never by a number.

z-scores are computed in the prepared space (the features as the model sees them: signed log of
skewed features, clipped at the model's quantiles), so skew does not wash them out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segcore.model.preparation import Preparation, signed_log_column

QUALIFIERS: dict[str, tuple[str, str]] = {
    "discount_rate": ("discount-driven", "full-price"),
    "device_mobile_share": ("mobile-first", "desktop-first"),
    "events_per_active_month": ("heavy browsers", "light browsers"),
    "return_rate": ("frequent returners", "rare returners"),
    "monetary_mean": ("big-basket", "small-basket"),
    "spend_trend": ("growing", "declining"),
}
# Words that tell apart segments sharing a name (any other feature: "higher <f>" / "lower <f>").
CONTRASTS: dict[str, tuple[str, str]] = {
    **QUALIFIERS,
    "frequency": ("more frequent", "less frequent"),
    "monetary_total": ("higher spend", "lower spend"),
    "recency_days": ("longer inactive", "more recent"),
    "tenure_days": ("longer-standing", "newer"),
    "order_interval_cv": ("irregular", "regular"),
}
QUALIFIER_MIN_Z = 0.5
MEDIAN_ACCURACY = 10_000
NAMING_FEATURES = ("recency_days", "frequency", "monetary_total", "tenure_days")
PERCENTILES = [p / 100 for p in range(1, 100)]
MEDIAN = PERCENTILES.index(0.5)


def feature_columns(frame: DataFrame) -> list[str]:
    """Every feature of a feature table (all its columns but the customer id)."""
    return [c for c in frame.columns if c != "customer_id"]


def _prepared(features: list[str], preparation: Preparation, log_features: list[str]) -> dict[str, Column]:
    """Each feature as the model sees it; a feature outside the model is signed-logged when it is
    one of ``log_features``."""
    model = preparation.spark_columns()
    return {
        f: model.get(f, signed_log_column(f) if f in log_features else F.col(f).cast("double"))
        for f in features
    }


def _by_segment(
    labelled: DataFrame,
    features: list[str],
    preparation: Preparation,
    log_features: list[str],
    naming: list[str],
) -> pd.DataFrame:
    """One Spark aggregation by segment: size, and for each feature its mean, approximate median
    (for a ``naming`` feature, its 1st to 99th percentiles from the same sketch) and prepared mean
    and sum of squares."""
    prepared = _prepared(features, preparation, log_features)
    aggregates = [F.count(F.lit(1)).alias("customers")]
    for f in features:
        value = F.col(f).cast("double")
        aggregates += [
            F.avg(f).alias(f"mean_{f}"),
            F.percentile_approx(value, PERCENTILES if f in naming else 0.5, MEDIAN_ACCURACY).alias(
                f"percentiles_{f}" if f in naming else f"median_{f}"
            ),
            F.avg(prepared[f]).alias(f"prepared_{f}"),
            F.sum(prepared[f] * prepared[f]).alias(f"squares_{f}"),
        ]
    return labelled.groupBy("label").agg(*aggregates).toPandas()


def _profile_table(grouped: pd.DataFrame, features: list[str], naming: list[str]) -> pd.DataFrame:
    grouped = grouped.sort_values("label", ignore_index=True)
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
    for f in features:
        mean = (grouped[f"prepared_{f}"] * sizes).sum() / total
        spread = np.sqrt(max(grouped[f"squares_{f}"].sum() / total - mean**2, 0.0))
        columns[f"mean_{f}"] = grouped[f"mean_{f}"]
        median = (
            grouped[f"percentiles_{f}"].map(lambda p: p[MEDIAN]) if f in naming else grouped[f"median_{f}"]
        )
        columns[f"median_{f}"] = median.astype(float)
        columns[f"z_{f}"] = (grouped[f"prepared_{f}"] - mean) / spread if spread > 1e-12 else 0.0
    return pd.DataFrame(columns)


def profile_segments(
    labelled: DataFrame, features: list[str], preparation: Preparation, log_features: list[str]
) -> pd.DataFrame:
    """One row per segment (Spark aggregation over every customer, ``label`` = segment id): size,
    share of customers and net revenue, mean and median of each of ``features`` in original units,
    and ``z_<f>``: its standardized difference from all customers in the prepared space."""
    return _profile_table(_by_segment(labelled, features, preparation, log_features, []), features, [])


def profile_with_population(
    labelled: DataFrame, features: list[str], preparation: Preparation, log_features: list[str]
) -> tuple[pd.DataFrame, Population]:
    """:func:`profile_segments` and the :class:`Population` of all customers for the naming
    features among ``features``, from the same ONE Spark aggregation by segment: each naming
    feature's per-segment percentiles (from the sketch that also gives its median) are mixed,
    weighted by segment size, into the population's (:func:`mixed_percentiles`)."""
    naming = [f for f in NAMING_FEATURES if f in features]
    grouped = _by_segment(labelled, features, preparation, log_features, naming)
    sizes = grouped["customers"].to_numpy(dtype=float)
    population = Population({f: mixed_percentiles(grouped[f"percentiles_{f}"], sizes) for f in naming})
    return _profile_table(grouped, features, naming), population


def mixed_percentiles(grids: Iterable[Sequence[float]], sizes: np.ndarray) -> list[float]:
    """The 1st to 99th percentiles of customers made of groups of ``sizes``, from each group's own
    1st to 99th percentiles (``grids``): at each group percentile value, the share of all customers
    at or below it is the size-weighted mean of each group's share (j/100 at its j-th percentile),
    so the result is within a percentile of the exact one."""
    table = np.asarray([list(grid) for grid in grids], dtype=np.float64)
    candidates = np.unique(table)
    shares = np.stack([np.searchsorted(grid, candidates, side="right") / 100 for grid in table])
    below = (sizes / sizes.sum()) @ shares
    first = np.searchsorted(below, np.asarray(PERCENTILES) - 1e-9)
    return candidates[np.minimum(first, len(candidates) - 1)].tolist()


@dataclass(frozen=True)
class Population:
    """Percentiles (1st to 99th) of the naming features over all customers."""

    percentiles: dict[str, list[float]]

    def rank(self, feature: str, value: float) -> float:
        """Share of customers below ``value`` (ties count half); 0.5 for a feature not profiled."""
        if feature not in self.percentiles or pd.isna(value):
            return 0.5
        grid = np.asarray(self.percentiles[feature])
        return float((grid < value).mean() + (grid == value).mean() / 2)


def _rfm_name(row: pd.Series, population: Population) -> str:
    def rank(feature: str) -> float:
        return population.rank(feature, row.get(f"median_{feature}", np.nan))

    recency, frequency, spend = rank("recency_days"), rank("frequency"), rank("monetary_total")
    if rank("tenure_days") < 0.25:
        return "New customers"
    if recency > 0.75:
        if spend >= 0.5:
            return "Can't lose them"
        return "Lost" if recency > 0.9 else "Hibernating"
    if recency > 0.5:
        return "At risk" if frequency >= 0.5 else "About to sleep"
    if frequency > 0.75 and spend > 0.75:
        return "Champions"
    return "Loyal" if frequency >= 0.5 else "Potential loyalists"


def _qualifier(row: pd.Series) -> str | None:
    """The most distinctive behaviour among :data:`QUALIFIERS`, if distinctive enough."""
    scored = [(abs(row[f"z_{f}"]), f) for f in QUALIFIERS if f"z_{f}" in row]
    if not scored or max(scored)[0] < QUALIFIER_MIN_Z:
        return None
    return max(scored)[1]


def _word(feature: str, z: float) -> str:
    high, low = CONTRASTS.get(feature, (f"higher {feature}", f"lower {feature}"))
    return high if z > 0 else low


def _contrast(group: pd.DataFrame, used: set[str]) -> str | None:
    """The feature (not yet used) on which the segments of ``group`` differ most."""
    spreads = {
        column[2:]: group[column].max() - group[column].min()
        for column in group.columns
        if column.startswith("z_") and column[2:] not in used
    }
    spreads = {f: s for f, s in spreads.items() if s > 1e-9}
    return max(spreads, key=lambda f: (spreads[f], f)) if spreads else None


def name_segments(profile: pd.DataFrame, population: Population) -> dict[int, str]:
    """Unique readable names by segment id (rules in the module docstring)."""
    rows = profile.set_index(profile["segment_id"].astype(int))
    base = {sid: _rfm_name(row, population) for sid, row in rows.iterrows()}
    words: dict[int, list[str]] = {sid: [] for sid in rows.index}
    used: dict[int, set[str]] = {sid: set() for sid in rows.index}
    for sid, row in rows.iterrows():
        feature = _qualifier(row)
        if feature:
            words[sid].append(_word(feature, row[f"z_{feature}"]))
            used[sid].add(feature)

    def name(sid: int) -> str:
        return f"{base[sid]} ({', '.join(words[sid])})" if words[sid] else base[sid]

    while True:
        groups: dict[str, list[int]] = defaultdict(list)
        for sid in rows.index:
            groups[name(sid)].append(sid)
        split = False
        for members in (m for m in groups.values() if len(m) > 1):
            feature = _contrast(rows.loc[members], set().union(*(used[sid] for sid in members)))
            if feature is None:
                continue
            z = rows.loc[members, f"z_{feature}"]
            middle = (z.max() + z.min()) / 2
            for sid in members:
                words[sid].append(_word(feature, 1.0 if z[sid] > middle else -1.0))
                used[sid].add(feature)
            split = True
        if not split:
            return {sid: name(sid) for sid in rows.index}


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
