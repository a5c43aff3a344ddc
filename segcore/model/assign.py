"""The Spark assignment of rows to segments outside score (whose pass assigns, scores and
summarises at once: :mod:`segcore.score.scoring_pass`), and the one seeded row sample that reaches
the driver (for quality metrics, stability and plots)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segcore.kmeans.engines.spark import assign_spark
from segcore.model.preparation import Preparation


def with_segment_ids(
    frame: DataFrame,
    preparation: Preparation,
    centres: np.ndarray,
    segment_ids: Sequence[int],
    column: str = "segment_id",
) -> DataFrame:
    """``frame`` with ``column``: the id of each row's nearest centre in the prepared space, and
    ``distance`` to it (one Spark pass; ``segment_ids`` are the centres' ids, in centre order).
    Value features the preparation derives are derived for the assignment, not added."""
    derived = preparation.with_derived_spark(frame)
    labelled = assign_spark(derived, preparation.features, centres, preparation.transform_array)
    ids = F.element_at(F.array(*[F.lit(int(i)) for i in segment_ids]), F.col("label") + 1)
    return labelled.select(*frame.columns, ids.alias(column), "distance")


def sample_rows(frame: DataFrame, rows: int, size: int, seed: int) -> pd.DataFrame:
    """A seeded sample of about ``size`` of the ``rows`` rows of ``frame``, as pandas."""
    fraction = min(1.0, 1.2 * size / rows)
    return frame.sample(fraction=fraction, seed=seed).limit(size).toPandas()
