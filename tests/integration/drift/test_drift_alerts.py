"""Drift alerts that mean something: between two month-ends of a lake where nothing changes,
`segcore drift` with the default thresholds exits 0; when a fifth of the loyal customers stop
buying from the first of the second month, it exits 4 on the retention of their segment."""

import datetime as dt

import pytest
from conftest import make_config

from segcore.cli.commands import main
from segcore.features.stage import run_features
from segcore.sample.lake import generate_lake
from segcore.score.stage import score_segments
from segcore.train.stage import train_segments

MAY, JUNE = dt.date(2026, 5, 31), dt.date(2026, 6, 30)
LAKE_END = dt.date(
    2026, 8, 31
)  # the sample lake's last weeks (its active customers' last activity) after both


@pytest.fixture(scope="module")
def months(spark, tmp_path_factory) -> dict:
    """Two lakes, one with a lapse from June 1st, each with features and scorings at MAY and JUNE by
    one model trained on the steady lake's May."""
    root = tmp_path_factory.mktemp("alerts")
    tracking = f"sqlite:///{root}/mlflow.db"
    configs, version = {}, None
    for name, lapsing in (("steady", 0.0), ("lapse", 0.2)):
        lake = root / name / "lake"
        generate_lake(
            lake,
            3000,
            seed=7,
            end=LAKE_END,
            lapsing=lapsing,
            lapse_from=JUNE.replace(day=1) if lapsing else None,
        )
        config = make_config(root / name, lake, mlflow__tracking_uri=tracking, kmeans__k=5)
        dated = {day: config.model_copy(update={"as_of": day}) for day in (MAY, JUNE)}
        for day_config in dated.values():
            run_features(spark, day_config)
        version = version or train_segments(spark, dated[MAY]).model.version
        for day_config in dated.values():
            score_segments(spark, day_config, version)
        configs[name] = config
    return configs


def _drift(config) -> list[str]:
    return [
        "drift",
        "--from",
        MAY.isoformat(),
        "--to",
        JUNE.isoformat(),
        "--set",
        f"workdir={config.workdir}",
        "--set",
        f"mlflow.tracking_uri={config.tracking_uri()}",
    ]


def test_two_month_ends_without_a_change_exit_0_with_the_defaults(months, capsys):
    assert main(_drift(months["steady"])) == 0
    assert "no drift threshold crossed" in capsys.readouterr().out


def test_a_planted_lapse_exits_4_on_the_retention_of_its_segment(months, capsys):
    assert main(_drift(months["lapse"])) == 4
    alerts = capsys.readouterr().err.split("above threshold")[1].strip().splitlines()[1:]
    assert alerts and all(
        "retention" in line and "drift.max_retention_drop 10 pp" in line for line in alerts
    ), alerts
