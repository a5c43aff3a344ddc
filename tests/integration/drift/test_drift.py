"""`segcore drift` on a planted migration: the second month's feature table is built from the
first's so that the truth is known (exactly 10% of the largest segment take on the behaviour of
the most lapsed segment's most typical customer, some customers of another segment leave, new ones
arrive), then scored with the same registered model."""

import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest
from conftest import config_with
from drift_data import ARRIVING, DEPARTING, EARLIER_MODEL, LAPSING_SHARE, LATER, LATER_MODEL, drift_args

from segcore.cli.commands import main
from segcore.drift.figures import feature_psi, migration_matrix
from segcore.storage.hadoop import read_text
from segcore.storage.partitions import read_partition, resolve_partition, write_partition
from segcore.tracking.lifecycle import tracked_run
from segcore.tracking.registry import log_model, register
from segcore.tracking.store import open_tracking


def test_a_planted_migration_is_reported_and_below_the_thresholds_exits_0(spark, drift_months, capsys):
    largest = max(abs(s) for s in drift_months["shift"].values())
    code = main(
        drift_args(
            drift_months,
            f"drift.max_share_shift={largest + 0.005}",
            "drift.max_psi=5",
            "drift.max_segment_psi=5",
        )
    )
    printed = capsys.readouterr().out
    assert code == 0
    config = drift_months["config"]
    target = f"{config.path('drift')}/from=2026-06-30_to={LATER}"
    matrix = read_partition(spark, target, "drift", "").toPandas().set_index(["from_segment", "to_segment"])
    mover, lapsed = drift_months["mover"], drift_months["lapsed"]
    assert abs(matrix.loc[(mover, lapsed), "share"] - LAPSING_SHARE) < 0.01
    assert matrix.loc[(mover, lapsed), "customers"] == drift_months["lapsers"]
    assert matrix.loc[(mover, mover), "customers"] == drift_months["members"] - drift_months["lapsers"]
    assert matrix.loc[(-1, lapsed), "customers"] == ARRIVING
    assert matrix.loc[(drift_months["leaving"], -1), "customers"] == DEPARTING
    folder = resolve_partition(spark, target)
    segments = pd.read_csv(io.StringIO(read_text(spark, f"{folder}/_segments.csv"))).set_index("segment_id")
    for segment, shift in drift_months["shift"].items():
        assert segments.loc[segment, "share_shift"] == pytest.approx(shift, abs=1e-9)
    mover_row = next(line for line in printed.splitlines() if line.startswith(f"{mover} ")).split()
    stayed = drift_months["members"] - drift_months["lapsers"]
    assert f"{100 * drift_months['lapsers'] / drift_months['members']:.1f}" in mover_row
    assert f"{100 * stayed / drift_months['members']:.1f}" in mover_row
    assert "no drift threshold crossed" in printed


def test_a_shift_of_the_high_risk_share_is_measured_per_segment_and_alerts(spark, drift_months, capsys):
    config = drift_months["config"]
    shares = {}
    for as_of in (config.as_of, LATER):
        scoring = read_partition(spark, config.partition("segments", as_of), "segments", "").toPandas()
        shares[as_of] = (
            scoring.assign(high=scoring.churn_risk_band == "high").groupby("segment_id").high.mean()
        )
    expected = (shares[LATER] - shares[config.as_of]).dropna()
    largest = expected.abs().max()
    assert largest > 0
    off = ["drift.max_psi=null", "drift.max_segment_psi=null", "drift.max_share_shift=null"]
    code = main(drift_args(drift_months, *off, f"drift.max_risk_shift={largest / 2}"))
    captured = capsys.readouterr()
    assert code == 4
    assert "high-risk share" in captured.err and "beyond drift.max_risk_shift" in captured.err
    assert "high_risk_shift_pp" in captured.out
    target = f"{config.path('drift')}/from=2026-06-30_to={LATER}"
    folder = resolve_partition(spark, target)
    segments = pd.read_csv(io.StringIO(read_text(spark, f"{folder}/_segments.csv"))).set_index("segment_id")
    for segment, shift in expected.items():
        assert segments.loc[segment, "risk_shift"] == pytest.approx(shift, abs=1e-9)


def test_a_missing_scoring_exits_2_naming_the_partition_and_the_command(drift_months, capsys):
    code = main(drift_args(drift_months)[:1] + ["--from", "2026-05-31", *drift_args(drift_months)[3:]])
    error = capsys.readouterr().err
    assert code == 2
    missing = f"{drift_months['workdir']}/segments/as_of=2026-05-31"
    assert f"scoring {missing} does not exist" in error
    assert "`segcore score --set as_of=2026-05-31`" in error


def test_a_scoring_without_its_feature_table_exits_2_naming_it(spark, drift_months, capsys):
    scoring = read_partition(spark, drift_months["config"].partition("segments"), "segments", "")
    write_partition(scoring, f"{drift_months['config'].path('segments')}/as_of=2026-08-31")
    code = main(drift_args(drift_months)[:3] + ["--to", "2026-08-31", *drift_args(drift_months)[5:]])
    assert code == 2
    missing = f"{drift_months['workdir']}/features/as_of=2026-08-31"
    assert f"feature table {missing} does not exist: run `segcore features --set as_of=2026-08-31`" in (
        capsys.readouterr().err
    )


