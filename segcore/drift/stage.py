"""The drift stage: compare the scorings of two as_of dates, write ``drift/from=…_to=…/``, log an
MLflow run and check the thresholds in ``drift.*``.

The partition's Parquet data is the migration matrix; beside it in the committed version folder
(files Spark readers skip)
``_segments.csv`` (share and revenue-share change per segment), ``_features.csv`` (PSI per
feature), ``_centres.csv`` (centre change, only when the scorings used different model versions)
and ``_summary.json`` (the headline figures, versions and alerts).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from segcore.config import Config
from segcore.drift.figures import (
    DEPARTED,
    IDS_NOTE,
    NEW,
    centre_change,
    feature_psi,
    migration_matrix,
    retention_shift,
    segment_psi,
    segment_shift,
)
from segcore.errors import ConfigError, LakeError, ModelError
from segcore.runtime.logs import log, step
from segcore.storage.partitions import read_partition, write_partition
from segcore.tracking.lifecycle import tracked_run
from segcore.tracking.registry import load_version
from segcore.tracking.store import open_tracking

MATRIX_SCHEMA = T.StructType(
    [
        T.StructField("from_segment", T.LongType()),
        T.StructField("to_segment", T.LongType()),
        T.StructField("customers", T.LongType()),
        T.StructField("share", T.DoubleType()),
        T.StructField("from_name", T.StringType()),
        T.StructField("to_name", T.StringType()),
    ]
)
_NUMERIC = (T.NumericType, T.BooleanType)


@dataclass(frozen=True)
class DriftResult:
    path: str
    run_id: str
    start: dt.date
    end: dt.date
    versions: tuple[str, str]
    matrix: pd.DataFrame
    segments: pd.DataFrame
    features: pd.DataFrame
    centres: pd.DataFrame | None
    segment_psi: float
    alerts: list[str]


def drift_partition(config: Config, start: dt.date, end: dt.date) -> str:
    return f"{config.path(config.drift.output).rstrip('/')}/from={start.isoformat()}_to={end.isoformat()}"


def _read(spark: SparkSession, config: Config, day: dt.date) -> tuple[DataFrame, DataFrame]:
    """The scoring and the feature table of ``day``."""
    scoring = read_partition(
        spark,
        config.partition(config.score.output, day),
        "scoring",
        f"run `segcore features --set as_of={day}` then `segcore score --set as_of={day}` "
        "(with the same --config) first",
    )
    features = read_partition(
        spark,
        config.partition(config.features.output, day),
        "feature table",
        f"run `segcore features --set as_of={day}` first",
    )
    return scoring, features


def _kpis(spark: SparkSession, config: Config, day: dt.date) -> pd.DataFrame | None:
    """The KPIs per segment the scoring of ``day`` wrote, None for a scoring made before KPIs."""
    try:
        return read_partition(spark, config.partition(config.score.kpis_output, day), "kpis", "").toPandas()
    except LakeError:
        return None


def _with_retention(config: Config, segments: pd.DataFrame, kpis: list[pd.DataFrame | None]) -> pd.DataFrame:
    """``segments`` with retention_from, retention_to and retention_shift (NaN without KPIs)."""
    if any(table is None or "prior_buyers" not in table for table in kpis):
        log.info("drift: a scoring has no KPIs (scored before segcore wrote them): retention not compared")
        return segments.assign(retention_from=np.nan, retention_to=np.nan, retention_shift=np.nan)
    retention = retention_shift(*kpis, config.drift.min_retention_buyers)
    return segments.merge(retention, on="segment_id", how="left")


def _feature_names(config: Config, before: DataFrame, after: DataFrame, paths: tuple[str, str]) -> list[str]:
    """``drift.features``, or every numeric feature column of both tables."""
    if config.drift.features is None:
        numeric = {f.name for f in after.schema.fields if isinstance(f.dataType, _NUMERIC)}
        return [
            f.name
            for f in before.schema.fields
            if f.name != "customer_id" and f.name in numeric and isinstance(f.dataType, _NUMERIC)
        ]
    for frame, path in zip((before, after), paths, strict=True):
        missing = [f for f in config.drift.features if f not in frame.columns]
        if missing:
            raise LakeError(
                f"feature table {path} lacks column(s) {missing} named in drift.features: "
                "remove them from drift.features or rebuild the features with those groups"
            )
    return list(config.drift.features)


def _version(scoring: DataFrame) -> str:
    """The model version of a scoring ("1"; "1,2" when mixed; "unknown" without the column)."""
    if "model_version" not in scoring.columns:
        return "unknown"
    versions = sorted(str(r[0]) for r in scoring.select("model_version").distinct().limit(3).collect())
    return ",".join(versions) or "unknown"


def _centres(config: Config, versions: tuple[str, str]) -> pd.DataFrame | None:
    """Centre change between the two scorings' model versions (None when they are equal, or not
    comparable: unknown or several versions in one scoring, a version gone from the registry, or
    different features)."""
    if versions[0] == versions[1] or any("," in v or v == "unknown" for v in versions):
        return None
    tracking = open_tracking(config)
    try:
        before, after = (load_version(tracking, v) for v in versions)
    except ModelError as exc:
        log.warning("drift: cannot load versions %s and %s (%s): no centre change", *versions, exc)
        return None
    if not set(after.features) <= set(before.features):
        log.info("drift: versions %s and %s use different features: no centre change", *versions)
        return None
    return centre_change(before, after)


def _alerts(config: Config, segments: pd.DataFrame, features: pd.DataFrame, shares_psi: float) -> list[str]:
    """One line per threshold crossed."""
    limits, alerts = config.drift, []
    if limits.max_psi is not None:
        for row in features[features["psi"] > limits.max_psi].itertuples():
            alerts.append(f"feature '{row.feature}' PSI {row.psi:.3f} > drift.max_psi {limits.max_psi:g}")
    if limits.max_segment_psi is not None and shares_psi > limits.max_segment_psi:
        alerts.append(
            f"segment shares PSI {shares_psi:.3f} > drift.max_segment_psi {limits.max_segment_psi:g}"
        )
    if limits.max_share_shift is not None:
        moved = segments[segments["share_shift"].abs() > limits.max_share_shift]
        for row in moved.itertuples():
            alerts.append(
                f"segment {row.segment_id} ({row.segment_name}) share {100 * row.share_shift:+.1f} pp, "
                f"beyond drift.max_share_shift {100 * limits.max_share_shift:g} pp"
            )
    if limits.max_retention_drop is not None:
        for row in segments[segments["retention_shift"] < -limits.max_retention_drop].itertuples():
            alerts.append(
                f"segment {row.segment_id} ({row.segment_name}) retention {100 * row.retention_shift:+.1f} "
                f"pp ({row.retention_from:.1%} -> {row.retention_to:.1%}), beyond drift.max_retention_drop "
                f"{100 * limits.max_retention_drop:g} pp"
            )
    if limits.max_risk_shift is not None:
        for row in segments[segments["risk_shift"].abs() > limits.max_risk_shift].itertuples():
            alerts.append(
                f"segment {row.segment_id} ({row.segment_name}) high-risk share {100 * row.risk_shift:+.1f} "
                f"pp, beyond drift.max_risk_shift {100 * limits.max_risk_shift:g} pp"
            )
    return alerts


def _metrics(result: DriftResult) -> dict[str, float]:
    matrix, segments = result.matrix, result.segments
    metrics = {f"psi_{row.feature}": row.psi for row in result.features.itertuples()}
    for row in segments.itertuples():
        metrics[f"share_shift_segment_{row.segment_id}"] = row.share_shift
        if pd.notna(row.revenue_share_shift):
            metrics[f"revenue_share_shift_segment_{row.segment_id}"] = row.revenue_share_shift
        if pd.notna(row.risk_shift):
            metrics[f"risk_shift_segment_{row.segment_id}"] = row.risk_shift
        if pd.notna(row.retention_shift):
            metrics[f"retention_shift_segment_{row.segment_id}"] = row.retention_shift
    stayed = matrix[(matrix.from_segment != NEW) & (matrix.to_segment != DEPARTED)]
    metrics.update(
        max_psi=float(result.features["psi"].max()) if len(result.features) else 0.0,
        max_share_shift=float(segments["share_shift"].abs().max()),
        segment_psi=result.segment_psi,
        new_customers=float(matrix.loc[matrix.from_segment == NEW, "customers"].sum()),
        departed_customers=float(matrix.loc[matrix.to_segment == DEPARTED, "customers"].sum()),
        moved_share=float(
            stayed.loc[stayed.from_segment != stayed.to_segment, "customers"].sum()
            / max(stayed["customers"].sum(), 1)
        ),
    )
    if result.centres is not None:
        metrics["max_centre_distance"] = float(result.centres["centre_distance"].max())
    return metrics


def _record(config: Config, result: DriftResult) -> str:
    """The MLflow run of this comparison (ending FAILED or KILLED with the reason if it is cut
    short): metrics, tables as CSV, an ``alert`` tag when any."""
    limits = config.drift
    with tracked_run(open_tracking(config), f"drift-{result.start}-to-{result.end}") as run:
        run.set_tags(
            {
                "stage": "drift",
                "from_as_of": result.start.isoformat(),
                "to_as_of": result.end.isoformat(),
                "model_version_from": result.versions[0],
                "model_version_to": result.versions[1],
            }
        )
        run.log_params(
            {
                "from_as_of": result.start.isoformat(),
                "to_as_of": result.end.isoformat(),
                "max_psi": limits.max_psi,
                "max_segment_psi": limits.max_segment_psi,
                "max_share_shift": limits.max_share_shift,
                "max_risk_shift": limits.max_risk_shift,
                "max_retention_drop": limits.max_retention_drop,
                "psi_bins": limits.psi_bins,
                "output": result.path,
            }
        )
        run.log_metrics(_metrics(result))
        run.log_table(result.matrix, "drift/migration.csv")
        run.log_table(result.segments, "drift/segments.csv")
        run.log_table(result.features, "drift/features_psi.csv")
        if result.centres is not None:
            run.log_table(result.centres, "drift/centres.csv")
            run.set_tags({"ids": IDS_NOTE})
        if result.alerts:
            run.set_tags({"alert": "; ".join(result.alerts)})
    return run.run_id


def check_dates(start: dt.date, end: dt.date) -> None:
    if start >= end:
        raise ConfigError(f"--from {start} must be an earlier date than --to {end}")


def compare_scorings(spark: SparkSession, config: Config, start: dt.date, end: dt.date) -> DriftResult:
    """Compare the scorings of ``start`` and ``end``: write the drift partition (first), then
    record the MLflow run. Thresholds crossed are in ``alerts`` (the caller decides the exit)."""
    check_dates(start, end)
    result = _compare(spark, config, start, end)
    with step("drift", "write the drift partition"):
        frame = spark.createDataFrame(result.matrix, MATRIX_SCHEMA)
        write_partition(frame.coalesce(1), result.path, _sidecar(result))
    with step("drift", "record the MLflow run"):
        return replace(result, run_id=_record(config, result))


def _compare(spark: SparkSession, config: Config, start: dt.date, end: dt.date) -> DriftResult:
    """Every figure of the comparison, with the thresholds crossed (no run id yet)."""
    before, features_before = _read(spark, config, start)
    after, features_after = _read(spark, config, end)
    paths = (config.partition(config.features.output, start), config.partition(config.features.output, end))
    names = _feature_names(config, features_before, features_after, paths)
    with step("drift", "migration matrix and segment shares") as figures:
        matrix = migration_matrix(before, after)
        segments = segment_shift(
            before, after, features_before, features_after, config.value.high_risk_band()
        )
        segments = _with_retention(config, segments, [_kpis(spark, config, day) for day in (start, end)])
        shares_psi = segment_psi(segments)
        versions = (_version(before), _version(after))
        figures.update(pairs=len(matrix), versions="->".join(versions))
    with step("drift", "feature PSI") as figures:
        features = feature_psi(features_before, features_after, names, config.drift.psi_bins)
        figures["features"] = len(features)
    centres = _centres(config, versions)
    if centres is not None:
        log.info("drift: model versions %s and %s: %s", *versions, IDS_NOTE)
    alerts = _alerts(config, segments, features, shares_psi)
    target = drift_partition(config, start, end)
    return DriftResult(
        target, "", start, end, versions, matrix, segments, features, centres, shares_psi, alerts
    )


def _sidecar(result: DriftResult) -> dict[str, str]:
    """The files written beside the migration matrix: tables as CSV and the headline figures."""
    features, segments = result.features, result.segments
    summary = {
        "from": result.start.isoformat(),
        "to": result.end.isoformat(),
        "model_versions": list(result.versions),
        "segment_psi": result.segment_psi,
        "max_psi": float(features["psi"].max()) if len(features) else 0.0,
        "max_share_shift": float(segments["share_shift"].abs().max()),
        "alerts": result.alerts,
    }
    sidecar = {
        "_segments.csv": segments.to_csv(index=False),
        "_features.csv": features.to_csv(index=False),
        "_summary.json": json.dumps(summary, indent=1),
    }
    if result.centres is not None:
        sidecar["_centres.csv"] = result.centres.to_csv(index=False)
    return sidecar
