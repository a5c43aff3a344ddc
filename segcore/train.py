"""Training: prepare features, fit k-means with the configured engine, measure, profile and name
segments, record it all in MLflow and register the model.

The feature table is read with Spark; the preparation is fitted and the profile aggregated there
for every engine, so only centres, aggregates and a seeded sample (for the quality metrics) reach
the driver.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from segcore.config import Config
from segcore.errors import TrainingError
from segcore.kmeans.core import KMeansResult
from segcore.kmeans.engines import fit_features
from segcore.kmeans.spark_engine import assign_spark
from segcore.lake import INPUT_ROWS_FILE, read_partition, read_text
from segcore.model import SegmentModel
from segcore.prepare import Preparation
from segcore.profile import name_segments, profile_segments, summary_table
from segcore.tracking import RegisteredModel, log_and_register, log_config, log_table, use_tracking


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model: RegisteredModel
    k: int
    metrics: dict[str, float]
    profile: pd.DataFrame
    summary: pd.DataFrame


def read_input_rows(spark: SparkSession, path: str) -> dict[str, int]:
    """The input row counts the features stage recorded beside its partition (empty if none)."""
    text = read_text(spark, f"{path}/{INPUT_ROWS_FILE}")
    return json.loads(text) if text else {}


def quality_metrics(sample: pd.DataFrame, preparation: Preparation) -> dict[str, float]:
    """Silhouette, Davies–Bouldin and Calinski–Harabasz on a seeded sample of customers."""
    labels = sample["label"].to_numpy()
    if len(np.unique(labels)) < 2:
        return {}
    points = preparation.transform(sample)
    return {
        "silhouette": float(silhouette_score(points, labels)),
        "davies_bouldin": float(davies_bouldin_score(points, labels)),
        "calinski_harabasz": float(calinski_harabasz_score(points, labels)),
    }


def _sample(labelled: DataFrame, rows: int, size: int, seed: int) -> pd.DataFrame:
    fraction = min(1.0, 1.2 * size / rows)
    return labelled.sample(fraction=fraction, seed=seed).limit(size).toPandas()


def _metrics(result: KMeansResult) -> dict[str, float]:
    return {
        "inertia": result.inertia,
        "fit_seconds": result.fit_seconds,
        "init_seconds": result.init_seconds,
        "iterations": float(result.n_iter),
        "converged": float(result.converged),
    }


def train(spark: SparkSession, config: Config) -> TrainResult:
    """Train on ``features/as_of=<as_of>`` and register a new model version."""
    settings, k = config.train, config.kmeans.k
    features = list(dict.fromkeys(settings.features))
    path = config.partition(config.features.output)
    frame = read_partition(
        spark, path, "feature table", f"run `segcore features` for as_of={config.as_of} first"
    )
    preparation = Preparation.fit(frame, features, settings.log_features, settings.clip_quantile)
    rows = frame.count()
    if k > rows:
        raise TrainingError(
            f"kmeans.k={k} is larger than the number of customers ({rows}) in the feature "
            f"table for as_of={config.as_of}: lower kmeans.k"
        )
    result = fit_features(config.kmeans, frame, path, preparation)

    labelled = assign_spark(
        frame.select("customer_id", *features), features, result.centres, preparation.transform_array
    ).cache()
    try:
        profile, population = profile_segments(labelled.drop("customer_id"), features)
        sample = _sample(
            labelled.select(*features, "label"), rows, settings.silhouette_sample, config.kmeans.seed
        )
    finally:
        labelled.unpersist()
    names = name_segments(profile, population)
    model = SegmentModel(preparation, result.centres, list(range(k)), [names[i] for i in range(k)])
    metrics = {**_metrics(result), **quality_metrics(sample, preparation)}
    profile.insert(1, "segment_name", profile["segment_id"].map(names))

    use_tracking(config)
    with mlflow.start_run(run_name=f"train-{config.as_of}-k{k}") as run:
        mlflow.log_params(
            {
                "as_of": config.as_of.isoformat(),
                "engine": config.kmeans.engine,
                "k": k,
                "seed": config.kmeans.seed,
                "max_iter": config.kmeans.max_iter,
                "tol": config.kmeans.tol,
                "dtype": config.kmeans.dtype,
                "features": ",".join(features),
                "log_features": ",".join(preparation.log_features),
                "feature_rows": rows,
                **{f"input_rows_{table}": n for table, n in read_input_rows(spark, path).items()},
            }
        )
        mlflow.log_metrics(metrics)
        log_config(config)
        log_table(profile, "profile/segment_profile.csv")
        registered = log_and_register(model, config.mlflow.registered_model)
        mlflow.set_tag("model_version", registered.version)
    return TrainResult(run.info.run_id, registered, k, metrics, profile, summary_table(profile, names))
