"""A model version registered by segcore before the package layout (commit c0b6c38, flat modules)
still loads and scores after it: through segcore's registry, as a pandas pyfunc, and on Spark rows
as `segcore score` assigns them."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from segcore.config import build_config
from segcore.model.profiles import Summariser, profile_of_chunks
from segcore.score.scoring_pass import customer_rows, scoring_pass, summary_rows
from segcore.tracking.registry import load_version
from segcore.tracking.store import open_tracking

FLAT_LAYOUT = "c0b6c38"  # the last commit of the flat layout
REGISTER_WITH_FLAT_LAYOUT = """
import sys

import numpy as np

from segcore.config import build_config
from segcore.model import SegmentModel
from segcore.prepare import Preparation
from segcore.run_lifecycle import tracked_run
from segcore.tracking import log_model, register, use_tracking

assert "flat-layout" in __import__("segcore").__file__
config = build_config({"workdir": sys.argv[1]})
use_tracking(config)
preparation = Preparation(["a", "b"], [], [-1e9, -1e9], [1e9, 1e9], [0.0, 0.0], [1.0, 1.0])
model = SegmentModel(preparation, np.array([[0.0, 0.0], [10.0, 0.0]]), [4, 7], ["near", "far"], 9)
with tracked_run("train-before-the-layout") as run:
    print(register(log_model(model), config.mlflow.registered_model, model.next_id, {}, run).version)
"""
ROWS = pd.DataFrame({"a": [9.0, 1.0, 12.0], "b": [0.0, 0.5, -1.0]})


def _flat_layout_source(folder: Path) -> Path:
    """segcore's package as of ``FLAT_LAYOUT``, from this repository's history."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", FLAT_LAYOUT, "segcore"], capture_output=True
    )
    if archive.returncode != 0:
        reason = archive.stderr.decode()
        pytest.fail(f"commit {FLAT_LAYOUT} is not in this clone's history (fetch it): {reason}")
    source = folder / "flat-layout"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(source, filter="data")
    return source


@pytest.fixture(scope="module")
def old_version(tmp_path_factory):
    """A workdir whose SQLite store holds version 1, registered by the flat-layout segcore."""
    folder = tmp_path_factory.mktemp("before-the-layout")
    workdir = folder / "work"
    env = {"PYTHONPATH": str(_flat_layout_source(folder)), "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", REGISTER_WITH_FLAT_LAYOUT, str(workdir)],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "1"
    previous = mlflow.get_tracking_uri()
    yield open_tracking(build_config({"workdir": str(workdir)}))
    mlflow.set_tracking_uri(previous)


def test_the_old_version_loads_through_the_registry(old_version):
    path = list(sys.path)
    model = load_version(old_version, "1")
    assert sys.path == path  # its logged copy of segcore stays off this process's import path
    assigned = model.assign(ROWS)
    assert assigned.segment_id.tolist() == [7, 4, 7]
    assert assigned.segment_name.tolist() == ["far", "near", "far"]


def test_the_old_version_scores_pandas_as_a_pyfunc(old_version):
    predicted = mlflow.pyfunc.load_model(old_version.model_uri("1")).predict(ROWS)
    assert predicted.segment_id.tolist() == [7, 4, 7]


def test_the_old_version_scores_spark_rows_as_score_does(old_version, spark):
    """Score applies the version's state with this segcore's Spark assignment: its executors never
    import the version's logged (flat-layout) copy, and later Python work on them still runs."""
    model = load_version(old_version, "1")
    rows = spark.createDataFrame(ROWS.assign(customer_id=range(len(ROWS))))
    scored = scoring_pass(rows, model, None, Summariser.of(["a", "b"], model.preparation, []))
    segments = customer_rows(scored).orderBy("customer_id").select("_segment.*").toPandas()
    assert segments.segment_id.tolist() == [7, 4, 7]
    assert segments.segment_name.tolist() == ["far", "near", "far"]
    np.testing.assert_allclose(segments.distance, model.assign(ROWS).distance, rtol=1e-12)
    profile = profile_of_chunks(summary_rows(scored), ["a", "b"])
    assert profile.set_index("segment_id").customers.to_dict() == {4: 1, 7: 2}
