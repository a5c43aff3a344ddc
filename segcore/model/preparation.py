"""Feature preparation fitted on the training data (with Spark, whatever the engine) and carried
inside the model: log-transform skewed money and count features (signed, so net spend at or below
zero is kept: ``sign(x) * log1p(|x|)``), clip outliers at quantiles, standard-scale. Value scores
among the features (:mod:`segcore.value.features`) are derived first, by the value model the
preparation carries."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segcore.errors import TrainingError
from segcore.value.features import value_features, with_value_features, with_value_features_spark
from segcore.value.inputs import INPUT_COLUMNS
from segcore.value.model import ValueModel


@dataclass(frozen=True)
class Preparation:
    """The fitted transform; ``transform`` turns a feature frame into the clustering space."""

    features: list[str]
    log_features: list[str]
    lower: list[float]
    upper: list[float]
    mean: list[float]
    scale: list[float]
    value_model: str | None = None  # the JSON state of the value model deriving value features

    @classmethod
    def fit(
        cls,
        frame: DataFrame,
        features: list[str],
        log_features: list[str],
        clip_quantile: float,
        table: str = "features",
        value_model: ValueModel | None = None,
    ) -> Preparation:
        """Fit on a Spark DataFrame: approximate quantiles, then clipped means and deviations.
        Value features among ``features`` are derived by ``value_model`` where ``frame`` lacks them."""
        derived = value_features(features)
        if derived and value_model is None:
            raise TrainingError(
                f"train.features names value score(s) {derived}, which the customer value model "
                "derives: set value.enabled: true, or remove them from train.features"
            )
        if derived:
            frame = with_value_features_spark(frame, value_model, derived)
        check_values_spark(frame, features, table)
        logged = [f for f in features if f in log_features]
        values = frame.select(
            *[signed_log_column(f).alias(f) if f in logged else F.col(f).cast("double") for f in features]
        )
        bounds = values.approxQuantile(features, [clip_quantile, 1 - clip_quantile], QUANTILE_ERROR)
        lower, upper = [b[0] for b in bounds], [b[1] for b in bounds]
        clipped = [
            F.least(F.greatest(F.col(f), F.lit(lo)), F.lit(hi))
            for f, lo, hi in zip(features, lower, upper, strict=True)
        ]
        stats = values.agg(*[F.avg(c) for c in clipped], *[F.stddev_pop(c) for c in clipped]).first()
        mean, scale = list(stats[: len(features)]), list(stats[len(features) :])
        constant = [name for name, s in zip(features, scale, strict=True) if not s > 1e-12]
        if constant:
            raise TrainingError(
                f"table '{table}': feature(s) {constant} are constant over all customers (after "
                "clipping) and cannot separate segments: remove them from train.features"
            )
        state = value_model.to_json() if derived else None
        return cls(features, logged, lower, upper, mean, scale, state)

    @cached_property
    def _value(self) -> ValueModel | None:
        return ValueModel.from_json(self.value_model) if self.value_model else None

    @property
    def inputs(self) -> list[str]:
        """The feature-table columns the preparation reads: its features, with the value inputs in
        place of the value features it derives."""
        if self._value is None:
            return list(self.features)
        derived = value_features(self.features)
        return list(dict.fromkeys([*(f for f in self.features if f not in derived), *INPUT_COLUMNS]))

    def with_derived(self, frame: pd.DataFrame, table: str = "features") -> pd.DataFrame:
        """``frame`` (rows of the feature table) with the value features it lacks."""
        if self._value is None:
            return frame
        lacking = [f for f in value_features(self.features) if f not in frame.columns]
        inputs = [c for c in INPUT_COLUMNS if c not in frame.columns]
        if lacking and inputs:
            raise TrainingError(
                f"table '{table}' lacks the value input(s) {inputs} from which the model derives {lacking}: "
                "rebuild it with feature group 'rfm'"
            )
        return with_value_features(frame, self._value, lacking)

    def with_derived_spark(self, frame: DataFrame) -> DataFrame:
        """:meth:`with_derived` of a Spark DataFrame."""
        return frame if self._value is None else with_value_features_spark(frame, self._value, self.features)

    def transform_array(self, values: np.ndarray) -> np.ndarray:
        """Rows of raw feature values (columns in ``features`` order) into the clustering space."""
        values = np.array(values, dtype=np.float64)
        logged = [i for i, f in enumerate(self.features) if f in self.log_features]
        values[:, logged] = signed_log(values[:, logged])
        return (np.clip(values, self.lower, self.upper) - self.mean) / self.scale

    def transform(self, frame: pd.DataFrame, table: str = "features") -> np.ndarray:
        """Rows of the feature table (value features derived where absent) into the clustering space."""
        frame = self.with_derived(frame, table)
        check_values(frame, self.features, table)
        return self.transform_array(frame[self.features].to_numpy(dtype=np.float64))

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        """Points of the clustering space back in original units (for centres)."""
        values = np.asarray(scaled) * self.scale + self.mean
        logged = [f in self.log_features for f in self.features]
        values[:, logged] = np.sign(values[:, logged]) * np.expm1(np.abs(values[:, logged]))
        return values

    def to_dict(self) -> dict:
        return asdict(self)


QUANTILE_ERROR = 1e-4


def signed_log(values: np.ndarray) -> np.ndarray:
    """``sign(x) * log1p(|x|)``: the log transform of a value that may be zero or negative."""
    return np.sign(values) * np.log1p(np.abs(values))


def signed_log_column(feature: str) -> Column:
    """:func:`signed_log` of a feature column in Spark."""
    value = F.col(feature).cast("double")
    return F.signum(value) * F.log1p(F.abs(value))


def _bad_values_message(table: str, counts: dict[str, int]) -> str:
    columns = [f for f, n in counts.items() if n]
    return (
        f"table '{table}': column(s) {columns} hold {sum(counts.values())} null, NaN or infinite "
        "value(s): fix the feature table or remove those features from train.features"
    )


def bad_value_counts(features: list[str]) -> list[Column]:
    """Per feature, in an aggregation or an observation: its null, NaN or infinite values."""
    counts = []
    for f in features:
        value = F.col(f).cast("double")
        bad = value.isNull() | F.isnan(value) | (F.abs(value) == float("inf"))
        counts.append(F.sum(bad.cast("long")).alias(f))
    return counts


def check_values_spark(frame: DataFrame, features: list[str], table: str) -> None:
    """Every feature must be present and finite (one Spark aggregation)."""
    _check_present(list(frame.columns), features, table)
    counts = frame.agg(*bad_value_counts(features)).first().asDict()
    if any(counts.values()):
        raise TrainingError(_bad_values_message(table, counts))


def _check_present(columns: list[str], features: list[str], table: str) -> None:
    missing = [f for f in features if f not in columns]
    if missing:
        raise TrainingError(
            f"table '{table}' has no column(s) {missing} named in train.features; "
            f"available: {sorted(c for c in columns if c != 'customer_id')}"
        )


def check_values(frame: pd.DataFrame, features: list[str], table: str) -> None:
    """Every feature must be present and finite."""
    _check_present(list(frame.columns), features, table)
    bad = ~np.isfinite(frame[features].to_numpy(dtype=np.float64))
    if bad.any():
        raise TrainingError(
            _bad_values_message(table, dict(zip(features, bad.sum(axis=0).tolist(), strict=True)))
        )
