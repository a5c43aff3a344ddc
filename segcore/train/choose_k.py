"""Choosing k: quality metrics per k on a seeded sample, the selection rules, and stability."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from segcore.kmeans import FitSettings, LocalBlocks, fit
from segcore.kmeans.kernels import nearest

# Which way is better for each rule's metric.
RULE_METRIC = {
    "silhouette": ("silhouette", "max"),
    "calinski_harabasz": ("calinski_harabasz", "max"),
    "davies_bouldin": ("davies_bouldin", "min"),
}


def quality_metrics(points: np.ndarray, centres: np.ndarray) -> dict[str, float]:
    """Silhouette, Davies–Bouldin and Calinski–Harabasz of the sample labelled by ``centres``."""
    return labelling_metrics(points, nearest(points, centres)[0])


def labelling_metrics(points: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The quality metrics of ``points`` grouped by ``labels`` (empty with fewer than 2 groups)."""
    if len(np.unique(labels)) < 2:
        return {}
    return {
        "silhouette": float(silhouette_score(points, labels)),
        "davies_bouldin": float(davies_bouldin_score(points, labels)),
        "calinski_harabasz": float(calinski_harabasz_score(points, labels)),
    }


def knee(ks: list[int], inertias: list[float]) -> int:
    """The elbow of the inertia curve: the k farthest below the chord from the first to the last
    point, both axes scaled to [0, 1] (Kneedle)."""
    if len(ks) < 3:
        return ks[0]
    x = (np.asarray(ks, float) - ks[0]) / (ks[-1] - ks[0])
    y = np.asarray(inertias, float)
    y = (y - y.min()) / (np.ptp(y) or 1.0)
    chord = 1.0 - x  # from (0, 1) to (1, 0)
    return int(ks[int(np.argmax(chord - y))])


def choose_k(table: pd.DataFrame, rule: str, fixed_k: int | None) -> tuple[int, str]:
    """The chosen k from the per-k table (columns k, inertia and the metrics) and why."""
    ks = table["k"].tolist()
    if rule == "fixed":
        if fixed_k not in ks:
            raise ValueError(f"select.fixed_k={fixed_k} is not in the tried range {ks[0]}..{ks[-1]}")
        return fixed_k, f"fixed: select.fixed_k={fixed_k}"
    if rule == "elbow":
        chosen = knee(ks, table["inertia"].tolist())
        return chosen, f"elbow: knee of the inertia curve at k={chosen}"
    metric, direction = RULE_METRIC[rule]
    if metric not in table or table[metric].isna().all():
        raise ValueError(f"select.rule={rule} needs {metric}, which no k produced (fewer than 2 segments?)")
    best = table.loc[table[metric].idxmax() if direction == "max" else table[metric].idxmin()]
    word = "highest" if direction == "max" else "lowest"
    return int(best["k"]), f"{rule}: {word} {metric} ({best[metric]:.4f}) at k={int(best['k'])}"


def stability(points: np.ndarray, k: int, settings: FitSettings, bootstraps: int) -> float:
    """Mean adjusted Rand index between refits on seeded bootstrap resamples of the sample, each
    labelling the whole sample (1.0: the same segments every time)."""
    rng = np.random.default_rng(settings.seed)
    labelings = []
    for b in range(bootstraps):
        resample = points[rng.integers(len(points), size=len(points))]
        refit = fit(
            LocalBlocks(resample),
            k,
            replace(settings, seed=settings.seed + b + 1, init=None),
        )
        labelings.append(nearest(points, refit.centres)[0])
    return float(np.mean([adjusted_rand_score(a, b) for a, b in combinations(labelings, 2)]))
