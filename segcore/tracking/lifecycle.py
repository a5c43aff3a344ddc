"""MLflow runs that always end: FINISHED, or FAILED (an exception) or KILLED (SIGTERM, SIGINT)
with the reason in the tag ``failure_reason``; and runs that a process killed outright (SIGKILL,
a lost node) left RUNNING, ended by the next train on that host together with any model version
such a run registered without its alias."""

from __future__ import annotations

import math
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException

from segcore.config import Config, config_to_yaml
from segcore.runtime.logs import log
from segcore.runtime.processes import ProcessIdentity
from segcore.runtime.stopping import Stopped, signals_held, stop_on_signals, stopped_by
from segcore.tracking.store import Tracking

HOST_TAG, PID_TAG, STARTED_TAG = "segcore.host", "segcore.pid", "segcore.process_started"
FAILURE_TAG = "failure_reason"
# How many of the newest versions without an alias are checked for a run that never finished.
RECENT_VERSIONS = 50


def process_tags() -> dict[str, str]:
    """Which process runs the run (host, pid, start time), so a later train can tell whether it
    still runs, even where its pid was given to another process since."""
    me = ProcessIdentity.current()
    return {HOST_TAG: me.host, PID_TAG: str(me.pid), STARTED_TAG: me.started or ""}


def _recorded_process(tags: Mapping[str, str]) -> ProcessIdentity:
    return ProcessIdentity(tags.get(HOST_TAG, ""), int(tags.get(PID_TAG, "0")), tags.get(STARTED_TAG) or None)


def failure_reason(exc: BaseException) -> str:
    """What tag ``failure_reason`` says about ``exc``."""
    if isinstance(exc, Stopped):
        return f"{exc} (a scheduler or a user ended process {os.getpid()} on {socket.gethostname()})"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (SIGINT)"
    text = str(exc).strip() or "no message"
    return f"{type(exc).__name__}: {text}"[:4000]


