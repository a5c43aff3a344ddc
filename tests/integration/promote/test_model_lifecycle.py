"""After training: the promotion gate, the run tables, and the report's segments over time, on one
registry (a real SQLite MLflow store) with two scorings: the conftest fixture lifecycle."""

from __future__ import annotations

import html
import re

import pytest
from conftest import config_with
from lifecycle_data import JUNE, MAY, NAME
from mlflow.tracking import MlflowClient

from segcore.cli.commands import main
from segcore.storage.partitions import read_partition
from segcore.train.stage import train_segments

# Segments found on other features: the customers are split another way.
DEGRADED_FEATURES = ["discount_rate", "device_mobile_share", "tenure_days"]


@pytest.fixture(scope="module")
def degraded(spark, lifecycle):
    config = lifecycle["config"].model_copy(deep=True)
    config.train.features = DEGRADED_FEATURES
    return train_segments(spark, config)


def segcore(lifecycle, capsys, *args) -> tuple[int, str, str]:
    """The `segcore` command in this process (its Spark session), with the registry's config."""
    capsys.readouterr()
    code = main([*args, "--config", lifecycle["file"]])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def champion() -> str:
    return str(MlflowClient().get_model_version_by_alias(NAME, "champion").version)


def promotion_tags(version: str) -> dict[str, str]:
    tags = MlflowClient().get_model_version(NAME, version).tags
    return {
        key.removeprefix("promotion."): value for key, value in tags.items() if key.startswith("promotion.")
    }


def test_a_good_challenger_is_promoted_and_the_figures_recorded(lifecycle, capsys):
    assert champion() == lifecycle["first"].model.version
    code, out, err = segcore(lifecycle, capsys, "promote")  # the default: the version with alias challenger
    second = lifecycle["second"].model.version
    assert code == 0, err
    assert f"promoted: {NAME} version {second} is champion (was {lifecycle['first'].model.version})" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:5]}
    assert set(rows) == {"stability_ari", "min_segment_share", "quality_loss", "id_conflicts"}
    assert all(row[4] == "pass" for row in rows.values())  # check, value, op, threshold, result
    assert champion() == second
    tags = promotion_tags(second)
    assert tags["decision"] == "promoted" and tags["gate"] == "passed" and tags["failed"] == ""
    assert tags["as_of"] == JUNE and tags["customers"] == "3000"
    assert float(tags["stability_ari"]) > 0.95  # the same segments, refitted with another seed
    assert float(tags["id_conflicts"]) == 0
    # The value model trained beside the new champion is the value model's champion too.
    value_champion = MlflowClient().get_model_version_by_alias("customer_value", "champion").version
    assert (
        str(value_champion)
        == lifecycle["second"].value.model.version
        != lifecycle["first"].value.model.version
    )


def test_a_degraded_challenger_is_refused_and_the_champion_stays(lifecycle, degraded, capsys):
    before = champion()
    code, out, err = segcore(lifecycle, capsys, "promote", "--version", degraded.model.version)
    assert code == 4, err
    assert (
        f"version {degraded.model.version} of '{NAME}' was not promoted, champion stays version {before}"
        in err
    )
    assert re.search(r"stability_ari=0\.\d+ \(needs >= 0\.8", err)
    assert re.search(r"quality_loss=\d\.\d+ \(needs <= 0\.05: davies_bouldin", err)
    assert "Traceback" not in err
    assert re.search(r"stability_ari\s+0\.\d+\s+>= 0\.8\s+FAIL", out)  # the table, printed
    assert champion() == before
    tags = promotion_tags(degraded.model.version)
    assert tags["decision"] == "refused" and tags["gate"] == "failed"
    assert {"stability_ari", "quality_loss"} <= set(tags["failed"].split(","))


