"""Reading a finished run back: its tags and the artifacts a report is rebuilt from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from segcore.errors import SegcoreError
from segcore.tracking.store import Tracking


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


def log_file(tracking: Tracking, run_id: str, path: Path, artifact_dir: str) -> None:
    """Add the file ``path`` to the artifacts of the (finished) run ``run_id``."""
    tracking.client.log_artifact(run_id, str(path), artifact_dir)
