"""Everything MLflow: the tracking store, runs, the pyfunc model, registry versions and aliases."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

from segcore.config import Config, config_to_yaml
from segcore.errors import ModelError
from segcore.model import OUTPUT_COLUMNS, STATE_ARTIFACT, SegmentModel, SegmentPyfunc

CHALLENGER, CHAMPION = "challenger", "champion"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


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


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    uri: str
    is_champion: bool


def log_and_register(model: SegmentModel, registered_name: str) -> RegisteredModel:
    """Log the model in the active run, register a new version with alias ``challenger``, and
    make it ``champion`` too when the model has none yet."""
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp, "segment_model.json")
        state.write_text(model.to_json())
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=SegmentPyfunc(),
            artifacts={STATE_ARTIFACT: str(state)},
            signature=signature(model.features),
            # Segment centres in original units: aggregates, never a customer's row.
            input_example=pd.DataFrame(model.preparation.inverse(model.centres), columns=model.features),
            registered_model_name=registered_name,
            pip_requirements=["segcore", "mlflow", "numpy", "pandas", "scipy"],
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_registered_model_alias(registered_name, CHALLENGER, version)
    champion = _alias_version(client, registered_name, CHAMPION)
    if champion is None:
        client.set_registered_model_alias(registered_name, CHAMPION, version)
    return RegisteredModel(registered_name, version, f"models:/{registered_name}/{version}", champion is None)


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