def test_force_skips_the_gate_and_says_so_on_the_version(lifecycle, degraded, capsys):
    code, out, err = segcore(lifecycle, capsys, "promote", "--version", degraded.model.version, "--force")
    assert code == 0, err
    assert f"promoted without the gate (--force): {NAME} version {degraded.model.version} is champion" in out
    assert champion() == degraded.model.version
    tags = promotion_tags(degraded.model.version)
    assert tags["decision"] == "forced" and tags["gate"] == "skipped (--force)"


def test_without_a_champion_the_version_is_promoted_without_a_gate(lifecycle, capsys):
    first = lifecycle["first"].model.version
    MlflowClient().delete_registered_model_alias(NAME, "champion")
    code, out, err = segcore(lifecycle, capsys, "promote", "--version", first)
    assert code == 0, err
    assert f"no champion yet: {NAME} version {first} is champion (no gate to pass)" in out
    assert champion() == first
    assert promotion_tags(first)["gate"] == "none: there was no champion"


def test_without_a_challenger_alias_the_latest_version_is_the_candidate(lifecycle, degraded, capsys):
    MlflowClient().delete_registered_model_alias(NAME, "challenger")
    code, _, err = segcore(lifecycle, capsys, "promote")
    assert code == 4
    assert f"version {degraded.model.version} of '{NAME}' was not promoted" in err


def test_the_gate_without_the_feature_partition_is_exit_2(lifecycle, degraded, capsys):
    code, _, err = segcore(
        lifecycle, capsys, "promote", "--version", degraded.model.version, "--set", "as_of=2026-04-30"
    )
    assert code == 2
    assert "feature table " in err and "as_of=2026-04-30 does not exist: run `segcore features`" in err


def test_promoting_from_a_model_without_versions_is_exit_2(lifecycle, capsys):
    code, _, err = segcore(lifecycle, capsys, "promote", "--set", "mlflow.registered_model=nothing_here")
    assert code == 2
    assert "registered model 'nothing_here' has no versions: run `segcore train` first" in err


def test_promoting_a_version_that_does_not_exist_is_exit_2(lifecycle, capsys):
    code, _, err = segcore(lifecycle, capsys, "promote", "--version", "99")
    assert code == 2
    assert f"registered model '{NAME}' has no version 99" in err


