"""Run the `segcore` command and the spark-submit jobs as a user runs them: in a subprocess, from
this virtual environment's bin/, with no MLflow tracking URI exported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

BIN = Path(sys.executable).parent


def run(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    # mlflow.set_tracking_uri() in this test process exports MLFLOW_TRACKING_URI: a user's shell has none.
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def submit(job, *args) -> subprocess.CompletedProcess:
    """`spark-submit --master local[2] jobs/<job> ARGS`."""
    return run(
        BIN / "spark-submit",
        "--master",
        "local[2]",
        "--conf",
        "spark.sql.shuffle.partitions=2",
        "--conf",
        "spark.ui.enabled=false",
        ROOT / "jobs" / job,
        *args,
    )
