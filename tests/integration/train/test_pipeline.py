"""generate -> features -> train -> score on a small lake, with MLflow as a user would inspect it."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import adjusted_rand_score

from segcore.errors import TrainingError
from segcore.train.stage import train_segments


@pytest.fixture(scope="module")
def outputs(pipeline, lake):
    config = pipeline["config"]
    features = pd.read_parquet(pipeline["features"].path)
    segments = pd.read_parquet(pipeline["score"].path)
    planted = pd.read_parquet(lake / "planted_segments.parquet")
    return config, features, segments, planted


def test_every_customer_is_scored_exactly_once(outputs):
    _, features, segments, _ = outputs
    assert segments.customer_id.is_unique
    assert set(segments.customer_id) == set(features.customer_id)
    assert list(segments.columns) == [
        "customer_id",
        "segment_id",
        "segment_name",
        "distance",
        "model_version",
        "p_alive",
        "expected_purchases",
        "expected_spend",
        "expected_value",
        "churn_risk",
        "churn_risk_band",
        "value_model_version",
    ]
    assert (segments.distance >= 0).all()


def test_planted_segments_are_recovered(outputs):
    _, _, segments, planted = outputs
    merged = segments.merge(planted, on="customer_id")
    assert adjusted_rand_score(merged.segment, merged.segment_id) >= 0.8


def test_lapsed_big_spenders_are_not_called_champions(outputs):
    _, _, segments, planted = outputs
    merged = segments.merge(planted, on="customer_id")
    lapsed = merged[merged.segment == "lapsed_big_spenders"].segment_name.mode()[0]
    loyal = merged[merged.segment == "high_value_loyal"].segment_name.mode()[0]
    assert lapsed.startswith(("Can't lose them", "At risk"))
    assert loyal.startswith("Champions")


def test_mlflow_run_holds_params_metrics_and_artifacts(pipeline):
    config, result = pipeline["config"], pipeline["train"]
    mlflow.set_tracking_uri(config.tracking_uri())
    run = MlflowClient().get_run(result.run_id)
    assert run.data.params["k"] == str(config.kmeans.k)
    assert run.data.params["engine"] == "local"
    assert run.data.params["input_rows_orders"] == str(pipeline["features"].input_rows["orders"])
    for metric in (
        "inertia",
        "silhouette",
        "davies_bouldin",
        "calinski_harabasz",
        "fit_seconds",
        "iterations",
    ):
        assert metric in run.data.metrics
    artifacts = {a.path for a in MlflowClient().list_artifacts(result.run_id, "profile")}
    assert "profile/segment_profile.csv" in artifacts
    assert MlflowClient().list_artifacts(result.run_id, "config")[0].path == "config/resolved.yaml"


def test_first_version_is_champion_and_challenger(pipeline):
    config = pipeline["config"]
    mlflow.set_tracking_uri(config.tracking_uri())
    client = MlflowClient()
    name = config.mlflow.registered_model
    assert str(client.get_model_version_by_alias(name, "champion").version) == pipeline["train"].model.version
    assert (
        str(client.get_model_version_by_alias(name, "challenger").version) == pipeline["train"].model.version
    )
    assert pipeline["score"].model_version == pipeline["train"].model.version


def test_registered_model_predicts_the_scored_labels(outputs, pipeline):
    config, features, segments, _ = outputs
    mlflow.set_tracking_uri(config.tracking_uri())
    model = mlflow.pyfunc.load_model(f"models:/{config.mlflow.registered_model}@champion")
    sample = features.sample(200, random_state=1)
    predicted = model.predict(sample[model.metadata.get_input_schema().input_names()])
    expected = segments.set_index("customer_id").loc[sample.customer_id]
    np.testing.assert_array_equal(predicted.segment_id.to_numpy(), expected.segment_id.to_numpy())
    np.testing.assert_allclose(predicted.distance.to_numpy(), expected.distance.to_numpy(), rtol=1e-9)


def test_retraining_adds_a_challenger_and_keeps_the_champion(spark, pipeline):
    config = pipeline["config"]
    again = train_segments(spark, config)
    client = MlflowClient()
    name = config.mlflow.registered_model
    assert int(again.model.version) == int(pipeline["train"].model.version) + 1
    assert str(client.get_model_version_by_alias(name, "challenger").version) == again.model.version
    assert str(client.get_model_version_by_alias(name, "champion").version) == pipeline["train"].model.version
    # Same data, same config, same seed: the same segments.
    np.testing.assert_array_equal(again.profile.customers, pipeline["train"].profile.customers)


@pytest.mark.parametrize("engine", ["spark", "dask"])
def test_distributed_engines_train_the_same_segments(spark, pipeline, engine):
    config = pipeline["config"].model_copy(deep=True)
    config.kmeans.engine = engine
    result = train_segments(spark, config)
    local = pipeline["train"]
    assert result.metrics["inertia"] == pytest.approx(local.metrics["inertia"], rel=1e-9)
    assert sorted(result.profile.customers) == sorted(local.profile.customers)
    assert MlflowClient().get_run(result.run_id).data.params["engine"] == engine


def test_more_spark_workers_than_task_slots_stops_train_before_any_run(spark, pipeline, tmp_path):
    """conf/cluster.yaml's num_workers on a smaller cluster: refused before the work, leaving no
    run and no registered model behind (the session has 2 slots)."""
    config = pipeline["config"].model_copy(deep=True)
    config.mlflow.tracking_uri = f"sqlite:///{tmp_path}/mlflow.db"
    config.kmeans.engine, config.kmeans.spark.num_workers = "spark", 8
    previous = mlflow.get_tracking_uri()
    try:
        with pytest.raises(TrainingError, match="num_workers=8 needs that many task slots.*has 2") as error:
            train_segments(spark, config)
    finally:
        mlflow.set_tracking_uri(previous)
    assert error.value.exit_code == 2
    client = MlflowClient(config.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(config.mlflow.experiment)
    assert client.search_runs([experiment.experiment_id]) == []
    assert client.search_registered_models() == []
