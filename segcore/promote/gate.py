"""The promotion gate: a challenger model against the champion on the same feature partition.

Both models assign every customer with Spark; only the k×k contingency table of the two
assignments reaches the driver, and it gives the stability (adjusted Rand index), the challenger's
segment shares and the id check. The quality metric is measured on a seeded sample of the
partition, both assignments in the champion's prepared space, so both are judged on the same
points with the same geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from segcore.config import Config
from segcore.kmeans.kernels import nearest
from segcore.model.assign import sample_rows, with_segment_ids
from segcore.model.segment_model import SegmentModel
from segcore.train.choose_k import RULE_METRIC, labelling_metrics

# The metric of rules that have none of their own (elbow, fixed).
FALLBACK_METRIC = ("davies_bouldin", "min")


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    threshold: str  # e.g. ">= 0.8"
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateResult:
    customers: int
    contingency: pd.DataFrame  # customers by champion segment id (rows) and challenger id (columns)
    checks: list[Check]

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]


def _with_ids(frame: DataFrame, model: SegmentModel, column: str) -> DataFrame:
    """``frame`` with ``column``: the segment id ``model`` assigns to each row (Spark)."""
    labelled = with_segment_ids(frame, model.preparation, model.centres, model.segment_ids, column)
    return labelled.drop("distance")


def contingency(frame: DataFrame, champion: SegmentModel, challenger: SegmentModel) -> pd.DataFrame:
    """Customers of each (champion segment, challenger segment) pair: one Spark aggregation, a
    k×k table on the driver."""
    features = list(dict.fromkeys([*champion.preparation.inputs, *challenger.preparation.inputs]))
    both = _with_ids(_with_ids(frame.select(*features), champion, "champion"), challenger, "challenger")
    pairs = both.groupBy("champion", "challenger").count().toPandas()
    table = pairs.pivot(index="champion", columns="challenger", values="count")
    return table.reindex(index=sorted(champion.segment_ids), columns=sorted(challenger.segment_ids)).fillna(0)


def ari_from_contingency(table: np.ndarray) -> float:
    """The adjusted Rand index of two labellings given their contingency table (as scikit-learn's
    ``adjusted_rand_score`` computes it from the labels)."""
    table = np.asarray(table, dtype=np.float64)

    def pairs(counts: np.ndarray) -> float:
        return float((counts * (counts - 1) / 2).sum())

    total = table.sum()
    both, rows, columns = pairs(table), pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    expected = rows * columns / (total * (total - 1) / 2) if total > 1 else 0.0
    maximum = (rows + columns) / 2
    if maximum == expected:  # both labellings put everyone together (or everyone apart)
        return 1.0
    return (both - expected) / (maximum - expected)


def id_conflicts(table: pd.DataFrame) -> list[str]:
    """Where the challenger's ids disagree with the champion's: a segment that is the largest
    overlap of a champion segment and vice versa (a match) with another id, or an id of both
    models naming segments that do not match."""
    best_row = table.idxmax(axis=1)  # champion id -> challenger id holding most of its customers
    best_column = table.idxmax(axis=0)
    matches = {c: s for c, s in best_row.items() if best_column[s] == c}
    conflicts = [
        f"challenger segment {s} matches champion segment {c} but does not keep its id"
        for c, s in matches.items()
        if c != s
    ]
    conflicts += [
        f"id {i} names a challenger segment that does not match champion segment {i}"
        for i in sorted(set(table.index) & set(table.columns))
        if matches.get(i) != i
    ]
    return conflicts


def quality(config: Config, sample: pd.DataFrame, champion: SegmentModel, challenger: SegmentModel) -> Check:
    """The select.rule's metric of both assignments of ``sample``, in the champion's space."""
    metric, direction = RULE_METRIC.get(config.select.rule, FALLBACK_METRIC)
    points = champion.preparation.transform(sample)
    figures = {
        role: labelling_metrics(points, nearest(model.preparation.transform(sample), model.centres)[0]).get(
            metric, np.nan
        )
        for role, model in (("champion", champion), ("challenger", challenger))
    }
    worse = (
        figures["champion"] - figures["challenger"]
        if direction == "max"
        else (figures["challenger"] - figures["champion"])
    )
    loss = worse / abs(figures["champion"]) if figures["champion"] else np.nan
    limit = config.promote.max_quality_loss
    return Check(
        "quality_loss",
        float(loss),
        f"<= {limit:g}",
        bool(loss <= limit),
        f"{metric} ({'higher' if direction == 'max' else 'lower'} is better): challenger "
        f"{figures['challenger']:.4f}, champion {figures['champion']:.4f}",
    )


def run_gate(
    config: Config, frame: DataFrame, champion: SegmentModel, challenger: SegmentModel
) -> GateResult:
    """Every check of the gate on the feature table ``frame``."""
    settings = config.promote
    table = contingency(frame, champion, challenger)
    customers = int(table.to_numpy().sum())
    ari = ari_from_contingency(table.to_numpy())
    shares = table.sum(axis=0) / customers
    smallest = shares.idxmin()
    conflicts = id_conflicts(table)
    size = config.train.silhouette_sample
    features = list(dict.fromkeys([*champion.preparation.inputs, *challenger.preparation.inputs]))
    sample = sample_rows(frame.select(*features), customers, size, config.kmeans.seed)
    checks = [
        Check(
            "stability_ari",
            ari,
            f">= {settings.min_stability:g}",
            ari >= settings.min_stability,
            "adjusted Rand index between the champion's and the challenger's assignments",
        ),
        Check(
            "min_segment_share",
            float(shares[smallest]),
            f">= {settings.min_segment_share:g}",
            bool(shares[smallest] >= settings.min_segment_share),
            f"smallest challenger segment: {smallest} ({int(table[smallest].sum()):,} customers)",
        ),
        quality(config, sample, champion, challenger),
        Check(
            "id_conflicts",
            float(len(conflicts)),
            "== 0",
            not conflicts,
            "; ".join(conflicts) or "matched segments keep the champion's ids",
        ),
    ]
    return GateResult(customers, table, checks)
