"""Audience exports as a CRM and a marketer meet them: the CSV file, the control group held back,
the customers who entered or left since the previous export, and every refusal."""

import csv
import json
from logging.handlers import BufferingHandler
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import config_with
from drift_data import LATER
from mlflow.tracking import MlflowClient

from segcore.audiences.stage import CONTROL_FILE, CRM_FILE, audience_partition, export_audiences
from segcore.cli.commands import main
from segcore.storage.versions import local_partition

START = "2026-06-30"


def _data(months: dict, pipeline: dict, audiences: dict) -> dict:
    lake = pipeline["config"].lake
    return {
        "workdir": str(months["workdir"]),
        "as_of": START,
        "lake": {table: {"path": getattr(lake, table).path} for table in ("customers", "orders", "events")},
        "mlflow": {"tracking_uri": pipeline["config"].tracking_uri()},
        "audiences": audiences,
    }


@pytest.fixture(scope="module")
def exports(spark, drift_months, pipeline) -> dict:
    """The audience of the lapsed and the leaving segments, exported in both months of
    drift_months (the second compares with the first), with names and e-mails."""
    where = f"segment_id IN ({drift_months['lapsed']}, {drift_months['leaving']})"
    data = _data(drift_months, pipeline, {"slipping": {"where": where, "columns": ["email", "name"]}})
    result = {}
    for day in (START, LATER.isoformat()):
        config = config_with(data, as_of=day)
        result[day] = (config, *export_audiences(spark, config))
    return result


def _folder(config, name="slipping", day=None) -> Path:
    return Path(local_partition(audience_partition(config, name, day)))


def test_the_crm_file_is_the_treatment_group_and_loads_unchanged(exports):
    config, (export,), _ = exports[START]
    folder = _folder(config)
    members = pd.read_parquet(folder / "members")
    treatment = members[members.group == "treatment"].sort_values("customer_id", ignore_index=True)
    with open(folder / CRM_FILE, encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(r["customer_id"]) for r in rows] == treatment.customer_id.tolist()
    assert [r["name"] for r in rows] == treatment.name.tolist()
    assert list(rows[0]) == ["customer_id", "email", "name", "segment_id", "segment_name"]
    tricky = {name for name in treatment.name if any(c in name for c in ',"') and not name.isascii()}
    assert tricky, "the sample names have commas, quotes and letters beyond ASCII"
    loaded = pd.read_csv(folder / CRM_FILE)
    pd.testing.assert_series_equal(loaded.name, treatment.name, check_names=False)
    control = pd.read_csv(folder / CONTROL_FILE)
    assert sorted(control.customer_id) == sorted(members.customer_id[members.group == "control"])
    assert export.treatment == len(rows) and export.control == len(control)
    assert export.control / export.customers == pytest.approx(0.1, abs=0.04)


def test_exporting_again_puts_departed_customers_in_left_and_keeps_groups(exports, drift_months):
    (first, _, _), (later, (export,), _) = exports[START], exports[LATER.isoformat()]
    before = pd.read_parquet(_folder(first) / "members").set_index("customer_id")
    after = pd.read_parquet(_folder(later) / "members").set_index("customer_id")
    left = pd.read_parquet(_folder(later) / "left")
    entered = pd.read_parquet(_folder(later) / "entered")
    assert export.previous == START
    assert set(left.customer_id) == set(before.index) - set(after.index)
    assert len(left) == 40  # drift_data.DEPARTING customers of the leaving segment
    assert set(entered.customer_id) == set(after.index) - set(before.index)
    assert len(entered) == drift_months["lapsers"] + 25  # movers and drift_data.ARRIVING newcomers
    stayed = before.index.intersection(after.index)
    assert len(stayed) > 100
    assert (before.loc[stayed, "group"] == after.loc[stayed, "group"]).all()


def test_control_groups_of_two_audiences_are_independent(spark, drift_months, pipeline):
    audiences = {name: {"where": "true", "control_share": 0.5} for name in ("a", "b")}
    config = config_with(_data(drift_months, pipeline, audiences), campaigns__audiences_output="independent")
    export_audiences(spark, config)
    groups = {n: pd.read_parquet(_folder(config, n) / "members").set_index("customer_id").group for n in "ab"}
    both = pd.crosstab(groups["a"], groups["b"], normalize=True)
    assert np.allclose(both.to_numpy(), 0.25, atol=0.03)


