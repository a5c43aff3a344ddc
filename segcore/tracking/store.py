"""Everything MLflow: the tracking store, runs, the pyfunc model, registry versions and aliases."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

import segcore
from segcore.config import Config, config_to_yaml
from segcore.errors import EnvironmentProblem, ModelError
from segcore.model.segment_model import OUTPUT_COLUMNS, STATE_ARTIFACT, SegmentModel
from segcore.runtime.crash_points import pause
from segcore.runtime.logs import log
from segcore.runtime.stopping import signals_held
from segcore.tracking.lifecycle import TrackedRun

CHALLENGER, CHAMPION = "challenger", "champion"
# What the model's code imports (segcore.model), pinned at the training
# environment's versions; segcore itself travels with the model as code.
MODEL_REQUIREMENTS = ("mlflow", "numpy", "pandas", "scipy", "scikit-learn", "pyarrow", "pyspark")
SEGCORE_SOURCE = Path(segcore.__file__).parent
MODEL_CODE = SEGCORE_SOURCE / "model" / "pyfunc.py"
# Registered-model tag: the first segment id no version of the model has used (see segcore.train.align).
NEXT_ID_TAG = "next_segment_id"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# The start-of-stage probe: one attempt, answered within this many seconds, not MLflow's minutes of retries.
PROBE_TIMEOUT_S = 10


@contextmanager
def _one_quick_attempt() -> Iterator[None]:
    overrides = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(PROBE_TIMEOUT_S)}
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


def check_tracking(config: Config) -> None:
    """Make sure the tracking store answers before any expensive work, within about
    ``PROBE_TIMEOUT_S``: an unreachable, misconfigured or refusing store is exit code 3."""
    uri = config.tracking_uri()
    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
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
            raise EnvironmentProblem(
                f"MLflow tracking server {uri} is not usable: {reason}. Start it, or set "
                "mlflow.tracking_uri (or MLFLOW_TRACKING_URI) to a reachable MLflow server"
            ) from None


@contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """For a SQLite store, an exclusive lock on the file ``<db>.lock`` beside it (others: none)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    with open(uri.removeprefix("sqlite:///") + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _open_store(uri: str) -> None:
    """Reach the store; a new SQLite file gets its schema here, under the store's file lock, so
    that trains starting together on a new store do not race MLflow's schema migrations."""
    with _store_lock(uri):
        client = MlflowClient(uri)  # a SQLite store is created with the client
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)


def use_tracking(config: Config) -> MlflowClient:
    """Point MLflow at the configured store and make sure the experiment exists."""
    uri = config.tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    _open_store(uri)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    name = config.mlflow.experiment
    if client.get_experiment_by_name(name) is None:
        location = config.artifact_location() if uri.startswith("sqlite:") else None
        try:
            client.create_experiment(name, artifact_location=location)
        except MlflowException:
            if client.get_experiment_by_name(name) is None:
                raise  # not a train that created it at the same moment
    mlflow.set_experiment(name)
    return client


def signature(features: list[str]) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([ColSpec("double", name) for name in features]),
        outputs=Schema([ColSpec(kind, name) for name, kind in OUTPUT_COLUMNS.items()]),
    )


def log_config(config: Config) -> None:
    mlflow.log_text(config_to_yaml(config), "config/resolved.yaml")


def log_bytes(data: bytes, artifact_path: str) -> None:
    """Log ``data`` as the artifact file ``artifact_path`` of the active run."""
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp, Path(artifact_path).name)
        file.write_bytes(data)
        mlflow.log_artifact(str(file), str(Path(artifact_path).parent))


def log_table(frame: pd.DataFrame, artifact_path: str) -> None:
    log_bytes(frame.to_csv(index=False).encode(), artifact_path)


def pinned_requirements() -> list[str]:
    """The model's requirements at the versions installed here, where it is trained."""
    return [f"{name}=={metadata.version(name)}" for name in MODEL_REQUIREMENTS]


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    uri: str
    is_champion: bool


def log_model(model: SegmentModel) -> str:
    """Log the model in the active run, not registered yet; returns its model URI."""
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp, "segment_model.json")
        state.write_text(model.to_json())
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            code_paths=[str(SEGCORE_SOURCE)],
            artifacts={STATE_ARTIFACT: str(state)},
            signature=signature(model.features),
            # Segment centres in original units: aggregates, never a customer's row.
            input_example=pd.DataFrame(model.preparation.inverse(model.centres), columns=model.features),
            pip_requirements=pinned_requirements(),
        )
    return info.model_uri


