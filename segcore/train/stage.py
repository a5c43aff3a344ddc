"""Training: prepare features, fit k-means for every k tried, choose k, check stability, keep
segment ids stable against the champion, profile and name segments, draw the report, and record
it all in MLflow (a parent run, a child run per k) with a new registered model version.

The feature table is read with Spark; the preparation is fitted and the profile aggregated there
for every engine, so only centres, aggregates and a seeded sample (for the quality metrics,
stability and the projection plot) reach the driver.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segcore.config import Config, KRange
from segcore.errors import LakeError, TrainingError
from segcore.kmeans.core import KMeansResult
from segcore.kmeans.engines.spark import assign_spark
from segcore.kmeans.kernels import nearest
from segcore.lake.tables import INPUT_ROWS_FILE
from segcore.model.preparation import Preparation
from segcore.model.profiles import feature_columns, name_segments, profile_with_population, summary_table
from segcore.model.segment_model import SegmentModel
from segcore.report import html as report
from segcore.runtime.logs import step
from segcore.storage.hadoop import read_text
from segcore.storage.partitions import read_partition, resolve_partition
from segcore.tracking.lifecycle import TrackedRun, delete_unfinished_versions, end_abandoned_runs, tracked_run
from segcore.tracking.lineage import FINGERPRINT_TAG, fingerprint, run_tags
from segcore.tracking.store import (
    CHAMPION,
    RegisteredModel,
    find_version,
    load_segment_model,
    log_bytes,
    log_config,
    log_model,
    log_table,
    next_free_id,
    register,
    use_tracking,
)
from segcore.train.align import align, champion_centres
from segcore.train.choose_k import choose_k, quality_metrics, stability
from segcore.train.engines import fit_settings, fit_sweep


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


def read_input_rows(spark: SparkSession, path: str) -> dict[str, int]:
    """The input row counts the features stage recorded beside its partition (empty if none)."""
    text = read_text(spark, f"{path}/{INPUT_ROWS_FILE}")
    return json.loads(text) if text else {}


def _sample(frame: DataFrame, rows: int, size: int, seed: int) -> pd.DataFrame:
    fraction = min(1.0, 1.2 * size / rows)
    return frame.sample(fraction=fraction, seed=seed).limit(size).toPandas()


def _fit_metrics(result: KMeansResult) -> dict[str, float]:
    return {
        "inertia": result.inertia,
        "fit_seconds": result.fit_seconds,
        "init_seconds": result.init_seconds,
        "iterations": float(result.n_iter),
        "converged": float(result.converged),
    }


def _champion(config: Config) -> SegmentModel | None:
    try:
        return load_segment_model(f"models:/{config.mlflow.registered_model}@{CHAMPION}")
    except MlflowException:
        return None


def _k_values(config: Config, rows: int) -> list[int]:
    k = config.kmeans.k
    ks = list(range(k.min, k.max + 1)) if isinstance(k, KRange) else [k]
    if ks[-1] > rows:
        raise TrainingError(
            f"kmeans.k={ks[-1]} is larger than the number of customers ({rows}) in the feature "
            f"table for as_of={config.as_of}: lower kmeans.k"
        )
    return ks


def _warm_start(config: Config, champion: SegmentModel | None, preparation: Preparation, k: int):
    """The champion's centres as initial centres, with kmeans.init=champion and a matching model."""
    if config.kmeans.init != "champion" or champion is None or len(champion.centres) != k:
        return None
    return champion_centres(champion, preparation)


@dataclass(frozen=True)
class Selection:
    """Every k tried, the one chosen and why, and how stable it is."""

    k_table: pd.DataFrame
    chosen: int
    reason: str
    result: KMeansResult
    stability_ari: float
    warnings: list[str]


def fit_every_k(
    config: Config,
    ks: list[int],
    frame: DataFrame,
    path: str,
    preparation: Preparation,
    champion: SegmentModel | None,
) -> dict[int, KMeansResult]:
    """Every k tried, in one sweep (the data loaded and prepared once), each k warm-started from
    the champion's centres where ``kmeans.init=champion`` and the champion has that k."""
    label = f"k={ks[0]}" if len(ks) == 1 else f"k={ks[0]}..{ks[-1]}"
    with step("train", f"fit {label} ({config.kmeans.engine})") as figures:
        inits = {k: _warm_start(config, champion, preparation, k) for k in ks}
        fits = fit_sweep(config.kmeans, inits, frame, path, preparation)
        figures.update(
            iterations=",".join(str(fits[k].n_iter) for k in ks),
            inertia=",".join(f"{fits[k].inertia:.6g}" for k in ks),
        )
    return fits


