"""What a scheduler and an operator see: exit codes for environment failures, a tracking server
checked before any Spark work, timestamped step logs, lineage on every run, and no duplicate
version for an unchanged rerun -- all against a real `mlflow server`."""

from __future__ import annotations

import http.server
import os
import re
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import ROOT, make_config
from mlflow.tracking import MlflowClient

from segcore.features.stage import run_features
from segcore.sample.lake import generate_lake

SEGCORE = Path(sys.executable).parent / "segcore"
TIMESTAMP = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
STEP_LINE = re.compile(TIMESTAMP + r" INFO segcore: train: fit k=4 \(local\) done in ")


def segcore(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run the `segcore` command as a user's shell would (no tracking URI MLflow exported here)."""
    environment = {**os.environ, "PYSPARK_PYTHON": sys.executable, **(env or {})}
    environment.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [str(SEGCORE), *map(str, args)], capture_output=True, text=True, env=environment, timeout=timeout
    )


@pytest.fixture(scope="module")
def not_mlflow():
    """An HTTP server on 127.0.0.1 that is not MLflow (a misconfigured tracking URI)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def silent():
    """A port on 127.0.0.1 that accepts connections and never answers (a hung server)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


STAGES = ["train", "score", "report", "promote", "runs"]
PROBING_TOGETHER = 3  # starting `segcore` is ~4 s of CPU: more at once would starve each other


def _outcome(command: list[str]) -> subprocess.CompletedProcess | subprocess.TimeoutExpired:
    # timeout=30: the stage must give up by itself well before MLflow's minutes of retries.
    try:
        return segcore(*command, timeout=30)
    except subprocess.TimeoutExpired as exc:
        return exc


@pytest.fixture(scope="module")
def unusable_tracking_runs(request, not_mlflow, silent, tmp_path_factory, cores) -> dict:
    """Every selected stage against each unusable tracking URI, as a user runs it: `segcore` runs,
    PROBING_TOGETHER at a time, each with its own 30 s limit, with the cores to themselves. A run
    against the silent server mostly waits out the probe's 10 s: together, those waits overlap the
    other runs instead of adding up. {(stage, uri): the finished process, or its
    subprocess.TimeoutExpired}."""
    test = "test_unusable_tracking_server_fails_within_30_s_before_any_spark_work"
    selected = [item.callspec.params["stage"] for item in request.session.items if item.originalname == test]
    commands = {}
    for stage in STAGES:
        if stage in selected:
            workdir = tmp_path_factory.mktemp(f"tracking-{stage}")
            extra = ["--run-id", "any"] if stage == "report" else []
            for uri in (silent, "http://127.0.0.1:9", not_mlflow):  # the silent server's first
                commands[stage, uri] = [stage, *extra, "--set", f"workdir={workdir}"]
                commands[stage, uri] += ["--set", f"mlflow.tracking_uri={uri}"]
    with cores.alone(), ThreadPoolExecutor(PROBING_TOGETHER) as pool:
        futures = {key: pool.submit(_outcome, command) for key, command in commands.items()}
    return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize("stage", STAGES)
def test_unusable_tracking_server_fails_within_30_s_before_any_spark_work(
    unusable_tracking_runs, not_mlflow, silent, stage
):
    for uri in ("http://127.0.0.1:9", not_mlflow, silent):
        result = unusable_tracking_runs[stage, uri]
        if isinstance(result, subprocess.TimeoutExpired):
            raise result
        assert result.returncode == 3, result.stderr
        assert f"MLflow tracking server {uri} is not usable" in result.stderr
        assert "Traceback" not in result.stderr
        assert "spark application" not in result.stderr  # found before Spark started


def test_missing_java_is_an_environment_error(tmp_path):
    result = segcore("features", "--set", f"workdir={tmp_path}", env={"JAVA_HOME": str(tmp_path / "no-java")})
    assert result.returncode == 3, result.stderr[-2000:]
    assert "Spark could not start its Java process" in result.stderr
    assert "install Java 17 or newer" in result.stderr


@pytest.fixture(scope="module")
def features_workdir(spark, tmp_path_factory):
    """A small lake and its feature table, built in this test session's Spark."""
    workdir = tmp_path_factory.mktemp("operations")
    generate_lake(workdir / "lake", 500, seed=21, end=make_config(workdir, workdir / "lake").as_of)
    run_features(spark, make_config(workdir, workdir / "lake"))
    return workdir


