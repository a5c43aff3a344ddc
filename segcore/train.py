"""Training: prepare features, fit k-means, measure, profile and name segments, record it all in
MLflow and register the model."""

from __future__ import annotations

import json
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
from pyarrow import fs as pafs
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from segcore.config import Config
from segcore.errors import LakeError, TrainingError
from segcore.kmeans import LocalBlocks, fit_local
from segcore.lake import INPUT_ROWS_FILE
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


def read_feature_table(config: Config, columns: list[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The feature partition for ``as_of`` as pandas (local engine), and the input row counts
    recorded beside it by the features stage."""
    path = config.partition(config.features.output)
    try:
        filesystem, location = pafs.FileSystem.from_uri(path if "://" in path else f"file://{path}")
        dataset = ds.dataset(
            location,
            filesystem=filesystem,
            format="parquet",
            exclude_invalid_files=True,
            ignore_prefixes=["_", "."],
        )
    except (FileNotFoundError, OSError):
        raise LakeError(
            f"feature table {path} does not exist: run `segcore features` for as_of={config.as_of} first"
        ) from None
    available = dataset.schema.names
    missing = [c for c in columns if c not in available]
    if missing:
        raise TrainingError(
            f"table 'features' ({path}) has no column(s) {missing} named in train.features; "
            f"available: {sorted(c for c in available if c != 'customer_id')}"
        )
    frame = dataset.to_table(columns=columns).to_pandas()
    try:
        with filesystem.open_input_stream(f"{location}/{INPUT_ROWS_FILE}") as stream:
            input_rows = json.loads(stream.read())
    except (FileNotFoundError, OSError):
        input_rows = {}
    return frame, input_rows


def quality_metrics(points: np.ndarray, labels: np.ndarray, sample: int, seed: int) -> dict[str, float]:
    """Silhouette on a seeded sample; Davies–Bouldin and Calinski–Harabasz on all rows."""
    if len(np.unique(labels)) < 2:
        return {}
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(points), size=min(sample, len(points)), replace=False)
    return {
        "silhouette": float(silhouette_score(points[picked], labels[picked])),
        "davies_bouldin": float(davies_bouldin_score(points, labels)),
        "calinski_harabasz": float(calinski_harabasz_score(points, labels)),
    }


def train(config: Config) -> TrainResult:
    """Train on ``features/as_of=<as_of>`` and register a new model version."""
    settings = config.train
    features = list(dict.fromkeys(settings.features))
    frame, input_rows = read_feature_table(config, ["customer_id", *features])
    if frame.empty:
        raise TrainingError(
            f"table 'features' for as_of={config.as_of} is empty: there is nothing to segment"
        )
    k = config.kmeans.k
    if k > len(frame):
        raise TrainingError(
            f"kmeans.k={k} is larger than the number of customers ({len(frame)}) in the feature "
            f"table for as_of={config.as_of}: lower kmeans.k"
        )
    preparation = Preparation.fit(frame, features, settings.log_features, settings.clip_quantile)
    points = preparation.transform(frame)
    result = fit_local(points, k, config.kmeans)
    labels, _ = LocalBlocks(points).assign(result.centres)

    profile = profile_segments(frame, labels, features)
    names = name_segments(profile, frame[features].mean())
    model = SegmentModel(preparation, result.centres, list(range(k)), [names[i] for i in range(k)])
    metrics = {
        "inertia": result.inertia,
        "fit_seconds": result.fit_seconds,
        "init_seconds": result.init_seconds,
        "iterations": float(result.n_iter),
        **quality_metrics(points, labels, settings.silhouette_sample, config.kmeans.seed),
    }
    profile.insert(1, "segment_name", profile["segment_id"].map(names))
    summary = summary_table(profile, names)

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
                "features": ",".join(features),
                "log_features": ",".join(preparation.log_features),
                "feature_rows": len(frame),
                **{f"input_rows_{table}": rows for table, rows in input_rows.items()},
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_metric("converged", float(result.converged))
        log_config(config)
        log_table(profile, "profile/segment_profile.csv")
        registered = log_and_register(model, config.mlflow.registered_model)
        mlflow.set_tag("model_version", registered.version)
    return TrainResult(run.info.run_id, registered, k, metrics, profile, summary)
