"""The `segcore` command and the spark-submit jobs, run as a user runs them."""

import pandas as pd
import pytest
from commands import BIN, ROOT, run, submit
from mlflow.tracking import MlflowClient


def test_wrong_config_type_exits_non_zero_naming_the_key():
    result = run(BIN / "segcore", "train", "--set", "kmeans.k=six")
    assert result.returncode == 2
    assert "config key 'kmeans.k'" in result.stderr


def test_unknown_config_key_exits_non_zero(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("kmeans:\n  clusters: 4\n")
    result = run(BIN / "segcore", "train", "--config", config)
    assert result.returncode == 2
    assert "config key 'kmeans.clusters' does not exist" in result.stderr


def test_generate_is_deterministic(tmp_path):
    for name in ("a", "b"):
        result = run(
            BIN / "segcore", "generate", "--out", tmp_path / name, "--customers", "200", "--seed", "5"
        )
        assert result.returncode == 0, result.stderr
    for table in ("customers", "orders", "events", "planted_segments.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "a" / table), pd.read_parquet(tmp_path / "b" / table)
        )


@pytest.fixture(scope="module")
def jobs_workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("jobs")
    result = run(BIN / "segcore", "generate", "--out", workdir / "lake", "--customers", "400", "--seed", "3")
    assert result.returncode == 0, result.stderr
    return workdir


def test_spark_submit_jobs_run_every_stage(jobs_workdir):
    settings = [
        "--config",
        ROOT / "conf" / "default.yaml",
        "--set",
        f"workdir={jobs_workdir}",
        "--set",
        "kmeans.k=4",
        "--set",
        "value.backtest=false",  # checked in tests/integration/value
    ]
    for job in ("build_features.py", "train_segments.py", "score_segments.py"):
        result = submit(job, *settings)
        assert result.returncode == 0, result.stderr[-3000:]
    segments = pd.read_parquet(jobs_workdir / "segments" / "as_of=2026-06-30")
    features = pd.read_parquet(jobs_workdir / "features" / "as_of=2026-06-30")
    assert sorted(segments.customer_id) == sorted(features.customer_id)
    assert segments.segment_id.nunique() == 4


def test_failing_spark_submit_job_exits_non_zero(tmp_path):
    result = submit("build_features.py", "--set", f"workdir={tmp_path}")
    assert result.returncode == 2
    output = result.stdout + result.stderr  # spark-submit sends the driver's stderr to stdout
    assert f"table 'customers': path {tmp_path}/lake/customers does not exist" in output


def test_score_without_a_model_says_what_to_do(tmp_path):
    result = run(BIN / "segcore", "score", "--set", f"workdir={tmp_path}")
    assert result.returncode == 2
    store = f"sqlite:///{tmp_path}/mlflow.db"
    assert f"no MLflow tracking store at {store}: run `segcore train` first" in result.stderr
    assert not (tmp_path / "mlflow.db").exists()
    assert "spark application" not in result.stderr  # found before Spark started


def test_report_of_an_unknown_run_says_so(tmp_path):
    MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_experiments()  # a store without that run
    result = run(BIN / "segcore", "report", "--run-id", "no-such-run", "--set", f"workdir={tmp_path}")
    assert result.returncode == 2
    assert "run no-such-run has no report inputs" in result.stderr
