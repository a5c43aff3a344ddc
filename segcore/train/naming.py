"""Readable segment names from the profile of each segment.

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

import numpy as np
import pandas as pd

from segcore.model.profiles import Population

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
