"""The registered models (segments, and customer value): logging a version from code, registering
it with its aliases, resolving and loading versions, and the segment pyfunc as a Spark UDF."""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.utils.logging_utils import disable_logging, enable_logging

import segcore
from segcore.config import ScoreConfig
from segcore.errors import ModelError
from segcore.model.segment_model import OUTPUT_COLUMNS, STATE_ARTIFACT, SegmentModel
from segcore.runtime.crash_points import pause
from segcore.runtime.logs import log
from segcore.runtime.stopping import signals_held
from segcore.tracking.lifecycle import TrackedRun
from segcore.tracking.store import Tracking
from segcore.value.inputs import INPUT_COLUMNS
from segcore.value.model import STATE_ARTIFACT as VALUE_STATE_ARTIFACT
from segcore.value.model import ValueModel
from segcore.value.scores import SCORE_COLUMNS

CHALLENGER, CHAMPION = "challenger", "champion"
# What the model's code imports (segcore.model), pinned at the training environment's versions;
# segcore itself travels with the model as code.
MODEL_REQUIREMENTS = (
    "mlflow",
    "numpy",
    "array-api-compat",
    "pandas",
    "scipy",
    "scikit-learn",
    "pyarrow",
    "pyspark",
)
SET_TRIES = 3  # an alias or a tag set by several processes at once: see _set
SEGCORE_SOURCE = Path(segcore.__file__).parent
MODEL_CODE = SEGCORE_SOURCE / "model" / "pyfunc.py"
VALUE_MODEL_CODE = SEGCORE_SOURCE / "value" / "pyfunc.py"


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    uri: str
    is_champion: bool
    replaced_challenger: str | None = None  # the version that held ``challenger`` before this one


def signature(inputs: dict[str, str], outputs: dict[str, str]) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([ColSpec(kind, name) for name, kind in inputs.items()]),
        outputs=Schema([ColSpec(kind, name) for name, kind in outputs.items()]),
    )


def pinned_requirements() -> list[str]:
    """The model's requirements at the versions installed here, where it is trained."""
    return [f"{name}=={metadata.version(name)}" for name in MODEL_REQUIREMENTS]


def _log_from_code(
    code: Path, state_name: str, state_json: str, model_signature: ModelSignature, example: pd.DataFrame
) -> str:
    """Log a pyfunc model built by ``code`` from its JSON state in the active run; returns its URI."""
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp, f"{state_name}.json")
        state.write_text(state_json)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            code_paths=[str(SEGCORE_SOURCE)],
            artifacts={state_name: str(state)},
            signature=model_signature,
            input_example=example,
            pip_requirements=pinned_requirements(),
        )
    return info.model_uri


# The value model's example input: made-up customers (one-time buyer, a regular, a lapsed regular).
VALUE_EXAMPLE = pd.DataFrame(
    [[0.0, 0.0, 30.0, 0.0], [6.0, 170.0, 180.0, 45.0], [6.0, 60.0, 180.0, 45.0]], columns=list(INPUT_COLUMNS)
)


def log_model(model: SegmentModel) -> str:
    """Log the segment model in the active run, not registered yet; returns its model URI. Its
    input is the feature table's columns it reads (value inputs for the value features it derives)."""
    inputs = model.preparation.inputs
    # Segment centres in original units: aggregates, never a customer's row; value inputs (where
    # the model derives value features) of the made-up regular customer of VALUE_EXAMPLE.
    centres = pd.DataFrame(model.preparation.inverse(model.centres), columns=model.features)
    regular = VALUE_EXAMPLE.iloc[1]
    example = centres.assign(**{c: regular[c] for c in inputs if c not in centres.columns})[inputs]
    return _log_from_code(
        MODEL_CODE,
        STATE_ARTIFACT,
        model.to_json(),
        signature(dict.fromkeys(inputs, "double"), OUTPUT_COLUMNS),
        example,
    )


