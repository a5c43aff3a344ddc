"""Reading a finished run back: its tags and the artifacts a report is rebuilt from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from segcore.errors import SegcoreError
from segcore.tracking.registry import alias_version
from segcore.tracking.store import Tracking

LIFT_ARTIFACT = "lift/lift.csv"  # written by segcore.lift.stage


@dataclass(frozen=True)
class RunReportInputs:
    """What a training run logged for its report."""

    run_name: str
    summary: str
    plots: dict[str, bytes]  # file name -> PNG
    profile: pd.DataFrame


def check_run(tracking: Tracking, run_id: str) -> None:
    """:class:`SegcoreError` (exit 2) naming the store when ``run_id`` is not a run of it."""
    try:
        tracking.client.get_run(run_id)
    except MlflowException as exc:
        raise SegcoreError(f"run {run_id} has no report inputs in {tracking.uri}: {exc.message}") from None


def report_inputs(tracking: Tracking, run_id: str, folder: Path) -> RunReportInputs:
    """Download the plots and the profile table that training run ``run_id`` logged, into ``folder``."""
    try:
        run = tracking.client.get_run(run_id)
        plots, profile = (
            Path(
                mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=path, dst_path=str(folder), tracking_uri=tracking.uri
                )
            )
            for path in ("plots", "profile/segment_profile.csv")
        )
    except MlflowException as exc:
        raise SegcoreError(f"run {run_id} has no report inputs in {tracking.uri}: {exc.message}") from None
    images = {file.name: file.read_bytes() for file in sorted(plots.glob("*.png"))}
    return RunReportInputs(run.info.run_name, run.data.tags.get("summary", ""), images, pd.read_csv(profile))


@dataclass(frozen=True)
class ValueReportInputs:
    """What the value model's run beside a training run logged for the report."""

    version: str
    metrics: dict[str, float]
    calibration_plot: bytes | None  # None when the run has no backtest


def value_report_inputs(
    tracking: Tracking, run_id: str, value_model: str, folder: Path
) -> ValueReportInputs | None:
    """The value run of training run ``run_id`` (tag ``value_model_version``), None without one."""
    version = tracking.client.get_run(run_id).data.tags.get("value_model_version")
    if version is None:
        return None
    value_run = tracking.client.get_model_version(value_model, version).run_id
    metrics = tracking.client.get_run(value_run).data.metrics
    try:
        plot = mlflow.artifacts.download_artifacts(
            run_id=value_run,
            artifact_path="value/backtest_calibration.png",
            dst_path=str(folder),
            tracking_uri=tracking.uri,
        )
    except MlflowException:
        return ValueReportInputs(version, metrics, None)
    return ValueReportInputs(version, metrics, Path(plot).read_bytes())


def log_file(tracking: Tracking, run_id: str, path: Path, artifact_dir: str) -> None:
    """Add the file ``path`` to the artifacts of the (finished) run ``run_id``."""
    tracking.client.log_artifact(run_id, str(path), artifact_dir)


@dataclass(frozen=True)
class RunVersion:
    """The registered version a training run made, and whether it holds the champion alias."""

    version: str | None
    champion: bool

    def label(self, model_name: str) -> str:
        if self.version is None:
            return "a run without a registered version"
        role = "the champion" if self.champion else "not the champion"
        return f"{model_name} version {self.version} ({role})"


def run_version(tracking: Tracking, run_id: str) -> RunVersion:
    found = tracking.client.search_model_versions(f"name='{tracking.model_name}' and run_id='{run_id}'")
    if not found:
        return RunVersion(None, False)
    version = str(found[0].version)
    return RunVersion(version, alias_version(tracking, "champion") == version)


@dataclass(frozen=True)
class LiftRecord:
    """A finished lift run: its audience, window and table."""

    audience: str
    start: str
    end: str
    run_id: str
    table: pd.DataFrame


def latest_lifts(tracking: Tracking, folder: Path) -> list[LiftRecord]:
    """Per audience, its latest finished lift run (``stage=lift``), by audience name."""
    runs = tracking.client.search_runs(
        [tracking.experiment_id],
        "tags.stage = 'lift' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    latest: dict[str, LiftRecord] = {}
    for run in runs:
        tags = run.data.tags
        if tags.get("audience") is None or tags["audience"] in latest:
            continue
        path = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id,
            artifact_path=LIFT_ARTIFACT,
            dst_path=str(folder / run.info.run_id),
            tracking_uri=tracking.uri,
        )
        record = LiftRecord(
            tags["audience"], tags.get("start", ""), tags.get("end", ""), run.info.run_id, pd.read_csv(path)
        )
        latest[record.audience] = record
    return [latest[name] for name in sorted(latest)]
