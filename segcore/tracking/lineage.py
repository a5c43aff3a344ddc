"""What a training run records about where it ran and on what: segcore's version and commit, the
Spark application, the engine's workers, and a fingerprint of the input partition and config that
tells an unchanged rerun apart."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pyspark.sql import SparkSession

from segcore.config import Config
from segcore.storage.hadoop import list_files

FINGERPRINT_TAG = "fingerprint"
# The config sections that change what training produces.
_MODEL_SECTIONS = ("as_of", "kmeans", "train", "select", "segments", "value")


def segcore_version() -> str:
    try:
        return version("segcore")
    except PackageNotFoundError:
        return "unknown"


def git_commit() -> str | None:
    """The commit of the segcore checkout this code runs from, when it is one."""
    source = Path(__file__).resolve().parents[2]
    if not (source / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def run_tags(spark: SparkSession, config: Config, workers: int) -> dict[str, str]:
    """Tags every training run carries (``workers``: how many the engine fits with)."""
    context = spark.sparkContext
    tags = {
        "segcore.version": segcore_version(),
        "spark.app_id": context.applicationId,
        "spark.master": context.master,
        "engine": config.kmeans.engine,
        "engine.workers": str(workers),
    }
    commit = git_commit()
    if commit:
        tags["segcore.git_commit"] = commit
    return tags


def fingerprint(spark: SparkSession, config: Config, partition: str) -> str:
    """A hash of the feature partition's files (Spark names each written file uniquely) and of the
    config sections that shape the model: equal fingerprints mean an unchanged rerun."""
    settings = config.model_dump(mode="json")
    content = {
        "partition": partition,
        "files": list_files(spark, partition),
        "config": {key: settings[key] for key in _MODEL_SECTIONS},
        "registered_model": config.mlflow.registered_model,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]