def log_value_model(model: ValueModel) -> str:
    """Log the customer value model in the active run, not registered yet; returns its model URI."""
    return _log_from_code(
        VALUE_MODEL_CODE,
        VALUE_STATE_ARTIFACT,
        model.to_json(),
        signature(dict.fromkeys(INPUT_COLUMNS, "double"), SCORE_COLUMNS),
        VALUE_EXAMPLE,
    )


@contextmanager
def _registration_notes_at_mlflow_level() -> Iterator[None]:
    """MLflow prints its registration notes ("Registered model ... already exists", "Created version
    ...") past its loggers: off while its loggers are above INFO, as the CLI sets them (ERROR, or
    WARNING with --verbose). MLflow's stream is process-wide: its other output pauses for the moment."""
    if logging.getLogger("mlflow").isEnabledFor(logging.INFO):
        yield
        return
    disable_logging()
    try:
        yield
    finally:
        enable_logging()


def create_registered_model(tracking: Tracking) -> None:
    """Create the registered model unless it exists (two first trains may both try at once)."""
    try:
        tracking.client.create_registered_model(tracking.model_name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def register(
    tracking: Tracking,
    model_uri: str,
    version_tags: dict[str, str],
    run: TrackedRun,
    pause_at: str = "register",
) -> RegisteredModel:
    """The last step of training ``run``: register ``model_uri`` as a new version (tagged
    ``version_tags``) with alias ``challenger`` (``champion`` too when the model has none yet), tag
    the run with it and end the run FINISHED. Anything that stops this before the run has ended (an
    error, SIGTERM, SIGINT) deletes the version again and gives ``challenger`` back to the version
    that had it; a process killed outright in between leaves that to the next train
    (:func:`segcore.tracking.lifecycle.delete_unfinished_versions`)."""
    name = tracking.model_name
    create_registered_model(tracking)
    previous, version = alias_version(tracking, CHALLENGER), None
    try:
        # A signal that lands while the version is created deletes it, once created.
        with signals_held(), _registration_notes_at_mlflow_level():
            version = str(mlflow.register_model(model_uri, name, tags=version_tags).version)
        pause(pause_at)
        set_alias(tracking, CHALLENGER, version)
        champion = alias_version(tracking, CHAMPION)
        if champion is None:
            set_alias(tracking, CHAMPION, version)
        run.set_tags({"model_version": version})
        run.finish()
    except BaseException:
        if version is not None and not run.finished:
            with signals_held():
                _unregister(tracking, version, previous)
        raise
    return RegisteredModel(name, version, tracking.model_uri(version), champion is None, previous)


def withdraw(tracking: Tracking, registered: RegisteredModel) -> None:
    """Delete a version that ``register`` made, giving ``challenger`` back: its training failed later."""
    _unregister(tracking, registered.version, registered.replaced_challenger)
    log.warning(
        "train: withdrew version %s of %s: the training failed after registering it",
        registered.version,
        registered.name,
    )


def _unregister(tracking: Tracking, version: str, previous_challenger: str | None) -> None:
    client, name = tracking.client, tracking.model_name
    try:
        client.delete_model_version(name, version)  # its aliases go with it
        if previous_challenger is not None:
            set_alias(tracking, CHALLENGER, previous_challenger)
    except Exception as exc:  # the store itself failed: the next train deletes the version
        log.error("could not delete version %s of %s, registered without its alias: %s", version, name, exc)


def find_version(tracking: Tracking, tag: str, value: str) -> RegisteredModel | None:
    """The newest version of the model tagged ``tag=value``, if any."""
    name = tracking.model_name
    try:
        found = tracking.client.search_model_versions(f"name = '{name}' and tags.{tag} = '{value}'")
    except MlflowException:
        return None  # no such registered model yet
    if not found:
        return None
    newest = str(max(int(v.version) for v in found))
    return RegisteredModel(
        name, newest, tracking.model_uri(newest), alias_version(tracking, CHAMPION) == newest
    )


def alias_version(tracking: Tracking, alias: str) -> str | None:
    """The version of the model that holds ``alias``, if any."""
    try:
        return str(tracking.client.get_model_version_by_alias(tracking.model_name, alias).version)
    except MlflowException:
        return None


def existing_version(tracking: Tracking, version: str) -> str:
    """``version`` as registered, or :class:`ModelError` naming the model and store."""
    try:
        return str(tracking.client.get_model_version(tracking.model_name, version).version)
    except MlflowException:
        raise ModelError(
            f"registered model '{tracking.model_name}' has no version {version} in {tracking.uri}: "
            "`segcore runs` lists the versions"
        ) from None


def latest_version(tracking: Tracking) -> str:
    """The newest version of the model, or :class:`ModelError` when there is none."""
    versions = tracking.client.search_model_versions(f"name = '{tracking.model_name}'")
    if not versions:
        raise ModelError(
            f"registered model '{tracking.model_name}' has no versions: run `segcore train` first"
        )
    return str(max(int(v.version) for v in versions))


def resolve_version(tracking: Tracking, score: ScoreConfig, version: str | None = None) -> str:
    """The version scoring applies: ``version`` if given, else ``score.model_version`` (either
    registered), else the version holding ``score.model_alias``."""
    version = version or score.model_version
    if version is not None:
        return existing_version(tracking, version)
    alias = score.model_alias
    found = alias_version(tracking, alias)
    if found is None:
        raise ModelError(
            f"registered model '{tracking.model_name}' has no alias '{alias}' in {tracking.uri}: "
            "run `segcore train` first, or pass --model-version"
        )
    return found


def version_run_id(tracking: Tracking, version: str) -> str:
    """The training run that registered ``version``."""
    return tracking.client.get_model_version(tracking.model_name, version).run_id


def load_segment_model(model_uri: str) -> SegmentModel:
    """The model's state, read from its JSON artifact."""
    return _wrapped_state(model_uri)


def load_value_model(model_uri: str) -> ValueModel:
    """The customer value model's state, read from its JSON artifact."""
    return _wrapped_state(model_uri)


def _wrapped_state(model_uri: str) -> SegmentModel | ValueModel:
    """The state that a registered pyfunc version wraps. Loading puts the version's logged copy of
    segcore first on ``sys.path``; this process already runs its own, and the processes it starts
    later must import that one too, so the path is put back."""
    path = list(sys.path)
    try:
        return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().model
    finally:
        sys.path[:] = path


def load_version(tracking: Tracking, version: str) -> SegmentModel:
    """Version ``version`` of the model, or :class:`ModelError` when it cannot be loaded."""
    try:
        return load_segment_model(tracking.model_uri(version))
    except MlflowException as exc:
        raise ModelError(f"cannot load version {version} of '{tracking.model_name}': {exc.message}") from None


def load_alias(tracking: Tracking, alias: str) -> SegmentModel | None:
    """The version of the model holding ``alias``, or None where no version holds it."""
    version = alias_version(tracking, alias)
    return None if version is None else load_version(tracking, version)


def set_alias(tracking: Tracking, alias: str, version: str) -> None:
    _set(tracking.client.set_registered_model_alias, tracking.model_name, alias, version)


def tag_version(tracking: Tracking, version: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        _set(tracking.client.set_model_version_tag, tracking.model_name, version, key, value)


def _set(write: Callable[..., object], *args: str) -> None:
    """Run ``write(*args)``, which sets an alias or a tag. MLflow's SQL store looks the alias or tag up
    and inserts it where it found none: two processes setting the same one at once can both
    insert, and the store refuses the second (a unique key). Setting is idempotent, so a refused
    write is tried again, :data:`SET_TRIES` times in all: the last one wins, as if the two had come
    one after the other."""
    for attempt in range(1, SET_TRIES + 1):
        try:
            write(*args)
            return
        except MlflowException:
            if attempt == SET_TRIES:
                raise
            time.sleep(0.05 * attempt)
