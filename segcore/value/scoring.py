"""Value scores in Spark: the model applied to Arrow batches of the inputs (vectorised NumPy, no
Python per row)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segcore.value.inputs import INPUT_COLUMNS
from segcore.value.model import ValueModel
from segcore.value.scores import SCORE_COLUMNS


def with_value_scores(
    frame: DataFrame, model: ValueModel, columns: Sequence[str] = tuple(SCORE_COLUMNS)
) -> DataFrame:
    """``frame`` (with :data:`INPUT_COLUMNS`) and the score ``columns`` (of :data:`SCORE_COLUMNS`) added."""
    return frame.withColumn("_value", value_scores(model, columns)).select(
        *frame.columns, *[F.col(f"_value.{c}").alias(c) for c in columns]
    )


def value_scores(model: ValueModel, columns: Sequence[str] = tuple(SCORE_COLUMNS)) -> Column:
    """The score ``columns`` as one struct, from the frame's :data:`INPUT_COLUMNS`."""

    @F.pandas_udf(", ".join(f"{name} {SCORE_COLUMNS[name]}" for name in columns))
    def scores(x: pd.Series, t_x: pd.Series, T: pd.Series, m: pd.Series) -> pd.DataFrame:
        return scores_of(model, (x, t_x, T, m), columns)

    return scores(*[F.col(c).cast("double") for c in INPUT_COLUMNS])


def scores_of(
    model: ValueModel, inputs: Sequence[pd.Series | np.ndarray], columns: Sequence[str] = tuple(SCORE_COLUMNS)
) -> pd.DataFrame:
    """The score ``columns`` of the customers whose :data:`INPUT_COLUMNS` are ``inputs`` (in that
    order)."""
    return model.score(pd.DataFrame(dict(zip(INPUT_COLUMNS, inputs, strict=True))))[list(columns)]
