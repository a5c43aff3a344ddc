"""Campaign lift as a marketer measures it: export an audience, plant a campaign of known effect in
the lake's next month (`segcore generate --extend-days --campaign --effect`), run `segcore lift`."""

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import config_with
from mlflow.tracking import MlflowClient

from segcore.audiences.stage import audience_partition, export_audiences
from segcore.cli.commands import main
from segcore.lift.stage import LIFT_ARTIFACT, measure_lift
from segcore.storage.versions import local_partition

EFFECT = 0.3
START, DAYS = "2026-06-30", 30


def _config(pipeline: dict, lake: Path, workdir: Path, **changes):
    base = pipeline["config"]
    data = {
        "workdir": base.workdir,
        "as_of": START,
        "lake": {table: {"path": str(lake / table)} for table in ("customers", "orders", "events")},
        "mlflow": {"tracking_uri": base.tracking_uri()},
        "campaigns": {"audiences_output": str(workdir / "audiences")},
        "audiences": {"everyone": {"where": "true", "control_share": 0.5}},
    }
    return config_with(data, **changes)


def _extended(lake: Path, target: Path, *extend: str) -> Path:
    shutil.copytree(lake, target, copy_function=os.link)
    assert main(["generate", "--out", str(target), "--extend-days", str(DAYS), *extend]) == 0
    return target


@pytest.fixture(scope="module")
def campaign(spark, pipeline, lake, tmp_path_factory) -> dict:
    """The pipeline's scoring exported as audience 'everyone' (half held back); two copies of the
    lake extended by a month: one where the treatment group orders 1.3 times as often, one without."""
    workdir = tmp_path_factory.mktemp("campaign")
    config = _config(pipeline, lake, workdir)
    export_audiences(spark, config)
    export = audience_partition(config, "everyone")
    planted = _extended(
        lake, workdir / "planted", "--campaign", export, "--effect", str(EFFECT), "--seed", "4"
    )
    unplanted = _extended(lake, workdir / "unplanted", "--seed", "5")
    return {
        "workdir": workdir,
        "lakes": {"planted": planted, "none": unplanted, "original": lake},
        "planted": _config(pipeline, planted, workdir),
        "none": _config(pipeline, unplanted, workdir),
    }


def _overall(table: pd.DataFrame, metric: str) -> pd.Series:
    return table[(table.segment_id == "all") & (table.metric == metric)].iloc[0]


def test_lift_finds_the_planted_effect_inside_its_interval(spark, campaign):
    result = measure_lift(spark, campaign["planted"], "everyone", pd.Timestamp(START).date(), DAYS)
    for metric in ("orders", "revenue"):
        row = _overall(result.table, metric)
        assert row.relative_low <= EFFECT <= row.relative_high, row
        assert row.lift_low > 0 and row.p_value < 0.01
    assert result.table.segment_id.nunique() == 1 + campaign["planted"].kmeans.k
    run = MlflowClient(campaign["planted"].tracking_uri()).get_run(result.run_id)
    assert run.data.tags["stage"] == "lift" and run.data.tags["audience"] == "everyone"
    assert run.data.metrics["orders_relative_lift"] == pytest.approx(
        _overall(result.table, "orders").relative_lift
    )
    logged = MlflowClient(campaign["planted"].tracking_uri()).download_artifacts(result.run_id, LIFT_ARTIFACT)
    assert len(pd.read_csv(logged)) == len(result.table)


def test_without_a_campaign_the_interval_covers_zero(campaign, capsys):
    assert main(_args(campaign["none"])) == 0
    printed = capsys.readouterr().out
    assert "lift of audience 'everyone' over 30 days from 2026-06-30" in printed
    orders = next(line for line in printed.splitlines() if "all customers" in line and " orders " in line)
    low, high = (float(v) for v in orders.split("[")[1].split("]")[0].split(","))
    assert low <= 0 <= high


def _args(config, *extra: str) -> list[str]:
    args = ["lift", "--audience", "everyone", "--start", START, "--days", str(DAYS)]
    args += ["--set", f"workdir={config.workdir}", "--set", f"mlflow.tracking_uri={config.tracking_uri()}"]
    args += ["--set", f"campaigns.audiences_output={config.campaigns.audiences_output}"]
    for table in ("customers", "orders", "events"):
        args += ["--set", f"lake.{table}.path={getattr(config.lake, table).path}"]
    return [*args, *extra]


def test_lift_refuses_a_control_group_it_cannot_measure(spark, pipeline, campaign, capsys):
    nobody = {"where": "true", "control_share": 0}
    config = _config(pipeline, campaign["lakes"]["planted"], campaign["workdir"], audiences__nobody=nobody)
    export_audiences(spark, config, ["nobody"])
    args = _args(config)
    args[args.index("everyone")] = "nobody"
    assert main(args) == 2
    assert "audience 'nobody'" in (error := capsys.readouterr().err) and "has no control group" in error
    assert main(_args(config, "--set", "campaigns.min_group_customers=100000")) == 2
    error = capsys.readouterr().err
    assert "its control group of" in error and "too small for an interval" in error


def test_lift_refuses_an_audience_nobody_was_sent(spark, pipeline, campaign, capsys):
    config = _config(
        pipeline, campaign["lakes"]["planted"], campaign["workdir"], audiences__empty={"where": "false"}
    )
    export_audiences(spark, config, ["empty"])
    crm_file = Path(local_partition(audience_partition(config, "empty"))) / "treatment.csv"
    assert crm_file.read_text() == "customer_id,segment_id,segment_name\n"  # the header alone
    args = _args(config)
    args[args.index("everyone")] = "empty"
    assert main(args) == 2
    assert "audience 'empty'" in (error := capsys.readouterr().err) and "has no treatment group" in error


@pytest.mark.parametrize(
    "which, changes, message",
    [
        ("original", [], "the window 2026-06-30 to 2026-07-29 has not ended in the lake yet"),
        ("planted", ["--start", "2026-05-31"], "audience 'everyone' has no export on or before 2026-05-31"),
        ("planted", ["--days", "0"], "--days must be at least 1"),
        ("planted", ["--start", "2026-12-01"], "has not ended yet (today is"),
    ],
)
def test_lift_exits_2_naming_what_is_missing(pipeline, campaign, which, changes, message, capsys):
    args = _args(_config(pipeline, campaign["lakes"][which], campaign["workdir"]))
    for flag, value in zip(changes[::2], changes[1::2], strict=True):
        args[args.index(flag) + 1] = value
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_lift_of_an_audience_not_configured_lists_those_that_are(pipeline, campaign, capsys):
    config = _config(pipeline, campaign["lakes"]["planted"], campaign["workdir"])
    args = _args(config, "--set", "audiences.everyone.where=true")
    args[args.index("everyone")] = "everyon"
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "audience 'everyon' has no export on or before 2026-06-30 under " in error
    assert "(it is not configured; the config's audiences: ['everyone'])" in error
