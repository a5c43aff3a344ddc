"""`segcore drift` on a planted migration: the second month's feature table is built from the
first's so that the truth is known (exactly 10% of the largest segment take on the behaviour of
the most lapsed segment's most typical customer, some customers of another segment leave, new ones
arrive), then scored with the same registered model."""

import datetime as dt
import io
import json

import numpy as np
import pandas as pd
import pytest
from commands import submit
from conftest import config_with
from mlflow.tracking import MlflowClient

from segcore.cli.commands import main, month_before
from segcore.drift.figures import centre_change, feature_psi, migration_matrix
from segcore.model.preparation import Preparation
from segcore.model.segment_model import SegmentModel
from segcore.sample.lake import LAPSE_DAYS, generate_lake
from segcore.score.stage import score
from segcore.storage.hadoop import read_text
from segcore.storage.partitions import read_partition, resolve_partition, write_partition
from segcore.tracking.lifecycle import tracked_run
from segcore.tracking.store import log_model, register, use_tracking

LATER = dt.date(2026, 7, 31)
LAPSING_SHARE = 0.10
DEPARTING, ARRIVING = 40, 25


def _copy(spark, source: str, target: str) -> None:
    write_partition(read_partition(spark, source, "partition", "the pipeline fixture writes it"), target)


@pytest.fixture(scope="module")
def months(spark, pipeline, tmp_path_factory):
    """Two scorings in a fresh workdir: the pipeline's (as_of 2026-06-30) and LATER's, planted."""
    first = pipeline["config"]
    workdir = tmp_path_factory.mktemp("drift")
    data = {"workdir": str(workdir), "as_of": first.as_of.isoformat()}
    config = config_with(data)
    for output in (first.features.output, first.score.output):
        _copy(spark, first.partition(output), config.partition(output))
    features = read_partition(spark, first.partition(first.features.output), "features", "").toPandas()
    scoring = read_partition(spark, first.partition(first.score.output), "segments", "").toPandas()
    merged = scoring.merge(features, on="customer_id")
    sizes = scoring.segment_id.value_counts()
    recency = merged.groupby("segment_id").recency_days.median()
    mover = int(sizes.index[0])  # the largest segment
    lapsed = int(recency.drop(mover).idxmax())  # the most lapsed other segment
    leaving = int(sizes.drop([mover, lapsed]).index[-1])
    donor = merged[merged.segment_id == lapsed].sort_values("distance").iloc[0]
    rng = np.random.default_rng(3)
    members = scoring.customer_id[scoring.segment_id == mover].to_numpy()
    lapsers = rng.choice(members, round(LAPSING_SHARE * len(members)), replace=False)
    leavers = rng.choice(
        scoring.customer_id[scoring.segment_id == leaving].to_numpy(), DEPARTING, replace=False
    )
    columns = [c for c in features.columns if c != "customer_id"]
    later = features[~features.customer_id.isin(leavers)].copy()
    for column in columns:
        later.loc[later.customer_id.isin(lapsers), column] = donor[column]
    newcomers = pd.DataFrame([donor[columns]] * ARRIVING, columns=columns).astype(later[columns].dtypes)
    newcomers.insert(0, "customer_id", features.customer_id.max() + 1 + np.arange(ARRIVING))
    later_config = config_with(data, as_of=LATER.isoformat(), mlflow__tracking_uri=first.tracking_uri())
    write_partition(
        spark.createDataFrame(pd.concat([later, newcomers], ignore_index=True)),
        later_config.partition(first.features.output),
    )
    score(spark, later_config, pipeline["train"].model.version)
    before = sizes.to_dict()
    after = dict(before)
    after[mover] -= len(lapsers)
    after[lapsed] += len(lapsers) + ARRIVING
    after[leaving] -= DEPARTING
    shift = {s: after[s] / sum(after.values()) - before[s] / sum(before.values()) for s in before}
    return {
        "workdir": workdir,
        "config": config,
        "mover": mover,
        "lapsed": lapsed,
        "leaving": leaving,
        "lapsers": len(lapsers),
        "members": len(members),
        "shift": shift,
    }


def _drift(months, *settings):
    return [
        "drift",
        "--from",
        "2026-06-30",
        "--to",
        LATER.isoformat(),
        "--set",
        f"workdir={months['workdir']}",
        *[item for setting in settings for item in ("--set", setting)],
    ]


