"""Per-segment statistics: size, share of customers and revenue, mean and median of each feature
in original units, z-scores in the prepared space (the features as the model sees them: signed
log of skewed features, clipped at the model's quantiles, so skew does not wash them out), and the
population's percentiles for naming.

A profile is one Spark pass: each chunk of a partition's rows is grouped by segment (assigned to
its nearest centre, by train's profile pass or by score's own pass, :mod:`segcore.score.scoring_pass`)
and summarised per segment and feature in one Arrow function: counts, sums, and a
:class:`~segcore.model.summaries.Summary` for the medians and percentiles. The chunks' summaries
merge per segment and feature in Spark, and only the merged ones reach the driver."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from segcore.kmeans.kernels import nearest
from segcore.model.preparation import Preparation, signed_log
from segcore.model.summaries import Summary

NAMING_FEATURES = ("recency_days", "frequency", "monetary_total", "tenure_days")
PERCENTILES = [p / 100 for p in range(1, 100)]
# Rows summarised at once in a Python worker (43 features: about 70 MB of float64).
CHUNK_ROWS = 200_000

SUMMARIES = pa.schema(
    [
        ("label", pa.int64()),
        ("feature", pa.string()),
        ("chunk", pa.int64()),
        ("customers", pa.int64()),
        ("total", pa.float64()),
        ("prepared", pa.float64()),
        ("squares", pa.float64()),
        ("values", pa.list_(pa.float64())),
        ("weights", pa.list_(pa.int64())),
    ]
)
SUMMARY_SCHEMA = from_arrow_schema(SUMMARIES)  # the same, for Spark


def feature_columns(frame: DataFrame) -> list[str]:
    """Every feature of a feature table (all its columns but the customer id)."""
    return [c for c in frame.columns if c != "customer_id"]


def profile_table(grouped: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """One row per segment of ``grouped``: ``label``, ``customers`` and per feature ``mean_<f>``,
    ``median_<f>``, ``prepared_<f>`` (the mean as the model sees it) and ``squares_<f>`` (the sum
    of its squares)."""
    grouped = grouped.sort_values("label", ignore_index=True)
    sizes = grouped["customers"].astype(float)
    total = sizes.sum()
    columns = {
        "segment_id": grouped["label"].astype(int),
        "customers": grouped["customers"],
        "share": sizes / total,
    }
    if "monetary_total" in features:
        revenue = grouped["mean_monetary_total"] * sizes
        columns["revenue_share"] = revenue / max(revenue.sum(), 1e-12)
    for f in features:
        mean = (grouped[f"prepared_{f}"] * sizes).sum() / total
        spread = np.sqrt(max(grouped[f"squares_{f}"].sum() / total - mean**2, 0.0))
        columns[f"mean_{f}"] = grouped[f"mean_{f}"]
        columns[f"median_{f}"] = grouped[f"median_{f}"].astype(float)
        columns[f"z_{f}"] = (grouped[f"prepared_{f}"] - mean) / spread if spread > 1e-12 else 0.0
    return pd.DataFrame(columns)


def profile_with_population(
    frame: DataFrame,
    features: list[str],
    preparation: Preparation,
    log_features: list[str],
    centres: np.ndarray,
    segment_ids: Sequence[int],
) -> tuple[pd.DataFrame, Population]:
    """:func:`profile_table` of every row of ``frame`` assigned to its nearest of ``centres``
    (ids ``segment_ids``), and the :class:`Population` of all customers for the naming features
    among ``features``, in one Spark pass (module docstring)."""
    summariser = Summariser.of(features, preparation, log_features)
    rows = preparation.with_derived_spark(frame).select(*doubles(summariser.columns))
    nearest_centre = _NearestCentre(summariser, np.asarray(centres), list(segment_ids))
    summaries = _merged(rows.mapInArrow(nearest_centre, SUMMARY_SCHEMA))
    return profile_table(_grouped(summaries, features), features), _population(summaries, features)


def profile_of_chunks(chunks: DataFrame, features: list[str]) -> pd.DataFrame:
    """:func:`profile_table` from the rows of :data:`SUMMARY_SCHEMA` that a :class:`Summariser`
    gave for every chunk of a pass."""
    return profile_table(_grouped(_merged(chunks), features), features)


def doubles(columns: list[str]) -> list[Column]:
    """``columns`` as doubles (nulls as NaN in Arrow), whatever their numeric type."""
    return [F.col(c).cast("double").alias(c) for c in columns]


def _merged(chunks: DataFrame) -> dict[tuple[int, str], _Merged]:
    """Every segment's and feature's summary, merged from the ``chunks`` rows of
    :data:`SUMMARY_SCHEMA`."""
    merged = chunks.groupBy("label", "feature").applyInArrow(_merge_chunks, SUMMARY_SCHEMA).toPandas()
    return {(int(row.label), row.feature): _Merged.of(row) for row in merged.itertuples(index=False)}


def chunks_of(batches: Iterator[pa.RecordBatch], rows: int = CHUNK_ROWS) -> Iterator[tuple[pa.Table, int]]:
    """A partition's Arrow batches as tables of about ``rows`` rows, each with a chunk id unique in
    the pass (the partition's index, then the chunk's), by which merges add the chunks in order."""
    chunk, count, index = [], 0, 0
    partition = TaskContext.get().partitionId()
    for batch in batches:
        chunk.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.Table.from_batches(chunk), (partition << 32) + index
            chunk, count, index = [], 0, index + 1
    if count:
        yield pa.Table.from_batches(chunk), (partition << 32) + index


@dataclass(frozen=True)
class _Merged:
    """One segment's figures of one feature."""

    customers: int
    total: float  # of the non-null values
    prepared: float  # the sum of the values as the model sees them
    squares: float  # of those
    summary: Summary

    @classmethod
    def of(cls, row: tuple) -> _Merged:
        """From a row of :data:`SUMMARIES` (a named tuple)."""
        summary = Summary(np.asarray(row.values, dtype=np.float64), np.asarray(row.weights, dtype=np.int64))
        return cls(row.customers, row.total, row.prepared, row.squares, summary)


