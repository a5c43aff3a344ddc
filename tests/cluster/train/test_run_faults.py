"""MLflow state after faults, with the `segcore train` command as a scheduler runs it: two first
trains at once on a new SQLite store, a train killed outright (SIGKILL) between registering its
version and setting the alias, one stopped (SIGTERM) while it works, one stopped during
registration, and one that fails. Every run ends FINISHED, FAILED or KILLED with its reason, and
no version is left without its alias by a run that did not finish."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from conftest import AS_OF, make_config
from mlflow.tracking import MlflowClient

from segcore.errors import TrainingError
from segcore.runtime.crash_points import PAUSE_ENV
from segcore.tracking.lifecycle import FAILURE_TAG, HOST_TAG, PID_TAG
from segcore.train.stage import train_segments

SEGCORE = Path(sys.executable).parent / "segcore"
MODEL = "customer_segments"


def _start(workdir: Path, features: str, *extra: str, pause: str | None = None) -> subprocess.Popen:
    """`segcore train --force` as a scheduler starts it, on the feature table ``features`` and
    ``workdir``'s SQLite store."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    env.pop("MLFLOW_TRACKING_URI", None)
    if pause:
        env[PAUSE_ENV] = pause
    settings = [f"workdir={workdir}", f"features.output={features}", f"as_of={AS_OF}", "kmeans.k=3"]
    settings += ["select.stability_bootstraps=2", "value.backtest=false"]  # the workdir has no lake
    command = [
        str(SEGCORE),
        "train",
        "--force",
        *[arg for item in settings for arg in ("--set", item)],
        *extra,
    ]
    return subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def _signal_at(process: subprocess.Popen, marker: str, signum: int) -> tuple[int, str]:
    """Send ``signum`` once a stderr line contains ``marker``; the exit code and all of stderr."""
    seen = []
    for line in process.stderr:
        seen.append(line)
        if marker in line:
            process.send_signal(signum)
            break
    else:
        pytest.fail(f"`segcore train` ended before {marker!r}:\n{''.join(seen)[-3000:]}")
    _, rest = process.communicate(timeout=300)
    return process.returncode, "".join(seen) + rest


def _finish(process: subprocess.Popen) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=300)
    return process.returncode, stderr


def _runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("segcore")
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def _parents(client: MlflowClient) -> list:
    return [run for run in _runs(client) if "mlflow.parentRunId" not in run.data.tags]


def _assert_value_version_withdrawn(client: MlflowClient, parent_run_id: str) -> None:
    """The failed train had registered its value model (a child run) before it failed; the
    version is gone again, so no value version outlives the segment version it pairs with."""
    experiment = client.get_experiment_by_name("segcore")
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'")
    (value_run,) = [c for c in children if c.info.run_name.startswith("value-")]
    assert value_run.info.status == "FINISHED"
    assert (
        client.search_model_versions(f"name = 'customer_value' and run_id = '{value_run.info.run_id}'") == []
    )


def _aliases(client: MlflowClient) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(MODEL).aliases.items()}


@pytest.fixture(scope="module")
def faults(pipeline, tmp_path_factory):
    """The campaign, phase by phase (each needs the state the one before left), on the pipeline's
    feature table and a store that does not exist yet."""
    workdir = tmp_path_factory.mktemp("run-faults")
    features = pipeline["config"].path(pipeline["config"].features.output)
    assert not (workdir / "mlflow.db").exists()

    # 1. Two first-ever trains at once: both create the store's schema.
    first = [_start(workdir, features) for _ in range(2)]
    seen: dict = {
        "workdir": workdir,
        "features": features,
        "concurrent": [_finish(process) for process in first],
    }
    client = seen["client"] = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    seen["aliases_before"] = _aliases(client)

    # 2. Killed outright between registering its version and setting the alias.
    killed = _start(workdir, features, pause="register")
    seen["killed_pid"] = killed.pid
    seen["killed"] = _signal_at(killed, "segcore: paused at register", signal.SIGKILL)
    seen["killed_run"] = _parents(client)[-1]
    seen["after_kill"] = {str(v.version): v for v in client.search_model_versions(f"name = '{MODEL}'")}

    # 3. Stopped while it works; its start ends what the killed train left behind.
    stopped = _start(workdir, features)
    seen["stopped"] = _signal_at(stopped, "train: prepare features", signal.SIGTERM)
    seen["stopped_run"] = _parents(client)[-1]

    # 4. Stopped during registration.
    registering = _start(workdir, features, pause="register")
    seen["registering"] = _signal_at(registering, "segcore: paused at register", signal.SIGTERM)
    seen["registering_run"] = _parents(client)[-1]
    return seen