def test_an_unknown_drift_feature_exits_2_naming_it(drift_months, capsys):
    code = main(drift_args(drift_months, "drift.features=[recency_days, no_such_feature]"))
    assert code == 2
    assert "lacks column(s) ['no_such_feature'] named in drift.features" in capsys.readouterr().err


def test_from_not_before_to_exits_2(drift_months, capsys):
    code = main(
        [
            "drift",
            "--from",
            LATER.isoformat(),
            "--to",
            "2026-06-30",
            "--set",
            f"workdir={drift_months['workdir']}",
        ]
    )
    assert code == 2
    assert f"--from {LATER} must be an earlier date than --to 2026-06-30" in capsys.readouterr().err


def test_psi_counts_each_bin_of_the_earlier_quantiles_and_missing_values(spark):
    before = pd.DataFrame({"x": np.arange(1000.0)})
    after = pd.DataFrame({"x": np.r_[np.arange(0.0, 500.0), np.full(300, 950.0), [np.nan] * 200]})
    table = feature_psi(spark.createDataFrame(before), spark.createDataFrame(after), ["x"], bins=4)
    # Quartile bins of 0..999: 250 customers each; after: 250, 250, 0, 300 and 200 missing.
    b = np.array([250, 250, 250, 250, 0]) / 1000
    a = np.array([250, 250, 0, 300, 200]) / 1000
    b, a = np.maximum(b, 1e-4), np.maximum(a, 1e-4)
    row = table.iloc[0]
    assert row.psi == pytest.approx(np.sum((a - b) * np.log(a / b)), rel=1e-6)
    assert (row.bins, row.missing_from, row.missing_to) == (4, 0, 200)


def test_migration_matrix_without_names_counts_new_and_departed(spark):
    before = spark.createDataFrame([(1, 7), (2, 7), (3, 9)], "customer_id long, segment_id long")
    after = spark.createDataFrame([(1, 9), (2, 7), (4, 9)], "customer_id long, segment_id long")
    matrix = migration_matrix(before, after)
    assert matrix[["from_segment", "to_segment", "customers", "share"]].values.tolist() == [
        [-1, 9, 1, 1.0],
        [7, 7, 1, 0.5],
        [7, 9, 1, 0.5],
        [9, -1, 1, 1.0],
    ]
    assert matrix.from_name.tolist()[0] == "new" and matrix.to_name.tolist()[-1] == "departed"


def test_scorings_of_two_versions_report_the_centre_change_and_that_ids_are_matched_by_id(
    spark, tmp_path, capsys
):
    config = config_with({"workdir": str(tmp_path)})
    tracking = open_tracking(config)
    for model in (EARLIER_MODEL, LATER_MODEL):
        with tracked_run(tracking, "train") as run:
            register(tracking, log_model(model), {}, run)
    for day, version, ids in (("2026-05-31", "1", [4, 5, 5]), ("2026-06-30", "2", [5, 6, 6])):
        dated = config.model_copy(update={"as_of": dt.date.fromisoformat(day)})
        features = spark.createDataFrame(
            [(c, 10.0 + c, 20.0 * c) for c in (1, 2, 3)], "customer_id long, a double, b double"
        )
        scoring = spark.createDataFrame(
            [(c, s, f"s{s}", 0.0, version) for c, s in zip((1, 2, 3), ids, strict=True)],
            "customer_id long, segment_id long, segment_name string, distance double, model_version string",
        )
        write_partition(features, dated.partition(config.features.output))
        write_partition(scoring, dated.partition(config.score.output))
    off = ["drift.max_psi=null", "drift.max_segment_psi=null", "drift.max_share_shift=null"]
    code = main(
        ["drift", "--from", "2026-05-31", "--to", "2026-06-30", "--set", f"workdir={tmp_path}"]
        + [item for setting in off for item in ("--set", setting)]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "scorings used model versions 1 and 2: segments are matched by id" in printed
    target = f"{config.path('drift')}/from=2026-05-31_to=2026-06-30"
    centres = pd.read_csv(io.StringIO(read_text(spark, f"{resolve_partition(spark, target)}/_centres.csv")))
    assert centres.segment_id.tolist() == [5]
    assert centres.centre_distance.iloc[0] == pytest.approx(np.hypot(0.5, 1.0))


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--lapsing", "1.5"], "--lapsing must be a share between 0 and 1, got 1.5"),
        (["--lapsing", "0.1", "--shape", "transactions"], "--lapsing applies to --shape sample only"),
        (["--lapse-from", "2026-06-01"], "--lapse-from needs --lapsing and a date before --end 2026-06-30"),
        (
            ["--lapsing", "0.1", "--lapse-from", "2026-07-01"],
            "--lapse-from needs --lapsing and a date before",
        ),
    ],
)
def test_a_bad_lapsing_share_exits_2(tmp_path, capsys, arguments, message):
    assert main(["generate", "--out", str(tmp_path / "lake"), "--customers", "50", *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "lake").exists()