def test_mlflow_gets_counts_never_customers(exports):
    config, (export,), run_id = exports[START]
    run = MlflowClient(config.tracking_uri()).get_run(run_id)
    assert run.data.tags["stage"] == "audiences"
    assert run.data.metrics["slipping.customers"] == export.customers
    assert run.data.metrics["slipping.control"] == export.control
    assert run.data.params["slipping.columns"] == "email,name"
    recorded = json.dumps([run.data.params, run.data.metrics, run.data.tags])
    assert "@example.com" not in recorded and "O'Brien" not in recorded
    assert not MlflowClient(config.tracking_uri()).list_artifacts(run_id)


def _cli(config, *extra: str) -> list[str]:
    """`segcore audiences` over ``config``'s workdir, lake and MLflow store, then ``extra``."""
    args = [
        "audiences",
        "--set",
        f"workdir={config.workdir}",
        "--set",
        f"mlflow.tracking_uri={config.tracking_uri()}",
    ]
    for table in ("customers", "orders", "events"):
        args += ["--set", f"lake.{table}.path={getattr(config.lake, table).path}"]
    return [*args, *extra]


def test_a_failed_export_leaves_every_previous_export_as_it_was(spark, exports, capsys):
    config, _, _ = exports[START]
    folder = _folder(config)
    broken = [
        "audiences.slipping.where=segment_id >= 0",
        "audiences.broken.where=true",
        "audiences.broken.columns=[phone]",
    ]
    assert main(_cli(config, *[item for setting in broken for item in ("--set", setting)])) == 2
    assert "audiences.broken.columns: table 'customers' has no column(s) ['phone']" in capsys.readouterr().err
    assert _folder(config) == folder
    assert not [p for p in folder.parent.iterdir() if p.name.startswith("_tmp_")]


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "no audiences configured: add one as audiences.<name>.where"),
        (["--set", "audiences.x.where=true", "--name", "y"], "audience(s) ['y'] not configured"),
        (["--set", "audiences.x.where=spend > 10"], "audiences.x.where: cannot use 'spend > 10'"),
        (["--set", "audiences.x.where=true", "--set", "as_of=2026-01-31"], "as_of=2026-01-31 does not exist"),
        (["--set", "audiences.x y.where=true"], "audience name 'x y'"),
        (
            ["--set", "audiences.x.where=true", "--set", "audiences.x.columns=[segment_id]"],
            "are already columns",
        ),
        (
            [
                "--set",
                "audiences.x.where=true",
                "--set",
                "audiences.x.columns=[email]",
                "--set",
                "lake.customers=null",
            ],
            "audiences.x.columns asks for columns of table 'customers', but lake.customers is null",
        ),
    ],
)
def test_audiences_refuses_with_exit_2_naming_the_key(exports, extra, message, capsys):
    config, _, _ = exports[START]
    assert main(_cli(config, *extra)) == 2
    assert message in capsys.readouterr().err


def test_a_where_spark_cannot_use_is_reported_in_one_line_without_pyspark_logging_its_stack(exports, capsys):
    """PySpark logs each SQL error it raises, with the JVM's stack as JSON, on a logger of its own:
    without --verbose segcore's one line is all."""
    from pyspark.logger import PySparkLogger

    config, _, _ = exports[START]
    loggers = [
        PySparkLogger.getLogger(name) for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger")
    ]
    logged = BufferingHandler(capacity=100)
    for logger in loggers:
        logger.addHandler(logged)
    try:
        assert main(_cli(config, "--set", "audiences.x.where=spend > 10")) == 2
    finally:
        for logger in loggers:
            logger.removeHandler(logged)
    assert logged.buffer == []
    error = [line for line in capsys.readouterr().err.splitlines() if " INFO segcore: " not in line]
    assert len(error) == 1, error
    assert error[0].startswith("segcore audiences: error: audiences.x.where: cannot use 'spend > 10': ")
    assert "]. The scoring's columns are [" in error[0]