def test_two_first_trains_at_once_on_a_new_sqlite_store_both_succeed(faults):
    for code, stderr in faults["concurrent"]:
        assert code == 0, stderr[-3000:]
        assert "Traceback" not in stderr
    client = faults["client"]
    versions = client.search_model_versions(f"name = '{MODEL}'")
    assert {str(v.version) for v in versions} >= {"1", "2"}
    assert set(faults["aliases_before"]) == {"challenger", "champion"}
    assert set(faults["aliases_before"].values()) <= {"1", "2"}


def test_a_train_killed_after_registering_leaves_a_version_the_next_train_ends_with_its_run(faults):
    code, _ = faults["killed"]
    assert code == -signal.SIGKILL
    run = faults["killed_run"]
    # What the kill left (the fault as found): a RUNNING run and its version without an alias.
    assert run.info.status == "RUNNING"
    assert run.data.tags[HOST_TAG] == socket.gethostname()
    assert run.data.tags[PID_TAG] == str(faults["killed_pid"])
    left = [v for v in faults["after_kill"].values() if v.run_id == run.info.run_id]
    assert len(left) == 1 and str(left[0].version) not in faults["aliases_before"].values()
    # The next train reported and ended both.
    _, stderr = faults["stopped"]
    host, pid = socket.gethostname(), faults["killed_pid"]
    assert (
        f"run {run.info.run_id} ({run.info.run_name}) was left RUNNING by process {pid} on {host}, "
        "which no longer exists: ended it as KILLED"
    ) in stderr
    assert f"deleted version {left[0].version} of {MODEL}: its run {run.info.run_id} ended KILLED" in stderr
    client = faults["client"]
    ended = client.get_run(run.info.run_id)
    assert ended.info.status == "KILLED"
    assert ended.data.tags[FAILURE_TAG].startswith(f"left RUNNING by process {pid} on {host}")
    assert not client.search_model_versions(f"name = '{MODEL}' and run_id = '{run.info.run_id}'")


def test_sigterm_while_training_ends_the_run_killed_with_the_reason(faults):
    code, stderr = faults["stopped"]
    assert code == 128 + signal.SIGTERM, stderr[-3000:]
    assert stderr.rstrip().splitlines()[-1] == "segcore train: stopped by SIGTERM"
    assert "Traceback" not in stderr
    run = faults["client"].get_run(faults["stopped_run"].info.run_id)
    assert run.info.status == "KILLED"
    reason = run.data.tags[FAILURE_TAG]
    assert reason.startswith("stopped by SIGTERM (a scheduler or a user ended"), (reason, stderr[-3000:])
    assert not faults["client"].search_model_versions(f"name = '{MODEL}' and run_id = '{run.info.run_id}'")
    _assert_value_version_withdrawn(faults["client"], run.info.run_id)
    assert "withdrew version" in stderr


def test_sigterm_during_registration_deletes_the_version_and_gives_challenger_back(faults):
    code, stderr = faults["registering"]
    assert code == 128 + signal.SIGTERM, stderr[-3000:]
    assert "Traceback" not in stderr
    client = faults["client"]
    run = client.get_run(faults["registering_run"].info.run_id)
    assert run.info.status == "KILLED"
    assert "stopped by SIGTERM" in run.data.tags[FAILURE_TAG]
    assert not client.search_model_versions(f"name = '{MODEL}' and run_id = '{run.info.run_id}'")
    assert _aliases(client) == faults["aliases_before"]


def test_a_failing_train_ends_its_run_failed_with_the_reason(spark, lake, faults):
    config = make_config(faults["workdir"], lake, kmeans__k=100000, features__output=faults["features"])
    previous = mlflow.get_tracking_uri()
    try:
        with pytest.raises(TrainingError, match="kmeans.k=100000 is larger than the number of customers"):
            train_segments(spark, config)
    finally:
        mlflow.set_tracking_uri(previous)
    run = _parents(faults["client"])[-1]
    assert run.info.status == "FAILED"
    assert run.data.tags[FAILURE_TAG].startswith("TrainingError: kmeans.k=100000 is larger than the number")
    _assert_value_version_withdrawn(faults["client"], run.info.run_id)


def test_after_every_fault_no_run_is_running_and_every_version_comes_from_a_finished_run(faults):
    client = faults["client"]
    assert [run.info.run_name for run in _runs(client) if run.info.status == "RUNNING"] == []
    for version in client.search_model_versions(f"name = '{MODEL}'"):
        assert client.get_run(version.run_id).info.status == "FINISHED"
    assert _aliases(client) == faults["aliases_before"]  # the champion (and challenger) intact
