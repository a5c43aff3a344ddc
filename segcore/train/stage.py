"""The train stage: prepare the features, fit k-means for every k tried, choose k, keep segment
ids stable against the champion, profile and name the segments, and record it all in MLflow (a
parent run, a child run per k) with a new registered model version.

The customer value model (:mod:`segcore.value`) is trained first, in a child run, and registered
as a model of its own. The feature table is read with Spark; the preparation is fitted and the
profile aggregated there for every engine, so only centres, aggregates and a seeded sample (for
the quality metrics, stability and the projection plot) reach the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from segcore.config import Config
from segcore.report.console import summary_table
from segcore.runtime.logs import step
from segcore.runtime.stopping import signals_held
from segcore.tracking.lifecycle import TrackedRun, delete_unfinished_versions, end_abandoned_runs, tracked_run
from segcore.tracking.lineage import FINGERPRINT_TAG, fingerprint, run_tags
from segcore.tracking.registry import (
    CHAMPION,
    RegisteredModel,
    find_version,
    load_alias,
    log_model,
    register,
    withdraw,
)
from segcore.tracking.segment_ids import reserve_segment_ids
from segcore.tracking.store import Tracking, open_tracking
from segcore.train.engines import engine_workers
from segcore.train.inputs import prepare_inputs, read_features, read_input_rows
from segcore.train.recording import draw_report, record_every_k, record_training, training_params
from segcore.train.segments import Segments, build_segments
from segcore.train.sweep import Selection, fit_every_k, k_values, select_k
from segcore.value.stage import VALUE_VERSION_TAG, ValueResult, train_value, value_tracking


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model: RegisteredModel
    k: int
    metrics: dict[str, float]
    profile: pd.DataFrame
    summary: pd.DataFrame
    k_selection: pd.DataFrame
    k_reason: str
    warnings: list[str]
    report_html: str
    value: ValueResult | None


def unchanged_version(spark: SparkSession, config: Config) -> RegisteredModel | None:
    """The registered version already trained on this very feature partition with this config."""
    _, path = read_features(spark, config)
    return find_version(open_tracking(config), FINGERPRINT_TAG, fingerprint(spark, config, path))


def train_segments(spark: SparkSession, config: Config) -> TrainResult:
    """Train on ``features/as_of=<as_of>`` and register a new model version, in an MLflow run that
    ends FINISHED, or FAILED or KILLED with the reason (:mod:`segcore.tracking.lifecycle`). Runs
    and versions that trains killed outright on this host left behind are ended and reported first."""
    tracking = open_tracking(config)
    workers = engine_workers(spark, config.kmeans)  # before any run: missing slots or scheduler stop it
    end_abandoned_runs(tracking)
    delete_unfinished_versions(tracking)
    with tracked_run(tracking, f"train-{config.as_of}") as run:
        return _train_in_run(spark, config, tracking, run, workers)


def _train_in_run(
    spark: SparkSession, config: Config, tracking: Tracking, run: TrackedRun, workers: int
) -> TrainResult:
    frame, path = read_features(spark, config)
    lineage = run_tags(spark, config, workers)
    version_tags = {FINGERPRINT_TAG: fingerprint(spark, config, path)}
    if not config.value.enabled:
        return _train_segments(spark, config, tracking, run, (frame, path), lineage, version_tags, None)
    value = train_value(spark, config, tracking, (frame, path), lineage, version_tags)
    try:
        return _train_segments(spark, config, tracking, run, (frame, path), lineage, version_tags, value)
    except BaseException:
        if not run.finished:  # a value version is paired with a segment version, or it goes
            with signals_held():
                withdraw(value_tracking(tracking, config), value.model)
        raise


def _train_segments(
    spark: SparkSession,
    config: Config,
    tracking: Tracking,
    run: TrackedRun,
    features: tuple[DataFrame, str],
    lineage: dict[str, str],
    version_tags: dict[str, str],
    value: ValueResult | None,
) -> TrainResult:
    """Everything after the value model: fit, choose, align, profile, record and register."""
    frame, path = features
    inputs = prepare_inputs(config, frame, path, value and value.fit.model)
    ks = k_values(config, inputs.rows)
    champion = load_alias(tracking, CHAMPION)
    selection = select_k(config, fit_every_k(config, ks, inputs, champion), inputs.points)
    segments = build_segments(config, inputs, selection, champion, partial(reserve_segment_ids, tracking))
    report = draw_report(config, inputs, selection, segments)
    with step("train", "record the run and register the model"):
        run.set_tags({**lineage, "mlflow.runName": f"train-{config.as_of}-k{selection.chosen}"})
        if value is not None:
            run.set_tags({VALUE_VERSION_TAG: value.model.version})
        record_every_k(run, config, selection)
        input_rows = {f"input_rows_{table}": n for table, n in read_input_rows(spark, path).items()}
        record_training(
            run,
            config,
            selection,
            segments,
            report,
            {**training_params(config, selection, inputs), **input_rows},
        )
        registered = register(tracking, log_model(segments.model), version_tags, run)
    return _result(run, registered, selection, segments, report.page, value)


def _result(
    run: TrackedRun,
    registered: RegisteredModel,
    selection: Selection,
    segments: Segments,
    page: str,
    value: ValueResult | None,
) -> TrainResult:
    return TrainResult(
        run.run_id,
        registered,
        selection.chosen,
        selection.metrics,
        segments.profile,
        summary_table(segments.profile, segments.names),
        selection.k_table,
        selection.reason,
        selection.warnings,
        page,
        value,
    )
