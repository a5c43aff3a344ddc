"""Churn risk and value through train and score on the sample lake, as a user meets them: the
registered value model, the scores beside the segments, the figures per segment."""

import datetime as dt
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import make_config
from mlflow.tracking import MlflowClient
from sklearn.metrics import roc_auc_score

from segcore.cli.commands import main
from segcore.config import config_to_yaml
from segcore.errors import TrainingError
from segcore.features.stage import run_features
from segcore.sample.lake import generate_lake
from segcore.storage.partitions import read_partition
from segcore.value.fit import fit_value_model
from segcore.value.scores import NO_PURCHASE_BAND, SCORE_COLUMNS
from segcore.value.scoring import with_value_scores

LAPSING_END = dt.date(2026, 6, 30)


def test_value_model_is_registered_beside_the_segments(pipeline):
    config, trained = pipeline["config"], pipeline["train"]
    client = MlflowClient(config.tracking_uri())
    value = trained.value
    assert value.model.name == "customer_value"
    version = client.get_model_version("customer_value", value.model.version)
    assert str(client.get_model_version_by_alias("customer_value", "champion").version) == value.model.version
    parent = client.get_run(trained.run_id)
    assert parent.data.tags["value_model_version"] == value.model.version
    child = client.get_run(version.run_id)
    assert child.data.tags["mlflow.parentRunId"] == trained.run_id
    assert child.data.tags["segcore.version"] == parent.data.tags["segcore.version"]
    assert child.data.params["value.horizon_days"] == "90"
    metrics = ("bgnbd_r", "bgnbd_log_likelihood", "gamma_gamma_p", "backtest_model_mae", "backtest_naive_mae")
    for metric in metrics:
        assert np.isfinite(child.data.metrics[metric])
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "value")}
    assert {"value/backtest_deciles.csv", "value/backtest_calibration.png"} <= artifacts
    mlflow.set_tracking_uri(config.tracking_uri())
    served = mlflow.pyfunc.load_model(f"models:/customer_value/{value.model.version}")
    example = pd.DataFrame(
        [[0.0, 0.0, 30.0, 0.0], [5.0, 170.0, 180.0, 40.0]],
        columns=["repeat_purchases", "repeat_span_days", "observed_days", "repeat_spend_mean"],
    )
    scores = served.predict(example)
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert scores.churn_risk.between(0, 1).all()
    requirements = client.download_artifacts(version.run_id, "model/requirements.txt")
    assert "scipy==" in Path(requirements).read_text()


def test_every_customer_with_a_purchase_gets_scores(pipeline):
    segments = pd.read_parquet(pipeline["score"].path)
    features = pd.read_parquet(pipeline["features"].path).set_index("customer_id")
    bought = features.loc[segments.customer_id, "observed_days"].to_numpy() >= 0
    scored = segments[bought]
    assert scored[list(SCORE_COLUMNS)].notna().all().all()
    assert scored.churn_risk.between(0, 1).all() and scored.p_alive.between(0, 1).all()
    assert (scored.expected_value >= 0).all()
    assert (segments[~bought].churn_risk_band == NO_PURCHASE_BAND).all()
    one_time = scored[features.loc[scored.customer_id, "repeat_purchases"].to_numpy() == 0]
    assert len(one_time) and one_time.expected_spend.gt(0).all()


def test_profiles_carry_value_figures_per_segment(pipeline):
    config, score = pipeline["config"], pipeline["score"]
    profiles = pd.read_parquet(config.partition(config.score.profiles_output))
    segments = pd.read_parquet(score.path)
    high = segments.assign(high=segments.churn_risk_band == "high").groupby("segment_id").high.mean()
    merged = profiles.set_index("segment_id")
    assert np.allclose(merged.loc[high.index, "high_risk_share"], high)
    total = segments.groupby("segment_id").expected_value.sum()
    assert np.allclose(merged.loc[total.index, "expected_value"], total)


