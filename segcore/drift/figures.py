"""Drift between two scorings: who moved between segments, how shares and features shifted.

Segments are matched by id: ids are stable by construction (:mod:`segcore.train.align`), so segment 3
in May and segment 3 in June are the same segment even when the model version differs. Every
figure is a Spark aggregation; only the k×k matrix and per-feature figures reach the driver.

The population stability index of two distributions over the same bins is
``PSI = sum((a - b) * ln(a / b))`` over the bins' shares ``b`` (before) and ``a`` (after), each
share at least :data:`PSI_FLOOR` so that an empty bin counts as large, not infinite.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segcore.model.segment_model import SegmentModel

# The pseudo-segment of customers only in the later scoring (from) or only in the earlier one (to).
NEW = DEPARTED = -1
MATRIX_COLUMNS = ["from_segment", "to_segment", "customers", "share", "from_name", "to_name"]
PSI_COLUMNS = ["feature", "psi", "bins", "mean_from", "mean_to", "missing_from", "missing_to"]
PSI_FLOOR = 1e-4
QUANTILE_ERROR = 1e-3
REVENUE_FEATURE = "monetary_total"
IDS_NOTE = (
    "segments are matched by id: ids are stable by construction (a new version's segments keep "
    "the champion's ids where their centres match, new ones get ids never used before)"
)


def _side(frame: DataFrame, role: str) -> DataFrame:
    names = F.col("segment_name") if "segment_name" in frame.columns else F.lit(None).cast("string")
    return frame.select(
        "customer_id",
        F.col("segment_id").cast("long").alias(f"{role}_segment"),
        names.alias(f"{role}_name"),
    )


def migration_matrix(before: DataFrame, after: DataFrame) -> pd.DataFrame:
    """Customers moving from each segment of ``before`` to each segment of ``after`` (scorings:
    customer_id, segment_id, optional segment_name), one row per non-empty pair:
    ``from_segment, to_segment, customers, share, from_name, to_name``. Customers only in
    ``after`` come from segment -1 ("new"), customers only in ``before`` go to -1 ("departed");
    ``share`` is the pair's customers over the from_segment's customers. One Spark aggregation;
    the driver gets at most (k+1)² rows."""
    joined = _side(before, "from").join(_side(after, "to"), "customer_id", "full_outer")
    pairs = (
        joined.groupBy(
            F.coalesce("from_segment", F.lit(NEW)).alias("from_segment"),
            F.coalesce("to_segment", F.lit(DEPARTED)).alias("to_segment"),
        )
        .agg(
            F.count(F.lit(1)).alias("customers"),
            F.first("from_name", ignorenulls=True).alias("from_name"),
            F.first("to_name", ignorenulls=True).alias("to_name"),
        )
        .toPandas()
    )
    pairs["from_name"] = pairs["from_name"].where(pairs["from_segment"] != NEW, "new")
    pairs["to_name"] = pairs["to_name"].where(pairs["to_segment"] != DEPARTED, "departed")
    totals = pairs.groupby("from_segment")["customers"].transform("sum")
    pairs["customers"] = pairs["customers"].astype("int64")
    pairs["share"] = pairs["customers"] / totals
    return pairs.sort_values(["from_segment", "to_segment"], ignore_index=True)[MATRIX_COLUMNS]


def psi(before: np.ndarray, after: np.ndarray) -> float:
    """PSI of two count vectors over the same bins (module docstring)."""
    b = np.maximum(before / max(before.sum(), 1), PSI_FLOOR)
    a = np.maximum(after / max(after.sum(), 1), PSI_FLOOR)
    return float(np.sum((a - b) * np.log(a / b)))


def _segment_sizes(scoring: DataFrame, features: DataFrame, high_risk_band: str) -> pd.DataFrame:
    """Per segment: customers, name, revenue (sum of ``monetary_total``, when the feature table has
    it) and the share of customers in ``high_risk_band`` (when the scoring has value scores)."""
    revenue = F.col(REVENUE_FEATURE) if REVENUE_FEATURE in features.columns else F.lit(None)
    names = F.col("segment_name") if "segment_name" in scoring.columns else F.lit(None).cast("string")
    high_risk = F.lit(None).cast("double")
    if "churn_risk_band" in scoring.columns:
        high_risk = (F.col("churn_risk_band") == F.lit(high_risk_band)).cast("double")
    return (
        scoring.select("customer_id", "segment_id", names.alias("segment_name"), high_risk.alias("high_risk"))
        .join(features.select("customer_id", revenue.cast("double").alias("revenue")), "customer_id", "left")
        .groupBy(F.col("segment_id").cast("long").alias("segment_id"))
        .agg(
            F.count(F.lit(1)).alias("customers"),
            F.first("segment_name", ignorenulls=True).alias("segment_name"),
            F.sum("revenue").alias("revenue"),
            F.avg("high_risk").alias("high_risk_share"),
        )
        .toPandas()
        .set_index("segment_id")
    )


def segment_shift(
    before: DataFrame,
    after: DataFrame,
    features_before: DataFrame,
    features_after: DataFrame,
    high_risk_band: str,
) -> pd.DataFrame:
    """Per segment id of either scoring: customers, share of customers, share of revenue (net spend
    to as_of, ``monetary_total``) and share of customers at high churn risk before and after, and
    their changes (after − before; shares are fractions; the risk share is NaN where a scoring has
    no value scores). The name is the later scoring's where the segment still exists."""
    sides = {
        "from": _segment_sizes(before, features_before, high_risk_band),
        "to": _segment_sizes(after, features_after, high_risk_band),
    }
    ids = sorted(set(sides["from"].index) | set(sides["to"].index))
    table = pd.DataFrame({"segment_id": ids})
    table["segment_name"] = [
        sides["to"]["segment_name"].get(i) or sides["from"]["segment_name"].get(i) for i in ids
    ]
    for role, sizes in sides.items():
        sizes = sizes.reindex(ids)
        customers = sizes["customers"].fillna(0).astype("int64").to_numpy()
        table[f"customers_{role}"] = customers
        table[f"share_{role}"] = customers / max(customers.sum(), 1)
        revenue = sizes["revenue"].astype(float).fillna(0.0).to_numpy()
        total = revenue.sum()
        table[f"revenue_share_{role}"] = revenue / total if total > 0 else np.nan
        table[f"high_risk_share_{role}"] = sizes["high_risk_share"].astype(float).to_numpy()
    table["share_shift"] = table["share_to"] - table["share_from"]
    table["revenue_share_shift"] = table["revenue_share_to"] - table["revenue_share_from"]
    table["risk_shift"] = table["high_risk_share_to"] - table["high_risk_share_from"]
    return table