def test_a_planted_migration_is_reported_and_below_the_thresholds_exits_0(spark, months, capsys):
    largest = max(abs(s) for s in months["shift"].values())
    code = main(
        _drift(
            months, f"drift.max_share_shift={largest + 0.005}", "drift.max_psi=5", "drift.max_segment_psi=5"
        )
    )
    printed = capsys.readouterr().out
    assert code == 0
    config = months["config"]
    target = f"{config.path('drift')}/from=2026-06-30_to={LATER}"
    matrix = read_partition(spark, target, "drift", "").toPandas().set_index(["from_segment", "to_segment"])
    mover, lapsed = months["mover"], months["lapsed"]
    assert abs(matrix.loc[(mover, lapsed), "share"] - LAPSING_SHARE) < 0.01
    assert matrix.loc[(mover, lapsed), "customers"] == months["lapsers"]
    assert matrix.loc[(mover, mover), "customers"] == months["members"] - months["lapsers"]
    assert matrix.loc[(-1, lapsed), "customers"] == ARRIVING
    assert matrix.loc[(months["leaving"], -1), "customers"] == DEPARTING
    folder = resolve_partition(spark, target)
    segments = pd.read_csv(io.StringIO(read_text(spark, f"{folder}/_segments.csv"))).set_index("segment_id")
    for segment, shift in months["shift"].items():
        assert segments.loc[segment, "share_shift"] == pytest.approx(shift, abs=1e-9)
    mover_row = next(line for line in printed.splitlines() if line.startswith(f"{mover} ")).split()
    stayed = months["members"] - months["lapsers"]
    assert f"{100 * months['lapsers'] / months['members']:.1f}" in mover_row
    assert f"{100 * stayed / months['members']:.1f}" in mover_row
    assert "no drift threshold crossed" in printed


def test_above_a_threshold_the_drift_job_exits_4_names_it_and_tags_the_run(spark, months):
    largest = max(months["shift"], key=lambda s: abs(months["shift"][s]))
    threshold = abs(months["shift"][largest]) - 0.005
    settings = [f"drift.max_share_shift={threshold}", "drift.max_psi=5", "drift.max_segment_psi=5"]
    result = submit("drift_segments.py", *_drift(months, *settings)[1:])
    output = result.stdout + result.stderr  # spark-submit sends the driver's stderr to stdout
    assert result.returncode == 4, output[-3000:]
    assert f"segment {largest} (" in output
    assert f"beyond drift.max_share_shift {100 * threshold:g} pp" in output
    assert "migration (each row's customers" in output
    target = f"{months['config'].path('drift')}/from=2026-06-30_to={LATER}"
    summary = json.loads(read_text(spark, f"{resolve_partition(spark, target)}/_summary.json"))
    client = MlflowClient(months["config"].tracking_uri())
    experiment = client.get_experiment_by_name(months["config"].mlflow.experiment)
    latest = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])[0]
    assert "drift.max_share_shift" in latest.data.tags["alert"]
    assert summary["alerts"] == latest.data.tags["alert"].split("; ")
    assert latest.data.metrics[f"share_shift_segment_{largest}"] == pytest.approx(months["shift"][largest])
    artifacts = {a.path for a in client.list_artifacts(latest.info.run_id, "drift")}
    assert {"drift/migration.csv", "drift/segments.csv", "drift/features_psi.csv"} <= artifacts


def test_a_missing_scoring_exits_2_naming_the_partition_and_the_command(months, capsys):
    code = main(_drift(months)[:1] + ["--from", "2026-05-31", *_drift(months)[3:]])
    error = capsys.readouterr().err
    assert code == 2
    missing = f"{months['workdir']}/segments/as_of=2026-05-31"
    assert f"scoring {missing} does not exist" in error
    assert "`segcore score --set as_of=2026-05-31`" in error


def test_a_scoring_without_its_feature_table_exits_2_naming_it(spark, months, capsys):
    scoring = read_partition(spark, months["config"].partition("segments"), "segments", "")
    write_partition(scoring, f"{months['config'].path('segments')}/as_of=2026-08-31")
    code = main(_drift(months)[:3] + ["--to", "2026-08-31", *_drift(months)[5:]])
    assert code == 2
    missing = f"{months['workdir']}/features/as_of=2026-08-31"
    assert f"feature table {missing} does not exist: run `segcore features --set as_of=2026-08-31`" in (
        capsys.readouterr().err
    )


