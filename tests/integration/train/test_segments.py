"""Segments people can act on: choosing k, stability, stable ids across runs, names, report."""

import datetime as dt
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import LAKE_CUSTOMERS, ROOT, make_config
from mlflow.tracking import MlflowClient
from pyspark.sql import functions as F
from sklearn.metrics import adjusted_rand_score

from segcore.features.stage import run_features
from segcore.model import OUTPUT_COLUMNS
from segcore.model.summaries import POINTS
from segcore.sample.lake import generate_lake
from segcore.score.stage import score_segments
from segcore.storage.partitions import read_partition
from segcore.tracking.registry import load_version
from segcore.tracking.store import open_tracking
from segcore.train.stage import train_segments

PLANTED_K = 5
K_RANGE = {"min": 3, "max": 7}


@pytest.fixture(scope="module")
def history(spark, lake, pipeline, tmp_path_factory):
    """Train over a k range on the lake, retrain on the same data, then on a lake generated one
    month later with the same seed; score after each."""
    workdir = tmp_path_factory.mktemp("segments")
    # The lake's features as of June are the pipeline's: trained on where the pipeline wrote them.
    first = make_config(
        workdir, lake, kmeans__k=K_RANGE, features__output=pipeline["config"].path("features")
    )
    runs = {"first": train_segments(spark, first)}
    score_segments(spark, first)
    first_segments = pd.read_parquet(first.partition("segments"))
    runs["again"] = train_segments(spark, first)
    later_lake = tmp_path_factory.mktemp("later") / "lake"
    later_date = dt.date(2026, 7, 31)
    generate_lake(later_lake, LAKE_CUSTOMERS, seed=11, end=later_date)
    later = make_config(workdir, later_lake, kmeans__k=K_RANGE, as_of=later_date.isoformat())
    run_features(spark, later)
    runs["later"] = train_segments(spark, later)
    client = MlflowClient()
    name = first.mlflow.registered_model
    client.set_registered_model_alias(name, "champion", runs["later"].model.version)
    score_segments(spark, later)
    return {
        "config": first,
        "later": later,
        "runs": runs,
        "first_segments": first_segments,
        "later_segments": pd.read_parquet(later.partition("segments")),
        "planted": pd.read_parquet(lake / "planted_segments.parquet"),
        "later_planted": pd.read_parquet(later_lake / "planted_segments.parquet"),
    }


def test_the_rule_picks_the_planted_k_and_records_why(history):
    run = history["runs"]["first"]
    assert run.k == PLANTED_K
    data = MlflowClient().get_run(run.run_id).data
    assert data.params["chosen_k"] == str(PLANTED_K)
    assert data.params["k_reason"].startswith("davies_bouldin: lowest davies_bouldin")
    assert list(run.k_selection.k) == [3, 4, 5, 6, 7]
    assert 0.0 <= data.metrics["stability_ari"] <= 1.0


def test_a_child_run_per_k_and_artifacts(history):
    run_id = history["runs"]["first"].run_id
    children = mlflow.search_runs(
        experiment_names=["segcore"], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
    )
    value = children["tags.mlflow.runName"].str.startswith("value-")
    assert value.sum() == 1  # the value model's run (tests/integration/value)
    per_k = children[~value]
    assert sorted(per_k["params.k"].astype(int)) == [3, 4, 5, 6, 7]
    assert per_k["metrics.silhouette"].notna().all()
    client = MlflowClient()
    artifacts = {
        a.path
        for folder in ("plots", "selection", "alignment", "report")
        for a in client.list_artifacts(run_id, folder)
    }
    assert {
        "plots/k_selection.png",
        "plots/projection.png",
        "plots/profile_heatmap.png",
        "plots/segment_sizes.png",
        "selection/k_selection.csv",
        "alignment/matching.csv",
        "report/segments_report.html",
    } <= artifacts


def test_planted_segments_are_recovered(history):
    merged = history["first_segments"].merge(history["planted"], on="customer_id")
    assert adjusted_rand_score(merged.segment, merged.segment_id) >= 0.8


def test_retraining_on_the_same_data_keeps_every_id(history):
    first, again = history["runs"]["first"], history["runs"]["again"]
    pd.testing.assert_frame_equal(first.profile, again.profile)
    matching = pd.read_csv(
        mlflow.artifacts.download_artifacts(run_id=again.run_id, artifact_path="alignment/matching.csv")
    )
    assert matching.matched.all()


def _id_of_planted(segments, planted):
    merged = segments.merge(planted, on="customer_id")
    return merged.groupby("segment").segment_id.agg(lambda ids: ids.mode()[0]).to_dict()


def test_a_month_later_the_segments_that_still_exist_keep_their_ids(history):
    before = _id_of_planted(history["first_segments"], history["planted"])
    after = _id_of_planted(history["later_segments"], history["later_planted"])
    assert after == before


def test_names_are_unique_and_fit_the_planted_character(history):
    names = history["runs"]["first"].profile.set_index("segment_id").segment_name
    assert names.is_unique
    merged = history["first_segments"].merge(history["planted"], on="customer_id")
    named = merged.groupby("segment").segment_name.agg(lambda n: n.mode()[0])
    assert named["lapsed_big_spenders"].startswith(("Can't lose them", "At risk"))
    assert named["high_value_loyal"].startswith("Champions")
    assert named["new_customers"].startswith("New customers")
    assert "discount-driven" in named["bargain_hunters"]
    assert "mobile-first" in named["mobile_first_browsers"]


