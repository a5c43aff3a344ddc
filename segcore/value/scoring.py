"""Value scores in Spark: the model applied to Arrow batches of the inputs (vectorised NumPy, no
Python per row)."""

from __future__ import annotations

from collections.abc import Sequence

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
        return model.score(pd.DataFrame(dict(zip(INPUT_COLUMNS, (x, t_x, T, m), strict=True))))[list(columns)]

    return scores(*[F.col(c).cast("double") for c in INPUT_COLUMNS])
