"""Score's one pass over the feature table: each chunk of rows is assigned to its nearest centre,
given its value scores and summarised per segment for the profile, in one Arrow function.

The pass yields two kinds of rows in one frame: a row per customer (``customer_id``, ``_segment``,
``_value``, the carried columns; ``_summary`` null) and, per chunk, the profile's summary rows
(:data:`segcore.model.profiles.SUMMARIES` in ``_summary``; the rest null). The feature columns
thus cross into Python once and are not kept, where a separate profile pass would read them all
again."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from segcore.kmeans.kernels import nearest
from segcore.model.profiles import SUMMARY_SCHEMA, Summariser, chunks_of, doubles
from segcore.model.segment_model import OUTPUT_COLUMNS, SegmentModel
from segcore.value.inputs import INPUT_COLUMNS
from segcore.value.model import ValueModel
from segcore.value.scores import SCORE_COLUMNS
from segcore.value.scoring import scores_of

SEGMENT, VALUE, SUMMARY = "_segment", "_value", "_summary"  # the pass's struct columns


def scoring_pass(
    frame: DataFrame,
    model: SegmentModel,
    value: ValueModel | None,
    summariser: Summariser,
    carried: Sequence[str] = (),
) -> DataFrame:
    """The pass over ``frame`` (module docstring); ``carried`` feature columns come out beside each
    customer's scores, as doubles."""
    needed = [*summariser.columns, *(INPUT_COLUMNS if value else ()), *carried]
    rows = frame.select("customer_id", *doubles(list(dict.fromkeys(needed))))
    fields = [
        T.StructField("customer_id", frame.schema["customer_id"].dataType),  # null in summary rows
        T.StructField(SEGMENT, _struct(OUTPUT_COLUMNS)),
        *([T.StructField(VALUE, _struct(SCORE_COLUMNS))] if value else []),
        *[T.StructField(c, T.DoubleType()) for c in carried],
        T.StructField(SUMMARY, SUMMARY_SCHEMA),
    ]
    schema = T.StructType(fields)
    function = _ScoringPass(model, value, summariser, list(carried), to_arrow_schema(schema))
    return rows.mapInArrow(function, schema)


def customer_rows(scored: DataFrame) -> DataFrame:
    """The pass's rows of customers."""
    return scored.where(F.col(SUMMARY).isNull()).drop(SUMMARY)


def summary_rows(scored: DataFrame) -> DataFrame:
    """The pass's summary rows, as :data:`segcore.model.profiles.SUMMARY_SCHEMA`."""
    return scored.where(F.col(SUMMARY).isNotNull()).select(f"{SUMMARY}.*")


def _struct(columns: dict[str, str]) -> T.StructType:
    return T.StructType.fromDDL(", ".join(f"{name} {kind}" for name, kind in columns.items()))


@dataclass(frozen=True)
class _ScoringPass:
    """The pass's Arrow function, yielding batches of ``schema``."""

    model: SegmentModel
    value: ValueModel | None
    summariser: Summariser
    carried: list[str]
    schema: pa.Schema

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for table, chunk in chunks_of(batches):
            columns, prepared = self.summariser.arrays(table)
            labels, squared = nearest(prepared, self.model.centres)
            ids = np.asarray(self.model.segment_ids, dtype=np.int64)[labels]
            yield self._customers(table, labels, ids, np.sqrt(squared))
            yield self._summaries(self.summariser.summarise(columns, prepared, ids, chunk))

    def _customers(
        self, table: pa.Table, labels: np.ndarray, ids: np.ndarray, distances: np.ndarray
    ) -> pa.RecordBatch:
        names = pc.take(pa.array(self.model.segment_names, pa.string()), pa.array(labels))
        arrays = {
            "customer_id": table.column("customer_id").combine_chunks().cast(self.schema.field(0).type),
            SEGMENT: pa.StructArray.from_arrays(
                [pa.array(ids), names, pa.array(distances)], list(OUTPUT_COLUMNS)
            ),
        }
        if self.value is not None:
            inputs = [table.column(c).to_numpy() for c in INPUT_COLUMNS]
            scores = pa.Table.from_pandas(scores_of(self.value, inputs), preserve_index=False)
            arrays[VALUE] = pa.StructArray.from_arrays(
                [column.combine_chunks() for column in scores.columns], list(SCORE_COLUMNS)
            )
        arrays |= {c: table.column(c).combine_chunks() for c in self.carried}
        arrays[SUMMARY] = pa.nulls(table.num_rows, self.schema.field(SUMMARY).type)
        return pa.RecordBatch.from_arrays(list(arrays.values()), schema=self.schema)

    def _summaries(self, summaries: pa.RecordBatch) -> pa.RecordBatch:
        """``summaries`` in the ``_summary`` column of rows otherwise null."""
        arrays = [pa.nulls(summaries.num_rows, field.type) for field in self.schema]
        arrays[-1] = pa.StructArray.from_arrays(summaries.columns, fields=list(summaries.schema))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)