def select_k(config: Config, fits: dict[int, KMeansResult], points: np.ndarray) -> Selection:
    """Measure every k's fit (``fits``: k → result) on the sample ``points``, choose, check stability."""
    select = config.select
    ks = sorted(fits)
    k_table = pd.DataFrame(
        [{"k": k, **_fit_metrics(fits[k]), **quality_metrics(points, fits[k].centres)} for k in ks]
    )
    try:
        chosen, reason = (
            choose_k(k_table, select.rule, select.fixed_k) if len(ks) > 1 else (ks[0], "single k")
        )
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    with step("train", f"stability of k={chosen}") as figures:
        stability_ari = stability(points, chosen, fit_settings(config.kmeans), select.stability_bootstraps)
        figures["stability_ari"] = f"{stability_ari:.3f}"
    warnings = []
    if stability_ari < select.stability_min_ari:
        warnings.append(
            f"unstable segments: stability_ari={stability_ari:.3f} is below select.stability_min_ari="
            f"{select.stability_min_ari} (refits on bootstrap samples disagree): try another k (kmeans.k, "
            "or select.rule: fixed with select.fixed_k), fewer or other features (train.features), "
            "or another select.rule"
        )
    return Selection(k_table, chosen, reason, fits[chosen], stability_ari, warnings)


def _params(config: Config, selection: Selection, preparation: Preparation, rows: int) -> dict:
    ks = selection.k_table["k"].tolist()
    return {
        "as_of": config.as_of.isoformat(),
        "engine": config.kmeans.engine,
        "k": selection.chosen,
        "chosen_k": selection.chosen,
        "k_tried": ",".join(map(str, ks)),
        "k_rule": config.select.rule if len(ks) > 1 else "single",
        "k_reason": selection.reason,
        "init": config.kmeans.init,
        "seed": config.kmeans.seed,
        "max_iter": config.kmeans.max_iter,
        "tol": config.kmeans.tol,
        "dtype": config.kmeans.dtype,
        "features": ",".join(preparation.features),
        "log_features": ",".join(preparation.log_features),
        "feature_rows": rows,
    }


def _read_features(spark: SparkSession, config: Config) -> tuple[DataFrame, str]:
    """The committed feature partition and the folder holding it (what the Dask engine, the
    lineage fingerprint and the input row counts read)."""
    hint = f"run `segcore features` for as_of={config.as_of} first"
    folder = resolve_partition(spark, config.partition(config.features.output), "feature table", hint)
    return read_partition(spark, folder, "feature table", hint), folder


def count_customers(frame: DataFrame, path: str) -> int:
    """The feature table's rows, refusing duplicate customer ids (one Spark aggregation)."""
    rows, customers = frame.agg(F.count(F.lit(1)), F.count_distinct("customer_id")).first()
    if rows != customers:
        raise LakeError(
            f"feature table {path} has {rows - customers:,} duplicate customer_id row(s) ({rows:,} rows, "
            f"{customers:,} customers): rebuild it with `segcore features`, or remove the duplicates"
        )
    return rows


def unchanged_version(spark: SparkSession, config: Config) -> RegisteredModel | None:
    """The registered version already trained on this very feature partition with this config."""
    _, path = _read_features(spark, config)
    use_tracking(config)
    return find_version(config.mlflow.registered_model, FINGERPRINT_TAG, fingerprint(spark, config, path))


def train(spark: SparkSession, config: Config) -> TrainResult:
    """Train on ``features/as_of=<as_of>`` and register a new model version, in an MLflow run that
    ends FINISHED, or FAILED or KILLED with the reason (:mod:`segcore.tracking.lifecycle`). Runs and versions
    that trains killed outright on this host left behind are ended and reported first."""
    client = use_tracking(config)
    experiment_id = client.get_experiment_by_name(config.mlflow.experiment).experiment_id
    end_abandoned_runs(client, experiment_id)
    delete_unfinished_versions(client, config.mlflow.registered_model, experiment_id)
    with tracked_run(f"train-{config.as_of}") as run:
        return _train_in_run(spark, config, run)