def test_lapsing_loyal_customers_are_at_higher_churn_risk(spark, tmp_path):
    """Among the planted high-value loyal customers, those planted as lapsing (no activity in the
    last month) rank above the rest by churn risk."""
    lake = tmp_path / "lake"
    generate_lake(lake, 4000, seed=5, end=LAPSING_END, lapsing=0.3)
    config = make_config(tmp_path, lake, value__backtest=False)
    features = read_partition(spark, run_features(spark, config).path, "features", "")
    fit = fit_value_model(features, config)
    scores = with_value_scores(features, fit.model).select("customer_id", "churn_risk").toPandas()
    planted = pd.read_parquet(lake / "planted_segments.parquet")
    loyal = planted[planted.segment == "high_value_loyal"].merge(scores, on="customer_id")
    auc = roc_auc_score(loyal.lapsed, loyal.churn_risk)
    print(f"lapsing loyal customers: {loyal.lapsed.sum()} of {len(loyal)}, churn risk AUC {auc:.3f}")
    assert loyal.lapsed.sum() >= 50
    assert auc >= 0.8


def test_a_lake_where_nobody_buys_twice_is_refused(spark, tmp_path):
    frame = spark.createDataFrame(
        [(1, 0.0, 0.0, 10.0, 0.0), (2, 0.0, 0.0, 3.0, 0.0), (3, 0.0, 0.0, -1.0, 0.0)],
        "customer_id long, repeat_purchases double, repeat_span_days double, observed_days double, "
        "repeat_spend_mean double",
    )
    config = make_config(tmp_path, tmp_path)
    with pytest.raises(TrainingError, match="no customer bought on two different days"):
        fit_value_model(frame, config)


def test_non_positive_spend_is_left_out_of_gamma_gamma_and_counted(spark, tmp_path):
    rows = [(i, 2.0 + i % 3, 20.0 + i % 7, 60.0 + i % 11, 10.0 + i % 13) for i in range(40)]
    rows += [(100, 3.0, 30.0, 60.0, 0.0), (101, 1.0, 5.0, 60.0, -12.0)]
    frame = spark.createDataFrame(
        rows,
        "customer_id long, repeat_purchases double, repeat_span_days double, observed_days double, "
        "repeat_spend_mean double",
    )
    fit = fit_value_model(frame, make_config(tmp_path, tmp_path))
    assert fit.repeat_customers == 42 and fit.non_positive_spend == 2 and fit.gamma_gamma.customers == 40
    assert json.loads(fit.model.to_json())["gamma_gamma"]["q"] > 1


def test_a_horizon_longer_than_the_history_stops_train_with_exit_2_and_registers_nothing(
    pipeline, lake, tmp_path, capsys
):
    features = pipeline["config"].path(pipeline["config"].features.output)
    config = make_config(
        tmp_path, lake, features__output=features, value__backtest=True, value__horizon_days=5000
    )
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config_to_yaml(config))
    assert main(["train", "--config", str(config_file)]) == 2
    err = capsys.readouterr().err
    assert "value.horizon_days (5000) is longer than the order history allows" in err
    client = MlflowClient(config.tracking_uri())
    assert client.search_model_versions("name = 'customer_value'") == []
    assert client.search_model_versions("name = 'customer_segments'") == []
    (train,) = [r for r in client.search_runs(["1"]) if "mlflow.parentRunId" not in r.data.tags]
    assert train.info.status == "FAILED"


def test_scoring_with_a_version_trained_without_the_value_model_exits_2_naming_it(
    pipeline, lake, tmp_path, capsys
):
    features = pipeline["config"].path(pipeline["config"].features.output)
    config = make_config(tmp_path, lake, features__output=features, value__enabled=False)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config_to_yaml(config))
    assert main(["train", "--config", str(config_file)]) == 0
    trained = capsys.readouterr()
    assert "registered customer_segments version 1 as challenger and champion (the model had none)" in (
        trained.out
    )
    assert "Registered model" not in trained.err and "Created version" not in trained.err  # MLflow's notes
    assert main(["score", "--config", str(config_file), "--set", "value.enabled=true"]) == 2
    err = capsys.readouterr().err
    assert "version 1 of 'customer_segments' was trained without a customer value model" in err
    assert not (tmp_path / "segments").exists()
