"""The score stage (Spark): assign every customer of the feature table to a segment of a
registered model (its state, read through its pyfunc), add the churn risk and value scores of the
value model trained beside it, and profile the segments, in one pass over the features
(:mod:`segcore.score.scoring_pass`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from segcore.config import Config
from segcore.errors import ModelError
from segcore.model.preparation import bad_value_counts
from segcore.model.profiles import Summariser, feature_columns, profile_of_chunks
from segcore.model.segment_model import SegmentModel
from segcore.runtime.logs import log, step
from segcore.score.kpis import KPI_INPUTS, has_kpi_inputs, kpi_aggregates, kpis_of_sums
from segcore.score.scoring_pass import SEGMENT, VALUE, customer_rows, scoring_pass, summary_rows
from segcore.storage.partitions import commit_partitions, read_partition
from segcore.tracking.registry import (
    existing_version,
    load_segment_model,
    load_value_model,
    resolve_version,
    version_run_id,
)
from segcore.tracking.store import Tracking, open_tracking
from segcore.value.inputs import INPUT_COLUMNS
from segcore.value.model import ValueModel
from segcore.value.profiles import VALUE_PROFILE_COLUMNS, value_aggregates
from segcore.value.scores import SCORE_COLUMNS
from segcore.value.stage import VALUE_VERSION_TAG, value_tracking


@dataclass(frozen=True)
class ScoreResult:
    path: str
    model_uri: str
    model_version: str
    customers: int
    value_version: str | None
    profile: pd.DataFrame
    kpis: pd.DataFrame | None  # None for a feature table built before the KPI columns


@dataclass(frozen=True)
class _Value:
    version: str
    model: ValueModel


def score_segments(spark: SparkSession, config: Config, model_version: str | None = None) -> ScoreResult:
    """Write ``segments/as_of=<as_of>``: customer_id, segment_id, segment_name, distance,
    model_version and (``value.enabled``) the value scores and value_model_version — one row per
    customer of the feature table; ``profiles/as_of=<as_of>`` and ``kpis/as_of=<as_of>``
    (:mod:`segcore.score.kpis`), committed with it (readers see all old or all new)."""
    with step("score", "load the model") as figures:
        tracking = open_tracking(config)
        version = resolve_version(tracking, config.score, model_version)
        model_uri = tracking.model_uri(version)
        model = load_segment_model(model_uri)
        value = _value_model(tracking, config, version) if config.value.enabled else None
        figures["version"] = version
    target = config.partition(config.score.output)
    profiles = config.partition(config.score.profiles_output)
    kpi_table = config.partition(config.score.kpis_output)
    frame = _read_features(spark, config, model, model_uri, value is not None)
    with_kpis = has_kpi_inputs(frame)
    if not with_kpis:
        log.warning("score: the feature table predates the KPI columns: rebuild it for KPIs per segment")
    tables = [target, profiles, *([kpi_table] if with_kpis else [])]
    inputs = Observation("segcore_score_inputs")
    checked = frame.observe(inputs, *bad_value_counts(model.preparation.features))
    summariser = Summariser.of(feature_columns(frame), model.preparation, config.train.log_features)
    carried = KPI_INPUTS if with_kpis else ()
    scored = scoring_pass(checked, model, value and value.model, summariser, carried)
    with commit_partitions(spark, tables) as outputs, _cached(scored):  # one commit for all
        with step("score", "assign and write segments") as figures:
            written = outputs.write(customer_rows(scored).select(*_segment_columns(version, value)), target)
            _refuse_bad_values(inputs.get, config.partition(config.features.output))
            figures["customers"] = customers = written.count()
        with step("score", "profiles, value and KPIs per segment"):
            profile, kpis = _profiles(config, model, summariser.features, scored, version, value, with_kpis)
            outputs.write(spark.createDataFrame(profile).coalesce(1), profiles)
            if kpis is not None:
                outputs.write(spark.createDataFrame(kpis).coalesce(1), kpi_table)
    return ScoreResult(target, model_uri, version, customers, value and value.version, profile, kpis)


def _refuse_bad_values(counts: dict[str, int], table: str) -> None:
    """The model's inputs, counted while the segments were written (before their commit), must all
    be finite: a null, NaN or infinity would be assigned a segment all the same."""
    bad = {f: n for f, n in counts.items() if n}
    if bad:
        raise ModelError(
            f"table 'features' ({table}): column(s) {sorted(bad)} that the model reads hold "
            f"{sum(bad.values())} null, NaN or infinite value(s); nothing was written: rebuild the "
            "features with `segcore features`, or score another version"
        )


@contextmanager
def _cached(frame: DataFrame) -> Iterator[None]:
    """``frame`` kept (memory, else disk) while the block reads it three times: its customers
    written and aggregated, its summaries merged; so the pass runs once."""
    frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        yield
    finally:
        frame.unpersist()


def _value_model(tracking: Tracking, config: Config, segment_version: str) -> _Value:
    """The value model registered by the training run of ``segment_version``."""
    run = tracking.client.get_run(version_run_id(tracking, segment_version))
    version = run.data.tags.get(VALUE_VERSION_TAG)
    if version is None:
        raise ModelError(
            f"version {segment_version} of '{tracking.model_name}' was trained without a customer value "
            "model: train a new version with `segcore train`, or score without value scores "
            "(value.enabled: false)"
        )
    values = value_tracking(tracking, config)
    version = existing_version(values, version)
    return _Value(version, load_value_model(values.model_uri(version)))


def _read_features(
    spark: SparkSession, config: Config, model: SegmentModel, model_uri: str, with_value: bool
) -> DataFrame:
    """The feature partition with the value features the model clusters on, refusing one that
    lacks an input of the model (or a value input)."""
    table = config.partition(config.features.output)
    frame = read_partition(
        spark, table, "feature table", f"run `segcore features` for as_of={config.as_of} first"
    )
    needed = [*model.preparation.inputs, *(INPUT_COLUMNS if with_value else ())]
    missing = [f for f in dict.fromkeys(needed) if f not in frame.columns]
    if missing:
        raise ModelError(
            f"model {model_uri} needs feature column(s) {missing} that table 'features' ({table}) "
            "lacks: rebuild the features with the same feature groups, or score with another version"
        )
    return model.preparation.with_derived_spark(frame)


def _segment_columns(version: str, value: _Value | None) -> list[Column]:
    """The segments table's columns of the scoring pass's customer rows."""
    columns = [F.col("customer_id"), F.col(f"{SEGMENT}.*"), F.lit(version).alias("model_version")]
    if value is not None:
        columns += [F.col(f"{VALUE}.{name}").alias(name) for name in SCORE_COLUMNS]
        columns.append(F.lit(value.version).alias("value_model_version"))
    return columns


def _profiles(
    config: Config,
    model: SegmentModel,
    features: list[str],
    scored: DataFrame,
    version: str,
    value: _Value | None,
    with_kpis: bool,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The profiles (with the value figures) and KPIs per segment of this scoring: the feature
    profile from the pass's summaries, the value figures and KPI sums in one aggregation of its
    customer rows."""
    profile = profile_of_chunks(summary_rows(scored), features)
    names = dict(zip(model.segment_ids, model.segment_names, strict=True))
    profile.insert(1, "segment_name", profile["segment_id"].map(names))
    profile.insert(2, "model_version", version)
    values = value_aggregates(config.value, VALUE) if value is not None else {}
    aggregates = [column.alias(name) for name, column in values.items()]
    aggregates += kpi_aggregates() if with_kpis else []
    if not aggregates:
        return profile, None
    sums = (
        customer_rows(scored)
        .groupBy(F.col(f"{SEGMENT}.segment_id").alias("segment_id"))
        .agg(F.count(F.lit(1)).alias("customers"), *aggregates)
    )
    by_segment = sums.toPandas()
    if value is not None:
        profile = with_value_profile(profile, by_segment[["segment_id", *VALUE_PROFILE_COLUMNS]])
    if not with_kpis:
        return profile, None
    by_segment.insert(1, "segment_name", by_segment["segment_id"].map(names))
    return profile, kpis_of_sums(by_segment)


def with_value_profile(profile: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    """The segments' value figures beside their feature profile; for a value score the model
    clusters on, the value figure (over customers with a purchase) replaces the feature's mean."""
    kept = [c for c in profile.columns if c == "segment_id" or c not in values.columns]
    return profile[kept].merge(values, on="segment_id", how="left")
