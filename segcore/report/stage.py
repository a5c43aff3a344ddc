"""The report stage: a training run's HTML report rebuilt from its MLflow artifacts, with the
segments over time, written atomically and logged back to the run."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from pyspark.sql import SparkSession

from segcore.config import Config
from segcore.report.history import segment_history
from segcore.report.html import (
    build_html,
    history_section,
    lift_section,
    overview_section,
    value_section,
    version_scorings,
)
from segcore.runtime.logs import step
from segcore.tracking.artifacts import latest_lifts, log_file, report_inputs, run_version, value_report_inputs
from segcore.tracking.store import Tracking


def build_report(
    spark: SparkSession, config: Config, tracking: Tracking, run_id: str, out: str | None
) -> Path:
    """Write the report of training run ``run_id`` to ``out`` (default
    ``segments_report_<run>.html``) and log it to the run; returns the file."""
    with step("report", "read the segments over time") as figures:
        history = segment_history(spark, config)
        figures["scorings"] = history.segments.as_of.nunique()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = report_inputs(tracking, run_id, Path(tmp))
        value = value_report_inputs(tracking, run_id, config.value.registered_model, Path(tmp))
        lifts = latest_lifts(tracking, Path(tmp))
    trained = run_version(tracking, run_id)
    segments, kpis, _ = version_scorings(history, trained.version)
    horizon = config.value.horizon_days
    page = build_html(
        f"Customer segments — {trained.label(tracking.model_name)}",
        f"Training run {inputs.run_name} ({run_id}). {inputs.summary}",
        inputs.plots,
        inputs.profile,
        [
            overview_section(segments, kpis, inputs.profile, horizon),
            history_section(history, trained.version, config.path(config.score.profiles_output)),
            value_section(value, segments, config.value.high_risk_band(), horizon),
            lift_section(lifts),
        ],
    )
    target = Path(out or f"segments_report_{run_id}.html")
    write_page(target, page)
    log_file(tracking, run_id, target, "report")
    return target


def write_page(target: Path, page: str) -> None:
    """Write ``page`` to ``target`` in one step: a reader sees the old page or the new one. Each
    writer stages its own file beside it (processes and threads alike), removed if the write fails."""
    staged = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with staged.open("x", encoding="utf-8") as file:  # the umask's mode, as a plain write gives
            file.write(page)
        os.replace(staged, target)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