def test_runs_lists_the_training_runs_with_version_alias_and_metrics(lifecycle, degraded, capsys):
    code, out, err = segcore(lifecycle, capsys, "runs")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["run_id", "started", "as_of", "engine", "k", "rule"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {lifecycle["first"].run_id, lifecycle["second"].run_id, degraded.run_id}
    first = rows[lifecycle["first"].run_id]
    assert re.search(rf"{JUNE}\s+local\s+5\s+single\s", first)
    assert re.search(rf"\s{lifecycle['first'].model.version}\s+champion\s", first)
    assert f"{lifecycle['first'].metrics['davies_bouldin']:.4g}" in first
    code, out, _ = segcore(lifecycle, capsys, "runs", "--as-of", MAY)
    assert out.startswith(f"no training runs with as_of {MAY} in experiment 'segcore'")
    code, out, _ = segcore(lifecycle, capsys, "runs", "--as-of", JUNE, "--engine", "spark")
    assert out.startswith(f"no training runs with as_of {JUNE} with engine spark in experiment 'segcore'")


def test_runs_compare_puts_two_runs_side_by_side(lifecycle, degraded, capsys):
    first, other = lifecycle["first"], degraded
    code, out, err = segcore(lifecycle, capsys, "runs", "--compare", first.run_id, other.run_id)
    assert code == 0, err
    assert out.splitlines()[0] == f"A = run {first.run_id}, B = run {other.run_id}"
    rows = {tuple(line.split()[:2]): line.split() for line in out.splitlines()[2:]}
    assert rows["param", "features"][-1] == "changed"
    assert rows["param", "as_of"] == ["param", "as_of", JUNE, JUNE]  # same: no difference shown
    order = list(rows)
    assert order.index(("param", "features")) < order.index(("param", "as_of"))  # differences first
    difference = other.metrics["davies_bouldin"] - first.metrics["davies_bouldin"]
    assert rows["metric", "davies_bouldin"][-1] == f"{difference:+.4g}"
    code, _, err = segcore(lifecycle, capsys, "runs", "--compare", first.run_id, "no-such-run")
    assert code == 2 and "run no-such-run does not exist in sqlite:///" in err


def test_the_report_shows_each_scoring_and_the_latest_migration(spark, lifecycle, lifecycle_report):
    page = lifecycle_report.read_text()
    assert "<title>Customer segments — customer_segments version 1 (the champion)</title>" in page
    assert "Training run train-2026-06-30-k5" in page
    logged = MlflowClient().list_artifacts(lifecycle["first"].run_id, "report")  # the champion's run
    assert "report/report.html" in {artifact.path for artifact in logged}
    assert "Segment sizes (2 scorings, 2026-05-31 to 2026-06-30)" in page
    assert f"Migration from {MAY} to {JUNE}" in page
    assert re.findall(r'<img alt="([a-z_]+\.png)" src="data:image/png;base64,', page) == [
        "history.png",
        "kpis.png",
        "migration.png",
        "value_calibration.png",
        "segment_sizes.png",  # the technical plots come last
        "profile_heatmap.png",
        "projection.png",
    ]
    value_version = lifecycle["first"].value.model.version
    assert f"Churn risk and value (customer_value version {value_version})" in page
    assert "Backtest over the last 90 days before as_of" in page
    table = page.split("Share of customers by scoring")[1].split("<h2>Churn risk and value")[0]
    data = lifecycle["config"].model_dump(mode="json")
    profiles = {
        as_of: read_partition(
            spark, config_with({**data, "as_of": as_of}).partition("profiles"), "profiles", ""
        )
        .toPandas()
        .set_index("segment_id")
        for as_of in (MAY, JUNE)
    }
    risk_table = page.split("Share of customers at high churn risk, by scoring")[1]
    for column, shown in (("share", table), ("high_risk_share", risk_table)):
        for segment_id, row in profiles[JUNE].iterrows():
            may, june = profiles[MAY][column].get(segment_id), row[column]
            name = re.escape(row.segment_name)
            cells = rf"<th>{segment_id}</th>\s*<th>{name}</th>\s*<td>{may:.1%}</td>\s*<td>{june:.1%}</td>"
            assert re.search(cells, shown), (column, segment_id)


def test_the_report_opens_with_the_segments_at_a_glance_of_its_version(spark, lifecycle, lifecycle_report):
    page = lifecycle_report.read_text()
    assert page.index(f"Segments at a glance (scoring of {JUNE})") < page.index("How the segments were found")
    overview = page.split('<h2 id="overview">')[1].split("<h2>")[0]
    data = lifecycle["config"].model_dump(mode="json")
    kpis = read_partition(spark, config_with(data).partition("kpis"), "kpis", "").toPandas()
    for _, row in kpis.iterrows():
        name = re.escape(row.segment_name)
        assert re.search(rf"<td>{row.segment_id}</td>\s*<td>{name}</td>\s*<td>{row.customers}</td>", overview)
        if row.retention == row.retention:  # not NaN
            assert html.escape(f"{row.retention:.0%} of the month before's buyers bought again") in overview


def test_a_report_of_a_version_without_scorings_says_so(lifecycle, tmp_path, capsys):
    out = tmp_path / "second.html"
    args = [
        "report",
        "--run-id",
        lifecycle["second"].run_id,
        "--out",
        str(out),
        "--config",
        lifecycle["file"],
    ]
    assert main(args) == 0
    page = out.read_text()
    version = lifecycle["second"].model.version
    assert f"customer_segments version {version} (not the champion)" in page
    assert "Not scored yet" in page
    assert "2 scoring(s) with other model versions left out" in page
    assert "history.png" not in page
