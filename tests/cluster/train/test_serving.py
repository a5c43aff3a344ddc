"""Online assignment: `mlflow models serve` of the registered champions (segments and value) on
loopback answers a JSON row of features as batch scoring does."""

import json
import os
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from conftest import free_port, wait_healthy

from segcore.storage.versions import local_partition
from segcore.value.inputs import INPUT_COLUMNS

CUSTOMERS = 25


@contextmanager
def _served(model_uri: str, tracking_uri: str, log: Path):
    port = free_port()
    bin_folder = Path(sys.executable).parent  # mlflow starts `uvicorn` from PATH: the venv's, activated
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["PATH"] = f"{bin_folder}{os.pathsep}{env.get('PATH', '')}"
    command = [str(bin_folder / "mlflow"), "models", "serve", "-m", model_uri]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server, log)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _predict(url: str, rows: pd.DataFrame) -> pd.DataFrame:
    body = json.dumps({"dataframe_records": rows.to_dict(orient="records")}).encode()
    request = urllib.request.Request(f"{url}/invocations", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return pd.DataFrame(json.loads(response.read())["predictions"])


@pytest.fixture(scope="module")
def batch(pipeline) -> pd.DataFrame:
    """A few customers of the pipeline's scoring, with their feature rows."""
    config = pipeline["config"]
    features = pd.read_parquet(local_partition(config.partition(config.features.output)))
    segments = pd.read_parquet(local_partition(config.partition(config.score.output)))
    chosen = segments.sample(CUSTOMERS, random_state=1)
    return chosen.merge(features, on="customer_id", suffixes=("", "_feature"))


@pytest.mark.parametrize(
    "model, inputs, outputs",
    [
        ("customer_segments", "model", ["segment_id", "segment_name"]),
        ("customer_value", INPUT_COLUMNS, ["churn_risk", "expected_value", "churn_risk_band"]),
    ],
)
def test_the_served_champion_answers_as_batch_scoring(pipeline, batch, tmp_path, model, inputs, outputs):
    config = pipeline["config"]
    columns = list(config.train.features if inputs == "model" else inputs)
    with _served(f"models:/{model}@champion", config.tracking_uri(), tmp_path / "serve.log") as url:
        answer = _predict(url, batch[columns])
    for column in outputs:
        expected = batch[column].reset_index(drop=True)
        if expected.dtype == object:
            assert answer[column].tolist() == expected.tolist(), column
        else:
            pd.testing.assert_series_equal(
                answer[column], expected, check_names=False, check_dtype=False, rtol=1e-9
            )