class TrackedRun:
    """The active run of :func:`tracked_run`, and what a stage records in it: parameters, metrics
    (NaN left out), tags and artifacts, through the store's client with the run's id."""

    def __init__(self, tracking: Tracking, run: mlflow.ActiveRun):
        self.tracking, self.info, self.finished = tracking, run.info, False

    @property
    def run_id(self) -> str:
        return self.info.run_id

    def log_params(self, params: Mapping[str, object]) -> None:
        batch = [Param(key, str(value)) for key, value in params.items()]
        self.tracking.client.log_batch(self.run_id, params=batch)

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Log ``metrics``, leaving out NaN (a metric a fit could not measure)."""
        now = int(time.time() * 1000)
        batch = [Metric(key, float(v), now, 0) for key, v in metrics.items() if not math.isnan(float(v))]
        self.tracking.client.log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.tracking.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_text(self, text: str, artifact_path: str) -> None:
        self.tracking.client.log_text(self.run_id, text, artifact_path)

    def log_bytes(self, data: bytes, artifact_path: str) -> None:
        """Log ``data`` as the artifact file ``artifact_path``."""
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp, Path(artifact_path).name)
            file.write_bytes(data)
            self.tracking.client.log_artifact(self.run_id, str(file), str(Path(artifact_path).parent))

    def log_table(self, frame: pd.DataFrame, artifact_path: str) -> None:
        self.log_bytes(frame.to_csv(index=False).encode(), artifact_path)

    def log_config(self, config: Config) -> None:
        self.log_text(config_to_yaml(config), "config/resolved.yaml")

    def finish(self) -> None:
        """End the run FINISHED now; a SIGTERM or SIGINT meanwhile waits until that is recorded."""
        with signals_held():
            mlflow.end_run(RunStatus.to_string(RunStatus.FINISHED))
            self.finished = True


@contextmanager
def tracked_run(tracking: Tracking, run_name: str, nested: bool = False) -> Iterator[TrackedRun]:
    """An MLflow run tagged with this host and process id, that ends FINISHED (at the end, or
    where the body calls ``finish``), or FAILED on an exception or KILLED on SIGTERM/SIGINT
    before that, with the reason in tag ``failure_reason``."""
    with stop_on_signals():
        run = None
        try:
            with signals_held():  # a signal that lands while the run is created ends it, once created
                started = mlflow.start_run(
                    experiment_id=tracking.experiment_id,
                    run_name=run_name,
                    nested=nested,
                    tags=process_tags(),
                )
                run = TrackedRun(tracking, started)
            yield run
        except BaseException as exc:
            if run is not None and not run.finished:
                with signals_held():  # a second signal must not cut the ending short
                    _end_failed(run, exc)
            raise
        if not run.finished:
            run.finish()


def _end_failed(run: TrackedRun, exc: BaseException) -> None:
    """End ``run`` FAILED or KILLED through the store's client: MLflow's fluent ``end_run`` may
    consult the Spark session, whose connection a signal can have cut mid-call."""
    exc = stopped_by(exc) or exc
    status = RunStatus.to_string(RunStatus.KILLED if isinstance(exc, Stopped) else RunStatus.FAILED)
    try:
        run.tracking.client.set_tag(run.run_id, FAILURE_TAG, failure_reason(exc))
        run.tracking.client.set_terminated(run.run_id, status)
    except Exception as problem:  # the store itself failed: the next train ends the run
        log.error("could not end MLflow run %s as %s: %s", run.run_id, status, problem)
    with suppress(Exception):  # the run is ended in the store; only MLflow's active-run stack is left
        mlflow.end_run(status)


def end_abandoned_runs(tracking: Tracking) -> list[str]:
    """End as KILLED, and report, the runs on this host left RUNNING by a process that no longer
    exists; returns their ids."""
    client, experiment_id = tracking.client, tracking.experiment_id
    host = socket.gethostname()
    query = f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"
    ended = []
    for run in client.search_runs([experiment_id], query, max_results=1000):
        process = _recorded_process(run.data.tags)
        if process.running():
            continue
        pid = process.pid
        reason = f"left RUNNING by process {pid} on {host}, which no longer exists: ended by a later train"
        client.set_tag(run.info.run_id, FAILURE_TAG, reason)
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        log.warning(
            "train: run %s (%s) was left RUNNING by process %d on %s, which no longer exists: "
            "ended it as KILLED",
            run.info.run_id,
            run.info.run_name,
            pid,
            host,
        )
        ended.append(run.info.run_id)
    return ended


def delete_unfinished_versions(tracking: Tracking) -> list[str]:
    """Delete, and report, recent versions of the model that have no alias and whose run (in the
    experiment) ended FAILED or KILLED: it stopped between registering and the alias."""
    client, name, experiment_id = tracking.client, tracking.model_name, tracking.experiment_id
    try:
        aliased = {str(version) for version in client.get_registered_model(name).aliases.values()}
    except MlflowException:
        return []  # not registered yet
    versions = client.search_model_versions(f"name = '{name}'")
    loose = [v for v in versions if v.run_id and str(v.version) not in aliased]
    loose = sorted(loose, key=lambda v: int(v.version))[-RECENT_VERSIONS:]
    if not loose:
        return []
    ids = ", ".join(f"'{v.run_id}'" for v in loose)
    runs = client.search_runs([experiment_id], f"attributes.run_id IN ({ids})", max_results=RECENT_VERSIONS)
    unfinished = {r.info.run_id: r.info.status for r in runs if r.info.status in ("FAILED", "KILLED")}
    deleted = []
    for version in loose:
        if version.run_id in unfinished:
            client.delete_model_version(name, version.version)
            log.warning(
                "train: deleted version %s of %s: its run %s ended %s before giving it its alias",
                version.version,
                name,
                version.run_id,
                unfinished[version.run_id],
            )
            deleted.append(str(version.version))
    return deleted
