"""Every k tried, fitted in one sweep through the engine adapter; the k chosen by the rule, and
how stable it is."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from segcore.config import Config, KRange
from segcore.errors import TrainingError
from segcore.kmeans.core import KMeansResult
from segcore.model.segment_model import SegmentModel
from segcore.runtime.logs import step
from segcore.train.align import champion_centres
from segcore.train.choose_k import choose_k, quality_metrics, stability
from segcore.train.engines import fit_settings, fit_sweep
from segcore.train.inputs import TrainingInputs


@dataclass(frozen=True)
class Selection:
    """Every k tried, the one chosen and why, and how stable it is."""

    k_table: pd.DataFrame
    chosen: int
    reason: str
    result: KMeansResult
    stability_ari: float
    warnings: list[str]

    @property
    def metrics(self) -> dict[str, float]:
        """The chosen k's figures."""
        return {**self.k_table.set_index("k").loc[self.chosen].to_dict(), "stability_ari": self.stability_ari}


def k_values(config: Config, rows: int) -> list[int]:
    """The k of ``kmeans.k`` (one, or a range), refusing more segments than customers."""
    k = config.kmeans.k
    ks = list(range(k.min, k.max + 1)) if isinstance(k, KRange) else [k]
    if ks[-1] > rows:
        raise TrainingError(
            f"kmeans.k={ks[-1]} is larger than the number of customers ({rows}) in the feature "
            f"table for as_of={config.as_of}: lower kmeans.k"
        )
    return ks


def _warm_start(config: Config, champion: SegmentModel | None, inputs: TrainingInputs, k: int):
    """The champion's centres as initial centres, with kmeans.init=champion and a matching model."""
    if config.kmeans.init != "champion" or champion is None or len(champion.centres) != k:
        return None
    return champion_centres(champion, inputs.preparation)


def fit_every_k(
    config: Config, ks: list[int], inputs: TrainingInputs, champion: SegmentModel | None
) -> dict[int, KMeansResult]:
    """Every k tried, in one sweep (the data loaded and prepared once), each k warm-started from
    the champion's centres where ``kmeans.init=champion`` and the champion has that k."""
    label = f"k={ks[0]}" if len(ks) == 1 else f"k={ks[0]}..{ks[-1]}"
    with step("train", f"fit {label} ({config.kmeans.engine})") as figures:
        inits = {k: _warm_start(config, champion, inputs, k) for k in ks}
        fits = fit_sweep(config.kmeans, inits, inputs.frame, inputs.path, inputs.preparation)
        figures.update(
            iterations=",".join(str(fits[k].n_iter) for k in ks),
            inertia=",".join(f"{fits[k].inertia:.6g}" for k in ks),
        )
    return fits


def _fit_metrics(result: KMeansResult) -> dict[str, float]:
    return {
        "inertia": result.inertia,
        "fit_seconds": result.fit_seconds,
        "init_seconds": result.init_seconds,
        "iterations": float(result.n_iter),
        "converged": float(result.converged),
    }


def _stability_warnings(config: Config, stability_ari: float) -> list[str]:
    select = config.select
    if stability_ari >= select.stability_min_ari:
        return []
    return [
        f"unstable segments: stability_ari={stability_ari:.3f} is below select.stability_min_ari="
        f"{select.stability_min_ari} (refits on bootstrap samples disagree): try another k (kmeans.k, "
        "or select.rule: fixed with select.fixed_k), fewer or other features (train.features), "
        "or another select.rule"
    ]


def select_k(config: Config, fits: dict[int, KMeansResult], points: np.ndarray) -> Selection:
    """Measure every k's fit (``fits``: k → result) on the sample ``points``, choose, check stability."""
    select = config.select
    ks = sorted(fits)
    k_table = pd.DataFrame(
        [{"k": k, **_fit_metrics(fits[k]), **quality_metrics(points, fits[k].centres)} for k in ks]
    )
    try:
        chosen, reason = (
            choose_k(k_table, select.rule, select.fixed_k) if len(ks) > 1 else (ks[0], "single k")
        )
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    with step("train", f"stability of k={chosen}") as figures:
        stability_ari = stability(points, chosen, fit_settings(config.kmeans), select.stability_bootstraps)
        figures["stability_ari"] = f"{stability_ari:.3f}"
    warnings = _stability_warnings(config, stability_ari)
    return Selection(k_table, chosen, reason, fits[chosen], stability_ari, warnings)