def test_unwritable_output_is_an_environment_error_found_before_the_lake_is_read(features_workdir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = segcore(
        "features",
        *("--set", f"workdir={features_workdir}", "--set", f"features.output={blocker}/features"),
        *("--set", f"lake.orders.path={tmp_path}/no-such-table"),  # would be exit 2, were it read first
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert f"cannot write output {blocker}/features/as_of=2026-06-30" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def served_runs(features_workdir, mlflow_server):
    """train, an unchanged rerun, a forced rerun with --verbose, score and report, all against a
    real MLflow server."""
    settings = ["--set", f"workdir={features_workdir}", "--set", f"mlflow.tracking_uri={mlflow_server}"]
    settings += ["--set", "kmeans.k=4", "--set", "value.backtest=false"]  # checked in tests/integration/value
    runs = {"train": segcore("train", *settings)}
    runs["rerun"] = segcore("train", *settings)
    runs["forced"] = segcore("train", *settings, "--force", "--verbose")
    runs["score"] = segcore("score", *settings)
    for name, result in runs.items():
        assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
    return {"uri": mlflow_server, "workdir": features_workdir, "settings": settings, **runs}


def _parent_runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("segcore")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return [run for run in runs if "mlflow.parentRunId" not in run.data.tags]


def test_an_unchanged_rerun_reuses_its_version_and_force_trains_again(served_runs):
    client = MlflowClient(served_runs["uri"])
    assert "unchanged: version 1 of customer_segments" in served_runs["rerun"].stdout
    assert "registered customer_segments version 2" in served_runs["forced"].stdout
    versions = client.search_model_versions("name = 'customer_segments'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    assert len(_parent_runs(client)) == 2  # the unchanged rerun started no run


def test_every_run_records_version_commit_spark_application_and_workers(served_runs):
    client = MlflowClient(served_runs["uri"])
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True)
    for run in _parent_runs(client):
        tags = run.data.tags
        assert tags["segcore.version"] == version("segcore")
        assert tags["spark.master"] == "local[*]"
        assert re.fullmatch(r"local-\d+", tags["spark.app_id"])
        assert tags["engine"] == "local" and tags["engine.workers"] == "1"
        if commit.returncode == 0:
            assert tags["segcore.git_commit"] == commit.stdout.strip()
    app_ids = {run.data.tags["spark.app_id"] for run in _parent_runs(client)}
    assert len(app_ids) == 2


def test_logs_have_timestamped_steps_and_no_library_warnings_unless_verbose(served_runs):
    quiet, verbose = served_runs["train"].stderr, served_runs["forced"].stderr
    assert any(STEP_LINE.match(line) for line in quiet.splitlines()), quiet[-2000:]
    assert re.search(r"INFO segcore: train: record the run and register the model done in [\d.]+ s", quiet)
    assert "spark application local-" in quiet
    warnings = [line for line in quiet.splitlines() if re.match(r"\S+ \S+ WARN", line)]  # <date> <time> WARN
    assert not warnings, warnings
    assert "Using Spark's default log4j profile" not in quiet
    assert "Setting default log level" not in quiet  # Spark's note for shells
    assert "Using Spark's default log4j profile" in verbose  # Spark's own logging, at WARN


def test_score_and_report_use_the_server(served_runs, tmp_path):
    workdir = Path(served_runs["workdir"])
    assert "scored with models:/customer_segments/1" in served_runs["score"].stdout  # the champion
    assert (workdir / "segments" / "as_of=2026-06-30").is_dir()
    run_id = _parent_runs(MlflowClient(served_runs["uri"]))[-1].info.run_id
    out = tmp_path / "report.html"
    result = segcore("report", "--run-id", run_id, "--out", out, *served_runs["settings"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Customer segments" in out.read_text()


def test_train_prints_the_segment_table_and_no_mlflow_links(served_runs):
    stdout = served_runs["train"].stdout
    assert "View run" not in stdout and "View experiment" not in stdout  # MLflow's, with a server
    lines = stdout.splitlines()
    heading = lines.index("segments as of 2026-06-30: k=4 (single k)")
    assert lines[heading + 1].split() == [
        "segment_id",
        "segment_name",
        "customers",
        "share",
        "avg_spend",
        "avg_recency_days",
    ]
    customers = sum(
        int(re.findall(r"\s(\d+)\s+[\d.]+\s+[\d.-]+\s+[\d.-]+$", line)[0]) for line in lines[heading + 2 :]
    )
    assert customers == 500


def test_runs_lists_and_compares_the_training_runs_on_the_server(served_runs):
    listed = segcore("runs", *served_runs["settings"])
    assert listed.returncode == 0, listed.stderr[-2000:]
    first, forced = (run.info.run_id for run in _parent_runs(MlflowClient(served_runs["uri"])))
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert set(rows) == {first, forced}
    assert re.search(r"\s2026-06-30\s+local\s+4\s+single\s.*\s1\s+champion\s", rows[first])
    assert re.search(r"\s2\s+challenger\s", rows[forced])
    compared = segcore("runs", "--compare", first, forced, *served_runs["settings"])
    assert compared.returncode == 0, compared.stderr[-2000:]
    lines = compared.stdout.splitlines()
    assert lines[0] == f"A = run {first}, B = run {forced}"
    rows = {tuple(line.split()[:2]): line.split() for line in lines[2:]}
    assert rows["param", "k"] == ["param", "k", "4", "4"]  # the same: no difference
    assert rows["param", "as_of"] == ["param", "as_of", "2026-06-30", "2026-06-30"]
    a, b, difference = rows["metric", "fit_seconds"][2:]
    assert difference.startswith(("+", "-"))  # B - A
    assert float(difference) == pytest.approx(float(b) - float(a), rel=1e-3, abs=1e-5)
