"""The MLflow tracking store: probed before a stage's expensive work, then opened once per stage
as a :class:`Tracking` that every tracking function takes explicitly."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from segcore.config import Config
from segcore.errors import ConfigError, EnvironmentProblem
from segcore.runtime.file_lock import exclusive_lock

# The start-of-stage probe: one attempt, answered within this many seconds, not MLflow's minutes of retries.
PROBE_TIMEOUT_S = 10


# Held while the probe's settings are in the environment: threads of one process probe in turn, so
# that none takes another's settings for the process's own and leaves MLflow without its retries.
_ONE_PROBE_AT_A_TIME = threading.Lock()


@contextmanager
def _one_quick_attempt() -> Iterator[None]:
    """MLflow's HTTP requests within it: one attempt each, answered within ``PROBE_TIMEOUT_S``."""
    overrides = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(PROBE_TIMEOUT_S)}
    with _ONE_PROBE_AT_A_TIME:
        saved = {key: os.environ.get(key) for key in overrides}
        os.environ.update(overrides)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a SQLite store's URI (None for a server)."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def check_tracking(config: Config, creates: bool = False) -> None:
    """Make sure the tracking store answers before any expensive work, within about
    ``PROBE_TIMEOUT_S``: an unreachable, misconfigured or refusing store is exit code 3. A SQLite
    store is created only by a stage that ``creates`` records (train, drift, audiences, lift); to a
    stage that reads trained versions or runs a missing file is a wrong path (exit 2), not an empty
    store to make."""
    uri = config.tracking_uri()
    database = _sqlite_file(uri)
    if database is not None:
        if not creates and not database.is_file():
            raise ConfigError(
                f"no MLflow tracking store at {uri}: run `segcore train` first, or point --set workdir "
                "(or mlflow.tracking_uri) at the workdir a train used"
            )
        try:
            database.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentProblem(
                f"MLflow tracking store {uri}: cannot create its folder ({exc.strerror}): "
                "set mlflow.tracking_uri or MLFLOW_TRACKING_URI to a writable location"
            ) from None
    with _one_quick_attempt():
        try:
            _open_store(uri)
        except Exception as exc:  # requests, SQLAlchemy and MLflow errors alike mean "not usable"
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            server = not uri.startswith("sqlite:")
            remedy = (
                "Start it, or set mlflow.tracking_uri (or MLFLOW_TRACKING_URI) to a reachable MLflow server"
                if server
                else "Set mlflow.tracking_uri (or MLFLOW_TRACKING_URI) to a usable store"
            )
            raise EnvironmentProblem(
                f"MLflow tracking {'server' if server else 'store'} {uri} is not usable: {reason}. {remedy}"
            ) from None


@contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """For a SQLite store, an exclusive lock on the file ``<db>.lock`` beside it (others: none)."""
    database = _sqlite_file(uri)
    if database is None:
        yield
        return
    with exclusive_lock(f"{database}.lock"):
        yield


def _open_store(uri: str) -> None:
    """Reach the store; a new SQLite file gets its schema here, under the store's file lock, so
    that trains starting together on a new store do not race MLflow's schema migrations."""
    with _store_lock(uri):
        client = MlflowClient(uri)  # a SQLite store is created with the client
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)


@dataclass(frozen=True)
class Tracking:
    """An open tracking store: a client of it, the experiment and the registered model of the config."""

    uri: str
    client: MlflowClient
    experiment_id: str
    model_name: str

    def model_uri(self, version: str) -> str:
        return f"models:/{self.model_name}/{version}"


def store_client(uri: str) -> MlflowClient:
    """A client of the store at ``uri``, for tools that inspect it (the fault campaign)."""
    return MlflowClient(uri)


def open_tracking(config: Config) -> Tracking:
    """The configured store, with its experiment created if need be. It is also the one place that
    points MLflow's process-wide API (runs, model logging, ``models:/`` URIs) at the store."""
    uri = config.tracking_uri()
    database = _sqlite_file(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    _open_store(uri)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    name = config.mlflow.experiment
    if client.get_experiment_by_name(name) is None:
        location = config.artifact_location() if uri.startswith("sqlite:") else None
        try:
            client.create_experiment(name, artifact_location=location)
        except MlflowException:
            if client.get_experiment_by_name(name) is None:
                raise  # not a train that created it at the same moment
    experiment = mlflow.set_experiment(name)
    return Tracking(uri, client, experiment.experiment_id, config.mlflow.registered_model)
