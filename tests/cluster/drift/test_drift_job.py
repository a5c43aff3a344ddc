"""The drift job under spark-submit, above a threshold: exit 4, the alert named, the run tagged."""

import json

import pytest
from commands import submit
from drift_data import LATER, drift_args
from mlflow.tracking import MlflowClient

from segcore.storage.hadoop import read_text
from segcore.storage.partitions import resolve_partition


def test_above_a_threshold_the_drift_job_exits_4_names_it_and_tags_the_run(spark, drift_months):
    largest = max(drift_months["shift"], key=lambda s: abs(drift_months["shift"][s]))
    threshold = abs(drift_months["shift"][largest]) - 0.005
    settings = [f"drift.max_share_shift={threshold}", "drift.max_psi=5", "drift.max_segment_psi=5"]
    result = submit("drift_segments.py", *drift_args(drift_months, *settings)[1:])
    output = result.stdout + result.stderr  # spark-submit sends the driver's stderr to stdout
    assert result.returncode == 4, output[-3000:]
    assert f"segment {largest} (" in output
    assert f"beyond drift.max_share_shift {100 * threshold:g} pp" in output
    assert "migration (each row's customers" in output
    target = f"{drift_months['config'].path('drift')}/from=2026-06-30_to={LATER}"
    summary = json.loads(read_text(spark, f"{resolve_partition(spark, target)}/_summary.json"))
    client = MlflowClient(drift_months["config"].tracking_uri())
    experiment = client.get_experiment_by_name(drift_months["config"].mlflow.experiment)
    latest = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])[0]
    assert "drift.max_share_shift" in latest.data.tags["alert"]
    assert summary["alerts"] == latest.data.tags["alert"].split("; ")
    assert latest.data.metrics[f"share_shift_segment_{largest}"] == pytest.approx(
        drift_months["shift"][largest]
    )
    artifacts = {a.path for a in client.list_artifacts(latest.info.run_id, "drift")}
    assert {"drift/migration.csv", "drift/segments.csv", "drift/features_psi.csv"} <= artifacts
