"""Feature preparation fitted on the training data and carried inside the model:
log-transform skewed money and count features, clip outliers at quantiles, standard-scale."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from segcore.errors import TrainingError


@dataclass(frozen=True)
class Preparation:
    """The fitted transform; ``transform`` turns a feature frame into the clustering space."""

    features: list[str]
    log_features: list[str]
    lower: list[float]
    upper: list[float]
    mean: list[float]
    scale: list[float]

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        features: list[str],
        log_features: list[str],
        clip_quantile: float,
        table: str = "features",
    ) -> Preparation:
        check_values(frame, features, table)
        logged = [f for f in features if f in log_features]
        values = _log(frame[features].to_numpy(dtype=np.float64), features, logged)
        lower = np.quantile(values, clip_quantile, axis=0)
        upper = np.quantile(values, 1 - clip_quantile, axis=0)
        clipped = np.clip(values, lower, upper)
        scale = clipped.std(axis=0)
        constant = [name for name, s in zip(features, scale, strict=True) if not s > 1e-12]
        if constant:
            raise TrainingError(
                f"table '{table}': feature(s) {constant} are constant over all customers (after "
                "clipping) and cannot separate segments: remove them from train.features"
            )
        return cls(
            features, logged, lower.tolist(), upper.tolist(), clipped.mean(axis=0).tolist(), scale.tolist()
        )

    def transform(self, frame: pd.DataFrame, table: str = "features") -> np.ndarray:
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise TrainingError(f"table '{table}' lacks the model's feature column(s) {missing}")
        check_values(frame, self.features, table)
        values = _log(frame[self.features].to_numpy(dtype=np.float64), self.features, self.log_features)
        return (np.clip(values, self.lower, self.upper) - self.mean) / self.scale

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        """Points of the clustering space back in original units (for centres)."""
        values = np.asarray(scaled) * self.scale + self.mean
        logged = [f in self.log_features for f in self.features]
        values[:, logged] = np.expm1(values[:, logged])
        return values

    def to_dict(self) -> dict:
        return asdict(self)


def _log(values: np.ndarray, features: list[str], logged: list[str]) -> np.ndarray:
    columns = [i for i, f in enumerate(features) if f in logged]
    values[:, columns] = np.log1p(np.maximum(values[:, columns], 0.0))
    return values


def check_values(frame: pd.DataFrame, features: list[str], table: str) -> None:
    """Every feature must be present and finite."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise TrainingError(
            f"table '{table}' has no column(s) {missing} named in train.features; "
            f"available: {sorted(c for c in frame.columns if c != 'customer_id')}"
        )
    values = frame[features].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        columns = [f for f, b in zip(features, bad.any(axis=0), strict=True) if b]
        raise TrainingError(
            f"table '{table}': column(s) {columns} hold {int(bad.sum())} null, NaN or infinite "
            "value(s): fix the feature table or remove those features from train.features"
        )
