"""The promotion and report tests' registry: a champion and a challenger on the pipeline's June
features, with customers scored in May and June (built once per session by the conftest fixtures
lifecycle and lifecycle_report)."""

from __future__ import annotations

from pathlib import Path

from conftest import make_config

from segcore.cli.commands import main
from segcore.config import config_to_yaml
from segcore.features.stage import run_features
from segcore.score.stage import score_segments
from segcore.train.stage import train_segments

MAY, JUNE = "2026-05-31", "2026-06-30"
NAME = "customer_segments"


def build_registry(spark, lake: Path, pipeline: dict, workdir: Path) -> dict:
    """Version 1 (the first champion, with the value model's backtest for the report) trained on
    June's features (the pipeline's), customers scored with it in May and June, then version 2:
    the same model retrained with another seed."""
    june = make_config(
        workdir, lake, features__output=pipeline["config"].path("features"), value__backtest=True
    )
    may = make_config(workdir, lake, as_of=MAY)
    run_features(spark, may)
    first = train_segments(spark, june)
    score_segments(spark, may)
    score_segments(spark, june)
    second = train_segments(
        spark, make_config(workdir, lake, features__output=june.features.output, kmeans__seed=7)
    )
    config_file = workdir / "config.yaml"
    config_file.write_text(config_to_yaml(june))
    return {"config": june, "file": str(config_file), "first": first, "second": second}


def write_report(registry: dict, out: Path) -> Path:
    """`segcore report` (in this process) of the first version's run into ``out``."""
    code = main(
        ["report", "--run-id", registry["first"].run_id, "--out", str(out), "--config", registry["file"]]
    )
    assert code == 0
    return out