def feature_psi(before: DataFrame, after: DataFrame, features: list[str], bins: int) -> pd.DataFrame:
    """PSI of each feature between two feature tables: bins at the ``before`` table's quantiles
    (one approxQuantile pass; tied quantiles merge bins), missing values in a bin of their own,
    then the counts of both tables in one aggregation. Columns: feature, psi, bins, mean_from,
    mean_to, missing_from, missing_to."""
    if not features:
        return pd.DataFrame(columns=PSI_COLUMNS)
    probabilities = [i / bins for i in range(1, bins)]
    edges = before.approxQuantile(features, probabilities, QUANTILE_ERROR)
    cuts = [sorted(set(e)) for e in edges]
    both = before.select(*features, F.lit(0).alias("_side")).unionByName(
        after.select(*features, F.lit(1).alias("_side"))
    )
    aggregates = []
    for i, (feature, points) in enumerate(zip(features, cuts, strict=True)):
        value = F.col(feature).cast("double")
        bucket = sum(((value > F.lit(c)).cast("int") for c in points), F.lit(0))
        aggregates += [F.count(F.when(bucket == j, 1)).alias(f"c{i}_{j}") for j in range(len(points) + 1)]
        aggregates += [F.count(F.when(value.isNull(), 1)).alias(f"n{i}"), F.avg(value).alias(f"m{i}")]
    rows = {row["_side"]: row.asDict() for row in both.groupBy("_side").agg(*aggregates).collect()}
    empty = dict.fromkeys(rows.get(0, rows.get(1, {})), 0)
    first, second = rows.get(0, empty), rows.get(1, empty)
    records = []
    for i, (feature, points) in enumerate(zip(features, cuts, strict=True)):
        keys = [f"c{i}_{j}" for j in range(len(points) + 1)] + [f"n{i}"]
        counts = [np.array([side[k] or 0 for k in keys], dtype=float) for side in (first, second)]
        records.append(
            {
                "feature": feature,
                "psi": psi(*counts),
                "bins": len(points) + 1,
                "mean_from": first.get(f"m{i}"),
                "mean_to": second.get(f"m{i}"),
                "missing_from": int(first[f"n{i}"]),
                "missing_to": int(second[f"n{i}"]),
            }
        )
    return pd.DataFrame(records, columns=PSI_COLUMNS).sort_values("psi", ascending=False, ignore_index=True)


def segment_psi(shift: pd.DataFrame) -> float:
    """PSI of the segment shares of two scorings (a :func:`segment_shift` table)."""
    return psi(shift["customers_from"].to_numpy(float), shift["customers_to"].to_numpy(float))


def centre_change(before: SegmentModel, after: SegmentModel) -> pd.DataFrame:
    """For each segment id in both models: how far its centre moved, in the later model's scaled
    space (the earlier centre taken to original units, then prepared as the later model does), and
    the change of each feature's centre value in original units."""
    common = [i for i in after.segment_ids if i in before.segment_ids]
    features = after.features
    old = pd.DataFrame(before.preparation.inverse(before.centres), columns=before.features)
    new = pd.DataFrame(after.preparation.inverse(after.centres), columns=after.features)
    old_rows = [before.segment_ids.index(i) for i in common]
    new_rows = [after.segment_ids.index(i) for i in common]
    old_scaled = after.preparation.transform(old.iloc[old_rows].reset_index(drop=True)[features])
    distance = np.linalg.norm(old_scaled - after.centres[new_rows], axis=1)
    table = pd.DataFrame(
        {
            "segment_id": common,
            "name_from": [before.segment_names[r] for r in old_rows],
            "name_to": [after.segment_names[r] for r in new_rows],
            "centre_distance": distance,
        }
    )
    changes = new.iloc[new_rows].reset_index(drop=True) - old.iloc[old_rows].reset_index(drop=True)[features]
    return pd.concat([table, changes[features].add_prefix("change_")], axis=1)


def retention_shift(kpis_before: pd.DataFrame, kpis_after: pd.DataFrame, min_buyers: int) -> pd.DataFrame:
    """segment_id, retention_from, retention_to and retention_shift (after − before) from two
    scorings' KPI tables (:mod:`segcore.score.kpis`); NaN where a segment is in one scoring only or
    has fewer than ``min_buyers`` prior buyers in either."""

    def usable(kpis: pd.DataFrame) -> pd.Series:
        kpis = kpis.set_index("segment_id")
        return kpis["retention"].where(kpis["prior_buyers"] >= min_buyers)

    table = pd.DataFrame({"retention_from": usable(kpis_before), "retention_to": usable(kpis_after)})
    table["retention_shift"] = table["retention_to"] - table["retention_from"]
    return table.rename_axis("segment_id").reset_index()