def test_scoring_writes_profiles_beside_the_segments(history):
    """Score's profile of each segment is that of its scored customers, computed independently:
    sizes, means, and medians within the summaries' rank error (2 / POINTS of the segment's rows,
    plus one row per chunk: one chunk per partition here)."""
    later = history["later"]
    profiles = pd.read_parquet(later.partition("profiles")).set_index("segment_id")
    segments = history["later_segments"]
    features = pd.read_parquet(later.partition("features"))
    scored = segments[["customer_id", "segment_id"]].merge(features, on="customer_id")
    assert profiles.customers.sum() == len(segments) == len(scored)
    assert set(profiles.index) == set(segments.segment_id)
    assert {"segment_name", "share", "revenue_share", "mean_recency_days", "z_frequency"} <= set(
        profiles.columns
    )
    for segment, rows in scored.groupby("segment_id"):
        profile = profiles.loc[segment]
        assert profile.customers == len(rows)
        for feature in ("recency_days", "frequency", "monetary_total", "discount_rate"):
            column = rows[feature].dropna().sort_values().to_numpy()
            assert profile[f"mean_{feature}"] == pytest.approx(column.mean(), rel=1e-9)
            median = profile[f"median_{feature}"]
            below, at_most = (column < median).mean(), (column <= median).mean()
            slack = 2 / POINTS + 4 / len(column)
            assert below - slack <= 0.5 <= at_most + slack, (segment, feature, median)


def test_a_version_scores_spark_rows_through_mlflows_spark_udf(spark, history):
    """A registered version is a plain pyfunc: `mlflow.pyfunc.spark_udf` with its signature's
    output types assigns the feature rows as `segcore score` did."""
    later = history["later"]
    tracking = open_tracking(later)
    version = history["runs"]["later"].model.version
    inputs = load_version(tracking, version).preparation.inputs
    assign = mlflow.pyfunc.spark_udf(
        spark,
        tracking.model_uri(version),
        result_type=", ".join(f"{name} {kind}" for name, kind in OUTPUT_COLUMNS.items()),
        env_manager="local",
    )
    features = read_partition(spark, later.partition("features"), "features", "")
    segment = assign(F.struct(*[F.col(f).cast("double").alias(f) for f in inputs]))
    scored = features.select("customer_id", segment.alias("s")).select("customer_id", "s.*").toPandas()
    expected = history["later_segments"].set_index("customer_id").loc[scored.customer_id]
    assert len(scored) == len(expected) == len(history["later_segments"])
    assert scored.segment_id.tolist() == expected.segment_id.tolist()
    assert scored.segment_name.tolist() == expected.segment_name.tolist()
    np.testing.assert_allclose(scored.distance, expected.distance, rtol=1e-12)


def test_report_is_self_contained(history):
    run_id = history["runs"]["first"].run_id
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="report/segments_report.html")
    page = Path(path).read_text()
    assert page.count('src="data:image/png;base64,') == 4
    assert "http://" not in page and "https://" not in page
    assert "Segment profiles" in page


def test_names_can_be_set_by_id(spark, history):
    config = history["config"].model_copy(deep=True)
    config.kmeans.k = PLANTED_K
    champion_ids = history["runs"]["first"].profile.segment_id.tolist()
    config.segments.names = {champion_ids[0]: "VIP"}
    result = train_segments(spark, config)
    assert result.profile.set_index("segment_id").segment_name[champion_ids[0]] == "VIP"


def test_warm_start_from_the_champion_converges_at_once(spark, history):
    """Retrained on the champion's own data with its k (which the k sweep chose: the planted one or
    a neighbour, as the selection rule's metric decides on this small lake)."""
    config = history["later"].model_copy(deep=True)
    config.kmeans.k = history["runs"]["later"].k
    config.kmeans.init = "champion"
    result = train_segments(spark, config)
    assert result.metrics["iterations"] <= 2
    assert sorted(result.profile.segment_id) == sorted(history["runs"]["later"].profile.segment_id)


def _execute_notebook(notebook: str) -> str:
    """Run a notebook of notebooks/ in a fresh kernel; return the text of all its outputs."""
    import nbformat
    from nbclient import NotebookClient

    folder = ROOT / "notebooks"
    book = nbformat.read(folder / notebook, as_version=4)
    NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    return "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)


@pytest.mark.parametrize("notebook", ["01_explore_segments.ipynb", "02_compare_runs.ipynb"])
def test_notebooks_run_against_a_workdir(history, notebook, monkeypatch):
    # A user's shell: no MLFLOW_TRACKING_URI (MLflow exported one into this test process).
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("SEGCORE_WORKDIR", history["config"].workdir)
    monkeypatch.setenv("SEGCORE_AS_OF", history["later"].as_of.isoformat())
    text = _execute_notebook(notebook)
    champion = history["runs"]["later"].model.version
    if notebook.startswith("01"):
        scored = len(history["later_segments"])
        assert f"{scored:,} customers scored with model version(s) ['{champion}']" in text
    else:
        assert f"champion (v{champion})" in text
        assert f"A: champion v{champion}, run {history['runs']['later'].run_id}" in text
        assert all(run.run_id in text for run in history["runs"].values())  # the training_runs table


def test_compare_notebook_reads_the_tracking_uri_from_the_environment(history, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGCORE_WORKDIR", str(tmp_path))  # no store here: the URI must come from the variable
    monkeypatch.setenv("MLFLOW_TRACKING_URI", history["config"].tracking_uri())
    text = _execute_notebook("02_compare_runs.ipynb")
    assert history["runs"]["first"].run_id in text
