"""What the backtest needs from its customers, summed in one pass: the value model's and the naive
baseline's forecasts over the horizon, set against what each customer did, per partition into
sums and bins that add up across partitions (pandas and NumPy, no Spark).

The sums come as rows of ``(kind, bin)`` and :data:`SUMS`:

- ``totals`` (bin 0): customers, lapsed customers, predicted, naive and actual purchases, and the
  model's and the baseline's absolute errors;
- ``model_churn`` and ``naive_churn``: customers and lapsed customers per bin of churn risk
  (``round(risk * AUC_BINS)``), for the AUCs;
- ``purchases``: customers and predicted, naive and actual purchases per bin of the logarithm of
  predicted purchases, for the deciles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd

from segcore.value.model import ValueModel

DECILES = 10
# Churn scores (in [0, 1]) are counted in this many bins for their AUC: pairs within a bin count half.
AUC_BINS = 10_000
# Predicted purchases are counted in bins 0.05% apart (this many per unit of their logarithm),
# those below PURCHASE_FLOOR in the first: a bin's customers fall in one decile.
PURCHASE_BINS_PER_LOG = 2_000
PURCHASE_FLOOR = 1e-6
KINDS = ("totals", "model_churn", "naive_churn", "purchases")
SUMS = ("customers", "lapsed", "predicted", "naive", "actual", "model_error", "naive_error")
SCHEMA = "kind string, bin long, " + ", ".join(f"{name} double" for name in SUMS)


def forecasts(model: ValueModel, batch: pd.DataFrame) -> pd.DataFrame:
    """Per customer of ``batch`` (the backtest's inputs, every customer with a purchase):
    predicted, naive and actual purchases over the horizon, and the model's and naive churn risks.
    The naive baseline projects the repeat purchases per day so far, its churn risk is the Poisson
    chance of no purchase at that rate."""
    predicted, risk = model.purchases_and_churn_risk(batch)
    observed = batch["observed_days"].to_numpy(float)
    repeats = batch["repeat_purchases"].to_numpy(float)
    rate = np.divide(repeats, observed, out=np.zeros_like(repeats), where=observed > 0)
    return pd.DataFrame(
        {
            "predicted": predicted,
            "naive": rate * model.horizon_days,
            "actual": batch["actual_purchases"].to_numpy(float),
            "model_churn": risk,
            "naive_churn": np.exp(-rate * model.horizon_days),
        }
    )


class PartitionSums:
    """The sums of one partition, batch by batch: dense arrays per bin, grown as bins appear."""

    def __init__(self) -> None:
        self._bins: dict[str, dict[str, np.ndarray]] = {kind: {} for kind in KINDS}

    def add(self, rows: pd.DataFrame) -> None:
        """Add the customers of a :func:`forecasts` frame."""
        lapsed = (rows["actual"].to_numpy() == 0).astype(float)
        predicted, naive, actual = (rows[name].to_numpy() for name in ("predicted", "naive", "actual"))
        counted = {
            "customers": np.ones(len(rows)),
            "lapsed": lapsed,
            "predicted": predicted,
            "naive": naive,
            "actual": actual,
            "model_error": np.abs(predicted - actual),
            "naive_error": np.abs(naive - actual),
        }
        self._count("totals", np.zeros(len(rows), dtype=np.int64), counted)
        for kind in ("model_churn", "naive_churn"):  # Spark's round(): half up
            churn_bins = np.floor(rows[kind].to_numpy() * AUC_BINS + 0.5).astype(np.int64)
            self._count(kind, churn_bins, {name: counted[name] for name in ("customers", "lapsed")})
        logs = np.log(np.maximum(predicted, PURCHASE_FLOOR) / PURCHASE_FLOOR)
        purchase_bins = np.floor(logs * PURCHASE_BINS_PER_LOG).astype(np.int64)
        wanted = ("customers", "predicted", "naive", "actual")
        self._count("purchases", purchase_bins, {name: counted[name] for name in wanted})

    def _count(self, kind: str, bins: np.ndarray, values: dict[str, np.ndarray]) -> None:
        sums = self._bins[kind]
        size = int(bins.max()) + 1 if len(bins) else 0
        for name, value in values.items():
            added = np.bincount(bins, weights=value, minlength=size)
            before = sums.get(name, np.zeros(0))
            if len(before) < len(added):
                before = np.pad(before, (0, len(added) - len(before)))
            before[: len(added)] += added
            sums[name] = before

    def rows(self) -> pd.DataFrame:
        """The non-empty bins of every kind, with :data:`SUMS` (0 where a kind has no such sum)."""
        frames = []
        for kind, sums in self._bins.items():
            if not sums:
                continue
            present = np.flatnonzero(sums["customers"])
            frame = pd.DataFrame({"kind": kind, "bin": present.astype(np.int64)})
            for name in SUMS:
                frame[name] = sums[name][present] if name in sums else 0.0
            frames.append(frame)
        columns = ["kind", "bin", *SUMS]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def partition_sums(model: ValueModel, batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The sums of one partition's batches of backtest inputs, as one frame at its end."""
    sums = PartitionSums()
    for batch in batches:
        sums.add(forecasts(model, batch))
    yield sums.rows()


def metrics(summed: pd.DataFrame) -> dict[str, float]:
    """The model's and the baseline's figures from the sums of every partition (``summed``: one row
    per kind and bin)."""
    totals = summed[summed["kind"] == "totals"][list(SUMS)].sum()
    customers = totals["customers"]
    return {
        "customers": float(customers),
        "actual_purchases": float(totals["actual"]),
        "model_purchases": float(totals["predicted"]),
        "naive_purchases": float(totals["naive"]),
        "model_mae": float(totals["model_error"] / customers),
        "naive_mae": float(totals["naive_error"] / customers),
        "lapsed_share": float(totals["lapsed"] / customers),
        "model_churn_auc": churn_auc(_of_kind(summed, "model_churn")),
        "naive_churn_auc": churn_auc(_of_kind(summed, "naive_churn")),
    }


def churn_auc(bins: pd.DataFrame) -> float:
    """The area under the ROC curve of a churn score for lapsing, from the lapsed and all
    customers per bin of the score (``bins``, ascending); pairs within a bin count half. NaN
    without both lapsed and active customers."""
    lapsed = bins["lapsed"].to_numpy(dtype=float)
    active = bins["customers"].to_numpy(dtype=float) - lapsed
    pairs = lapsed.sum() * active.sum()
    if pairs == 0:
        return float("nan")
    active_below = np.cumsum(active) - active
    return float((lapsed * (active_below + active / 2)).sum() / pairs)


def deciles(summed: pd.DataFrame) -> pd.DataFrame:
    """Customers in deciles of predicted purchases: mean predicted, naive and actual purchases each
    (the paper's conditional-expectation check). A bin of predicted purchases is above the i-th
    decile's edge when the customers below it reach i tenths."""
    bins = _of_kind(summed, "purchases")
    customers = bins["customers"].to_numpy()
    below = np.cumsum(customers) - customers
    edges = np.ceil(np.arange(1, DECILES) / DECILES * customers.sum())
    decile = 1 + (below[:, None] >= edges[None, :]).sum(axis=1)
    grouped = (
        bins.assign(decile=decile).groupby("decile")[["customers", "predicted", "naive", "actual"]].sum()
    )
    for name in ("predicted", "naive", "actual"):
        grouped[name] /= grouped["customers"]
    grouped["customers"] = grouped["customers"].astype(np.int64)
    return grouped.reset_index()


def _of_kind(summed: pd.DataFrame, kind: str) -> pd.DataFrame:
    return summed[summed["kind"] == kind].sort_values("bin", ignore_index=True)