def _train_in_run(spark: SparkSession, config: Config, run: TrackedRun) -> TrainResult:
    settings = config.train
    features = list(dict.fromkeys(settings.features))
    frame, path = _read_features(spark, config)
    tags = run_tags(spark, config)  # before the work: an unreachable Dask scheduler stops it here
    with step("train", "prepare features") as figures:
        rows = figures["customers"] = count_customers(frame, path)
        preparation = Preparation.fit(frame, features, settings.log_features, settings.clip_quantile)
    ks = _k_values(config, rows)
    use_tracking(config)
    champion = _champion(config)
    with step("train", "draw the metrics sample") as figures:
        sample = _sample(frame.select(*features), rows, settings.silhouette_sample, config.kmeans.seed)
        points = preparation.transform(sample)
        figures["rows"] = len(points)

    selection = select_k(config, fit_every_k(config, ks, frame, path, preparation, champion), points)
    centres = selection.result.centres
    next_free = next_free_id(config.mlflow.registered_model)
    alignment = align(centres, champion, preparation, config.segments.max_match_distance, next_free)
    with step("train", "profile segments"):
        labelled = assign_spark(frame.drop("customer_id"), features, centres, preparation.transform_array)
        ids = F.element_at(F.array(*[F.lit(i) for i in alignment.ids]), F.col("label") + 1)
        profile, population = profile_with_population(
            labelled.withColumn("label", ids), feature_columns(frame), preparation, settings.log_features
        )
        names = {**name_segments(profile, population), **config.segments.names}
    model = SegmentModel(
        preparation, centres, alignment.ids, [names[i] for i in alignment.ids], alignment.next_id
    )
    profile.insert(1, "segment_name", profile["segment_id"].map(names))
    metrics = {
        **selection.k_table.set_index("k").loc[selection.chosen].to_dict(),
        "stability_ari": selection.stability_ari,
    }
    images = {
        "segment_sizes.png": report.sizes_plot(profile),
        "profile_heatmap.png": report.heatmap_plot(profile, features),
        "projection.png": report.projection_plot(
            points, np.asarray(alignment.ids)[nearest(points, centres)[0]], names, config.kmeans.seed
        ),
    }
    if len(ks) > 1:
        images["k_selection.png"] = report.k_selection_plot(selection.k_table, selection.chosen)
    summary = (
        f"as_of {config.as_of}, k={selection.chosen} ({selection.reason}), "
        f"stability_ari={selection.stability_ari:.3f}"
    )
    page = report.build_html(f"Customer segments — {config.as_of}", summary, images, profile)

    version_tags = {FINGERPRINT_TAG: fingerprint(spark, config, path)}
    with step("train", "record the run and register the model"):
        mlflow.set_tags({**tags, "mlflow.runName": f"train-{config.as_of}-k{selection.chosen}"})
        for row in selection.k_table.to_dict("records"):
            with tracked_run(f"k={row['k']}", nested=True):
                mlflow.log_params(
                    {"k": row["k"], "engine": config.kmeans.engine, "as_of": config.as_of.isoformat()}
                )
                mlflow.log_metrics(
                    {key: value for key, value in row.items() if key != "k" and pd.notna(value)}
                )
        mlflow.log_params(
            {
                **_params(config, selection, preparation, rows),
                **{f"input_rows_{table}": n for table, n in read_input_rows(spark, path).items()},
            }
        )
        mlflow.log_metrics({key: value for key, value in metrics.items() if pd.notna(value)})
        mlflow.set_tag("summary", summary)
        for warning in selection.warnings:
            mlflow.set_tag("warning", warning)
        log_config(config)
        log_table(profile, "profile/segment_profile.csv")
        log_table(selection.k_table, "selection/k_selection.csv")
        log_table(alignment.matching, "alignment/matching.csv")
        for name, data in images.items():
            log_bytes(data, f"plots/{name}")
        mlflow.log_text(page, "report/segments_report.html")
        model_uri = log_model(model)
        registered = register(model_uri, config.mlflow.registered_model, model.next_id, version_tags, run)
    return TrainResult(
        run.info.run_id,
        registered,
        selection.chosen,
        metrics,
        profile,
        summary_table(profile, names),
        selection.k_table,
        selection.reason,
        selection.warnings,
        page,
    )