def _population(summaries: dict[tuple[int, str], _Merged], features: list[str]) -> Population:
    """The naming features' percentiles over every segment's customers."""
    naming = [f for f in NAMING_FEATURES if f in features]
    everyone = {
        f: Summary.merged([m.summary for (_, name), m in summaries.items() if name == f]) for f in naming
    }
    return Population({f: summary.quantiles(PERCENTILES).tolist() for f, summary in everyone.items()})


def _grouped(summaries: dict[tuple[int, str], _Merged], features: list[str]) -> pd.DataFrame:
    """:func:`profile_table`'s input, one row per segment, from the merged summaries."""
    labels = sorted({label for label, _ in summaries})
    columns: dict[str, list] = {
        "label": labels,
        "customers": [summaries[(label, features[0])].customers for label in labels],
    }
    for f in features:
        merged = [summaries[(label, f)] for label in labels]
        columns[f"mean_{f}"] = [m.total / m.summary.rows if m.summary.rows else np.nan for m in merged]
        columns[f"median_{f}"] = [m.summary.quantiles([0.5])[0] for m in merged]
        columns[f"prepared_{f}"] = [m.prepared / m.summary.rows if m.summary.rows else np.nan for m in merged]
        columns[f"squares_{f}"] = [m.squares for m in merged]
    return pd.DataFrame(columns)


