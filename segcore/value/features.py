"""Value scores as clustering features: ``train.features`` may name any of :data:`VALUE_FEATURES`.

They are not columns of the feature table: the value model trained beside the segments computes
them from the table's value inputs (:data:`~segcore.value.inputs.INPUT_COLUMNS`), and the segment
model carries that value model (:class:`~segcore.model.preparation.Preparation`), so training,
scoring, promotion and the registered pyfunc all derive the same figures from the feature table.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from pyspark.sql import DataFrame

from segcore.value.inputs import INPUT_COLUMNS
from segcore.value.model import ValueModel
from segcore.value.scores import VALUE_FEATURES
from segcore.value.scoring import with_value_scores


def value_features(features: Iterable[str]) -> list[str]:
    """The value scores among ``features``."""
    return [f for f in features if f in VALUE_FEATURES]


def with_value_features(frame: pd.DataFrame, model: ValueModel, names: Iterable[str]) -> pd.DataFrame:
    """``frame`` with the value features of ``names`` it lacks, scored from its :data:`INPUT_COLUMNS`."""
    missing = [n for n in names if n not in frame.columns]
    if not missing:
        return frame
    scores = model.score(frame[list(INPUT_COLUMNS)])
    return frame.assign(**{n: scores[n].fillna(VALUE_FEATURES[n]).to_numpy(float) for n in missing})


def with_value_features_spark(frame: DataFrame, model: ValueModel, names: Iterable[str]) -> DataFrame:
    """:func:`with_value_features` of a Spark DataFrame (vectorised, one pass)."""
    missing = [n for n in names if n not in frame.columns]
    if not missing:
        return frame
    return with_value_scores(frame, model, missing).fillna({n: VALUE_FEATURES[n] for n in missing})