def test_an_unknown_drift_feature_exits_2_naming_it(months, capsys):
    code = main(_drift(months, "drift.features=[recency_days, no_such_feature]"))
    assert code == 2
    assert "lacks column(s) ['no_such_feature'] named in drift.features" in capsys.readouterr().err


def test_from_not_before_to_exits_2(months, capsys):
    code = main(
        ["drift", "--from", LATER.isoformat(), "--to", "2026-06-30", "--set", f"workdir={months['workdir']}"]
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


def _model(centres, ids, mean, scale) -> SegmentModel:
    """A two-feature model (a, b) without log features or clipping."""
    preparation = Preparation(["a", "b"], [], [-1e9, -1e9], [1e9, 1e9], mean, scale)
    return SegmentModel(preparation, np.asarray(centres, float), ids, [f"s{i}" for i in ids], max(ids) + 1)


# Segment 5 moves from (12, 24) in original units, which is (0, 0) in the later model's space, to
# (0.5, -1) there, i.e. (12.5, 22); segment 4 is retired and 6 is new.
EARLIER_MODEL = _model([[0, 0], [1, 1]], [4, 5], [10.0, 20.0], [2.0, 4.0])
LATER_MODEL = _model([[0.5, -1], [3, 3]], [5, 6], [12.0, 24.0], [1.0, 2.0])


def test_centre_change_is_measured_in_the_later_models_space_for_shared_ids():
    table = centre_change(EARLIER_MODEL, LATER_MODEL)
    assert table.segment_id.tolist() == [5]
    assert table.centre_distance.iloc[0] == pytest.approx(np.hypot(0.5, 1.0))
    assert (table.change_a.iloc[0], table.change_b.iloc[0]) == pytest.approx((0.5, -2.0))


def test_scorings_of_two_versions_report_the_centre_change_and_that_ids_are_matched_by_id(
    spark, tmp_path, capsys
):
    config = config_with({"workdir": str(tmp_path)})
    use_tracking(config)
    for model in (EARLIER_MODEL, LATER_MODEL):
        with tracked_run("train") as run:
            register(log_model(model), config.mlflow.registered_model, model.next_id, {}, run)
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


def test_the_lapsing_share_of_loyal_customers_has_no_activity_in_the_last_month(tmp_path):
    end = dt.date(2026, 6, 30)
    generate_lake(tmp_path / "lake", 600, seed=4, end=end, lapsing=0.25)
    planted = pd.read_parquet(tmp_path / "lake" / "planted_segments.parquet")
    loyal = planted[planted.segment == "high_value_loyal"]
    assert (
        loyal.lapsed.sum() == round(0.25 * len(loyal))
        and not planted.lapsed[planted.segment != "high_value_loyal"].any()
    )
    cutoff = pd.Timestamp(end - dt.timedelta(days=LAPSE_DAYS))
    for table, column in (("orders", "order_ts"), ("events", "event_ts")):
        frame = pd.read_parquet(tmp_path / "lake" / table, columns=["customer_id", column])
        last = frame.groupby("customer_id")[column].max()
        assert (last[loyal.customer_id[loyal.lapsed]] < cutoff).all()
        assert (last[loyal.customer_id[~loyal.lapsed]] >= cutoff).mean() > 0.25  # orders 75%, events 38%


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--lapsing", "1.5"], "--lapsing must be a share between 0 and 1, got 1.5"),
        (["--lapsing", "0.1", "--shape", "transactions"], "--lapsing applies to --shape sample only"),
    ],
)
def test_a_bad_lapsing_share_exits_2(tmp_path, capsys, arguments, message):
    assert main(["generate", "--out", str(tmp_path / "lake"), "--customers", "50", *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "lake").exists()


@pytest.mark.parametrize(
    "day, before",
    [
        ("2026-06-30", "2026-05-31"),
        ("2026-03-31", "2026-02-28"),
        ("2026-03-15", "2026-02-15"),
        ("2026-01-31", "2025-12-31"),
    ],
)
def test_the_demos_earlier_month_is_the_previous_month_end_or_the_same_day(day, before):
    assert month_before(dt.date.fromisoformat(day)) == dt.date.fromisoformat(before)