@dataclass(frozen=True)
class Summariser:
    """Summarises a chunk of rows whose segments are known: one summary row per segment and
    feature."""

    features: list[str]
    columns: list[str]  # the model's features, then the other profiled ones
    preparation: Preparation
    log_features: list[str]

    @classmethod
    def of(cls, features: list[str], preparation: Preparation, log_features: list[str]) -> Summariser:
        columns = list(dict.fromkeys([*preparation.features, *features]))
        return cls(features, columns, preparation, log_features)

    def arrays(self, table: pa.Table) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The chunk's :attr:`columns` as arrays, and its rows as the model sees them."""
        columns = {c: table.column(c).to_numpy() for c in self.columns}
        model = self.preparation.transform_array(
            np.column_stack([columns[f] for f in self.preparation.features])
        )
        return columns, model

    def summarise(
        self, columns: dict[str, np.ndarray], model: np.ndarray, ids: np.ndarray, chunk: int
    ) -> pa.RecordBatch:
        """The summary rows of a chunk: its ``columns``, its rows as the model sees them
        (``model``) and their segment ``ids``."""
        order = np.argsort(ids, kind="stable")  # each segment's rows side by side
        segment_ids, starts = np.unique(ids[order], return_index=True)
        bounds = [*starts.tolist(), len(ids)]
        rows = []
        for f in self.features:
            values = columns[f][order]
            prepared = self._prepared(f, values, model, order)
            for segment, start, stop in zip(segment_ids.tolist(), bounds[:-1], bounds[1:], strict=True):
                rows.append(_summary_row(segment, f, chunk, values[start:stop], prepared[start:stop]))
        return pa.RecordBatch.from_pylist(rows, schema=SUMMARIES)

    def _prepared(self, feature: str, values: np.ndarray, model: np.ndarray, order: np.ndarray) -> np.ndarray:
        """``values`` of ``feature`` (rows in ``order``) as the model sees them."""
        if feature in self.preparation.features:
            return model[order, self.preparation.features.index(feature)]
        return signed_log(values) if feature in self.log_features else values


@dataclass(frozen=True)
class _NearestCentre:
    """The Arrow function of train's profile: each chunk's rows belong to the segment of their
    nearest centre in the prepared space."""

    summariser: Summariser
    centres: np.ndarray
    segment_ids: list[int]

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for table, chunk in chunks_of(batches):
            columns, model = self.summariser.arrays(table)
            labels, _ = nearest(model, self.centres)
            ids = np.asarray(self.segment_ids, dtype=np.int64)[labels]
            yield self.summariser.summarise(columns, model, ids, chunk)


def _summary_row(label: int, feature: str, chunk: int, values: np.ndarray, prepared: np.ndarray) -> dict:
    """The summary row of one segment's ``values`` of ``feature`` in a chunk (``prepared``: the
    same as the model sees them)."""
    prepared = prepared[~np.isnan(prepared)]
    summary = Summary.of(values)
    return {
        "label": label,
        "feature": feature,
        "chunk": chunk,
        "customers": len(values),
        "total": float(np.nansum(values)),
        "prepared": float(prepared.sum()),
        "squares": float(prepared @ prepared),
        "values": summary.values,
        "weights": summary.weights,
    }


def _merge_chunks(table: pa.Table) -> pa.Table:
    """One summary row of a segment and feature from its chunks' rows (sums in chunk order, so
    that every run adds them alike)."""
    chunks = table.sort_by("chunk").to_pydict()
    parts = zip(chunks["values"], chunks["weights"], strict=True)
    summary = Summary.merged([Summary(np.asarray(v), np.asarray(w, dtype=np.int64)) for v, w in parts])
    merged = {
        "label": chunks["label"][:1],
        "feature": chunks["feature"][:1],
        "chunk": [0],
        **{name: [sum(chunks[name])] for name in ("customers", "total", "prepared", "squares")},
        "values": [summary.values],
        "weights": [summary.weights],
    }
    return pa.Table.from_pydict(merged, schema=SUMMARIES)


@dataclass(frozen=True)
class Population:
    """Percentiles (1st to 99th) of the naming features over all customers."""

    percentiles: dict[str, list[float]]

    def rank(self, feature: str, value: float) -> float:
        """Share of customers below ``value`` (ties count half); 0.5 for a feature not profiled."""
        if feature not in self.percentiles or pd.isna(value):
            return 0.5
        grid = np.asarray(self.percentiles[feature])
        return float((grid < value).mean() + (grid == value).mean() / 2)