def _create_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def register(
    model_uri: str, name: str, next_id: int, version_tags: dict[str, str], run: TrackedRun
) -> RegisteredModel:
    """The last step of training ``run``: raise the model's ``next_segment_id`` tag to at least
    ``next_id``, register ``model_uri`` as a new version of model ``name`` (tagged
    ``version_tags``) with alias ``challenger`` (``champion`` too when the model has none yet), tag
    the run with it and end the run FINISHED. Anything that stops this before the run has ended
    (an error, SIGTERM, SIGINT) deletes the version again and gives ``challenger`` back to the
    version that had it; a process killed outright in between leaves that to the next train
    (:func:`segcore.tracking.lifecycle.delete_unfinished_versions`)."""
    client = MlflowClient()
    _create_registered_model(client, name)
    client.set_registered_model_tag(name, NEXT_ID_TAG, str(max(next_free_id(name), next_id)))
    previous = _alias_version(client, name, CHALLENGER)
    version = str(mlflow.register_model(model_uri, name, tags=version_tags).version)
    try:
        pause("register")
        client.set_registered_model_alias(name, CHALLENGER, version)
        champion = _alias_version(client, name, CHAMPION)
        if champion is None:
            client.set_registered_model_alias(name, CHAMPION, version)
        mlflow.set_tag("model_version", version)
        run.finish()
    except BaseException:
        if not run.finished:
            with signals_held():
                _unregister(client, name, version, previous)
        raise
    return RegisteredModel(name, version, f"models:/{name}/{version}", champion is None)


def _unregister(client: MlflowClient, name: str, version: str, previous_challenger: str | None) -> None:
    try:
        client.delete_model_version(name, version)  # its aliases go with it
        if previous_challenger is not None:
            client.set_registered_model_alias(name, CHALLENGER, previous_challenger)
    except Exception as exc:  # the store itself failed: the next train deletes the version
        log.error("could not delete version %s of %s, registered without its alias: %s", version, name, exc)


def next_free_id(name: str) -> int:
    """The first segment id that no registered version of model ``name`` has used, champion or
    not (0 when the model is not registered yet)."""
    try:
        tags = MlflowClient().get_registered_model(name).tags
    except MlflowException:
        return 0
    return int(tags.get(NEXT_ID_TAG, 0))


def find_version(name: str, tag: str, value: str) -> RegisteredModel | None:
    """The newest version of model ``name`` tagged ``tag=value``, if any."""
    client = MlflowClient()
    try:
        found = client.search_model_versions(f"name = '{name}' and tags.{tag} = '{value}'")
    except MlflowException:
        return None  # no such registered model yet
    if not found:
        return None
    newest = max(found, key=lambda v: int(v.version))
    champion = _alias_version(client, name, CHAMPION)
    return RegisteredModel(
        name, str(newest.version), f"models:/{name}/{newest.version}", champion == str(newest.version)
    )


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def resolve_model(config: Config, version: str | None = None) -> tuple[str, str]:
    """The model URI and version to score with: an explicit version, else the configured one,
    else the configured alias (``champion``)."""
    client = use_tracking(config)
    name = config.mlflow.registered_model
    version = version or config.score.model_version
    if version is None:
        version = _alias_version(client, name, config.score.model_alias)
        if version is None:
            raise ModelError(
                f"registered model '{name}' has no alias '{config.score.model_alias}' in "
                f"{config.tracking_uri()}: run `segcore train` first, or pass --model-version"
            )
    else:
        try:
            client.get_model_version(name, version)
        except MlflowException:
            raise ModelError(
                f"registered model '{name}' has no version {version} in {config.tracking_uri()}"
            ) from None
    return f"models:/{name}/{version}", version


def load_segment_model(model_uri: str) -> SegmentModel:
    """The model's state, read from its JSON artifact."""
    model = mlflow.pyfunc.load_model(model_uri)
    return model.unwrap_python_model().model


def alias_version(name: str, alias: str) -> str | None:
    """The version of registered model ``name`` that holds ``alias``, if any."""
    return _alias_version(MlflowClient(), name, alias)
