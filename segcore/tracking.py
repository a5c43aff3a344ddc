"""Everything MLflow: the tracking store, runs, the pyfunc model, registry versions and aliases."""

from __future__ import annotations

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
from segcore.model import OUTPUT_COLUMNS, STATE_ARTIFACT, SegmentModel

CHALLENGER, CHAMPION = "challenger", "champion"
# What the model's code imports (segcore.model and segcore.prepare), pinned at the training
# environment's versions; segcore itself travels with the model as code.
MODEL_REQUIREMENTS = ("mlflow", "numpy", "pandas", "scipy", "scikit-learn", "pyarrow", "pyspark")
SEGCORE_SOURCE = Path(segcore.__file__).parent
MODEL_CODE = SEGCORE_SOURCE / "pyfunc_model.py"
# Registered-model tag: the first segment id no version of the model has used (see segcore.align).
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
            MlflowClient(uri).search_experiments(max_results=1)
        except Exception as exc:  # requests, SQLAlchemy and MLflow errors alike mean "not usable"
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise EnvironmentProblem(
                f"MLflow tracking server {uri} is not usable: {reason}. Start it, or set "
                "mlflow.tracking_uri (or MLFLOW_TRACKING_URI) to a reachable MLflow server"
            ) from None


def use_tracking(config: Config) -> MlflowClient:
    """Point MLflow at the configured store and make sure the experiment exists."""
    uri = config.tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    if client.get_experiment_by_name(config.mlflow.experiment) is None:
        location = config.artifact_location() if uri.startswith("sqlite:") else None
        client.create_experiment(config.mlflow.experiment, artifact_location=location)
    mlflow.set_experiment(config.mlflow.experiment)
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


def log_and_register(
    model: SegmentModel, registered_name: str, version_tags: dict[str, str]
) -> RegisteredModel:
    """Log the model in the active run, register a new version (tagged ``version_tags``) with alias
    ``challenger``, make it ``champion`` too when the model has none yet, and raise the registered
    model's ``next_segment_id`` tag past the ids this version uses."""
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
            registered_model_name=registered_name,
            pip_requirements=pinned_requirements(),
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    next_id = max(next_free_id(registered_name), model.next_id)
    client.set_registered_model_tag(registered_name, NEXT_ID_TAG, str(next_id))
    for key, value in version_tags.items():
        client.set_model_version_tag(registered_name, version, key, value)
    client.set_registered_model_alias(registered_name, CHALLENGER, version)
    champion = _alias_version(client, registered_name, CHAMPION)
    if champion is None:
        client.set_registered_model_alias(registered_name, CHAMPION, version)
    return RegisteredModel(registered_name, version, f"models:/{registered_name}/{version}", champion is None)


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
