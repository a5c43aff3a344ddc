"""Per-segment statistics: size, share of customers and revenue, mean and median of each feature
in original units, z-scores in the prepared space (the features as the model sees them: signed
log of skewed features, clipped at the model's quantiles, so skew does not wash them out), and the
population's percentiles for naming.

Train profiles its segments in one Spark job (:func:`profile_with_population`): each chunk of
rows is assigned to its nearest centre and summarised per segment and feature in the same Arrow
pass (counts, sums, and a :class:`~segcore.model.summaries.Summary` for the medians and
percentiles); the chunks' summaries merge per segment and feature in Spark, and only the merged
ones reach the driver. Score folds its profile into its one aggregation with the KPIs
(:func:`segment_aggregates`, medians from ``percentile_approx``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segcore.kmeans.kernels import nearest
from segcore.model.preparation import Preparation, signed_log, signed_log_column
from segcore.model.summaries import Summary

# percentile_approx's accuracy in score: a median's rank is within 1/1,000 of the segment's
# customers of the exact one, as the summaries' in train.
MEDIAN_ACCURACY = 1_000
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
        ("count", pa.int64()),
        ("total", pa.float64()),
        ("prepared", pa.float64()),
        ("squares", pa.float64()),
        ("values", pa.list_(pa.float64())),
        ("weights", pa.list_(pa.int64())),
    ]
)
SUMMARY_DDL = (
    "label long, feature string, chunk long, customers long, count long, total double, "
    "prepared double, squares double, values array<double>, weights array<long>"
)


def feature_columns(frame: DataFrame) -> list[str]:
    """Every feature of a feature table (all its columns but the customer id)."""
    return [c for c in frame.columns if c != "customer_id"]


def _prepared(features: list[str], preparation: Preparation, log_features: list[str]) -> dict[str, Column]:
    """Each feature as the model sees it; a feature outside the model is signed-logged when it is
    one of ``log_features``."""
    model = preparation.spark_columns()
    return {
        f: model.get(f, signed_log_column(f) if f in log_features else F.col(f).cast("double"))
        for f in features
    }


def segment_aggregates(
    features: list[str], preparation: Preparation, log_features: list[str]
) -> list[Column]:
    """Per segment (in a groupBy by segment): size, and for each feature its mean, approximate
    median and prepared mean and sum of squares, for :func:`profile_table`."""
    prepared = _prepared(features, preparation, log_features)
    aggregates = [F.count(F.lit(1)).alias("customers")]
    for f in features:
        aggregates += [
            F.avg(f).alias(f"mean_{f}"),
            F.percentile_approx(F.col(f).cast("double"), 0.5, MEDIAN_ACCURACY).alias(f"median_{f}"),
            F.avg(prepared[f]).alias(f"prepared_{f}"),
            F.sum(prepared[f] * prepared[f]).alias(f"squares_{f}"),
        ]
    return aggregates


def profile_table(grouped: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """One row per segment of ``grouped`` (a ``label`` column and :func:`segment_aggregates`)."""
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
    among ``features``, from one Spark job of summaries (module docstring)."""
    columns = list(dict.fromkeys([*preparation.features, *features]))
    summarise = _Summariser(features, columns, preparation, log_features, centres, list(segment_ids))
    rows = preparation.with_derived_spark(frame).select(*columns)
    merged = (
        rows.mapInArrow(summarise, SUMMARY_DDL)
        .groupBy("label", "feature")
        .applyInArrow(_merge_chunks, SUMMARY_DDL)
        .toPandas()
    )
    summaries = {
        (int(row.label), row.feature): Summary(np.asarray(row["values"]), np.asarray(row.weights))
        for _, row in merged.iterrows()
    }
    return profile_table(_grouped(merged, summaries, features), features), _population(summaries, features)


def _population(summaries: dict[tuple[int, str], Summary], features: list[str]) -> Population:
    """The naming features' percentiles over every segment's customers."""
    naming = [f for f in NAMING_FEATURES if f in features]
    everyone = {f: Summary.merged([s for (_, name), s in summaries.items() if name == f]) for f in naming}
    return Population({f: summary.quantiles(PERCENTILES).tolist() for f, summary in everyone.items()})


def _grouped(
    merged: pd.DataFrame, summaries: dict[tuple[int, str], Summary], features: list[str]
) -> pd.DataFrame:
    """:func:`segment_aggregates`' columns, one row per segment, from the merged summaries."""
    table = merged.set_index(["label", "feature"])
    labels = sorted(merged["label"].unique())
    sizes = [table.loc[(label, features[0]), "customers"] for label in labels]
    columns: dict[str, list] = {"label": labels, "customers": sizes}
    for f in features:
        rows = table.xs(f, level="feature").loc[labels]
        count = rows["count"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            columns[f"mean_{f}"] = rows["total"].to_numpy() / count
            columns[f"prepared_{f}"] = rows["prepared"].to_numpy() / count
        columns[f"median_{f}"] = [summaries[(s, f)].quantiles([0.5])[0] for s in labels]
        columns[f"squares_{f}"] = rows["squares"].to_numpy()
    return pd.DataFrame(columns)


@dataclass(frozen=True)
class _Summariser:
    """The Arrow function of :func:`profile_with_population`: one summary row per segment and
    feature for each chunk of a partition's rows."""

    features: list[str]
    columns: list[str]  # the model's features, then the other profiled ones
    preparation: Preparation
    log_features: list[str]
    centres: np.ndarray
    segment_ids: list[int]

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        chunk, rows, index = [], 0, 0
        partition = TaskContext.get().partitionId()
        for batch in batches:
            chunk.append(batch)
            rows += batch.num_rows
            if rows >= CHUNK_ROWS:
                yield self._summaries(chunk, (partition << 32) + index)
                chunk, rows, index = [], 0, index + 1
        if rows:
            yield self._summaries(chunk, (partition << 32) + index)

    def _summaries(self, batches: list[pa.RecordBatch], chunk: int) -> pa.RecordBatch:
        table = pa.Table.from_batches(batches)
        columns = {c: table.column(c).to_numpy().astype(np.float64, copy=False) for c in self.columns}
        model = self.preparation.transform_array(
            np.column_stack([columns[f] for f in self.preparation.features])
        )
        labels, _ = nearest(model, self.centres)
        order = np.argsort(labels, kind="stable")  # each segment's rows side by side
        bounds = np.searchsorted(labels[order], np.arange(len(self.centres) + 1))
        rows = []
        for f in self.features:
            values = columns[f][order]
            prepared = self._prepared(f, values, model, order)
            for label, start, stop in zip(self.segment_ids, bounds[:-1], bounds[1:], strict=True):
                if start < stop:
                    rows.append(_summary_row(label, f, chunk, values[start:stop], prepared[start:stop]))
        return pa.RecordBatch.from_pylist(rows, schema=SUMMARIES)

    def _prepared(self, feature: str, values: np.ndarray, model: np.ndarray, order: np.ndarray) -> np.ndarray:
        """``values`` of ``feature`` (rows in ``order``) as the model sees them (:func:`_prepared`)."""
        if feature in self.preparation.features:
            return model[order, self.preparation.features.index(feature)]
        return signed_log(values) if feature in self.log_features else values


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
        "count": summary.rows,
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
        **{name: [sum(chunks[name])] for name in ("customers", "count", "total", "prepared", "squares")},
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
