"""Value scores as clustering features (``train.features: [..., churn_risk, expected_value]``), as
a user meets them: train, score, promote and the registered pyfunc derive the same scores from the
feature table with the value model trained beside the segments."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import make_config
from mlflow.tracking import MlflowClient

from segcore.promote.stage import promote_version
from segcore.score.stage import score_segments
from segcore.storage.versions import local_partition
from segcore.tracking.registry import load_version
from segcore.tracking.store import open_tracking
from segcore.train.stage import train_segments

VALUE_FEATURES = ["churn_risk", "expected_value"]


@pytest.fixture(scope="module")
def valued(spark, lake, pipeline, tmp_path_factory):
    """Two trains clustering on value scores (local, then dask) over the pipeline's feature table,
    in a store of their own, a scoring with the first, and the second promoted through the gate."""
    train = pipeline["config"].train
    config = make_config(
        tmp_path_factory.mktemp("value-features"),
        lake,
        features__output=pipeline["config"].path(pipeline["config"].features.output),
        kmeans__k=4,
        train__features=[*train.features, *VALUE_FEATURES],
        train__log_features=[*train.log_features, "expected_value"],
    )
    previous = mlflow.get_tracking_uri()
    try:
        trained = train_segments(spark, config)
        scored = score_segments(spark, config)
        on_dask = config.model_copy(deep=True)
        on_dask.kmeans.engine = "dask"
        dask_trained = train_segments(spark, on_dask)
        promotion = promote_version(config, dask_trained.model.version, spark=spark)
        yield {
            "config": config,
            "train": trained,
            "score": scored,
            "dask": dask_trained,
            "promotion": promotion,
        }
    finally:
        mlflow.set_tracking_uri(previous)


def test_the_segment_model_carries_the_value_model_trained_beside_it(valued):
    config, trained = valued["config"], valued["train"]
    model = load_version(open_tracking(config), trained.model.version)
    assert model.features[-2:] == VALUE_FEATURES
    client = MlflowClient(config.tracking_uri())
    value_run = client.get_model_version("customer_value", trained.value.model.version).run_id
    logged = client.download_artifacts(value_run, "value/value_model.json")
    assert model.preparation.value_model == Path(logged).read_text()
    example = client.download_artifacts(trained.run_id, "model/input_example.json")
    assert set(json.loads(Path(example).read_text())["columns"]) == set(model.preparation.inputs)


def test_segments_differ_in_churn_risk_and_profiles_show_it(valued):
    config, profile = valued["config"], valued["score"].profile.set_index("segment_id")
    segments = pd.read_parquet(local_partition(config.partition(config.score.output)))
    clustered = segments.churn_risk.fillna(1.0).groupby(segments.segment_id).mean()  # no purchase: 1
    assert clustered.max() - clustered.min() > 0.3
    # One mean_churn_risk per segment, the value figure's (customers with a purchase), beside the
    # feature's median and z-score.
    buyers = segments.churn_risk.groupby(segments.segment_id).mean()
    np.testing.assert_allclose(profile.loc[buyers.index, "mean_churn_risk"], buyers, rtol=1e-9)
    assert {"median_churn_risk", "z_churn_risk", "z_expected_value"} <= set(profile.columns)
    assert not [c for c in profile.columns if c.endswith(("_x", "_y"))]


def test_the_registered_pyfunc_scores_rows_of_the_feature_table(valued):
    config, scored = valued["config"], valued["score"]
    mlflow.set_tracking_uri(config.tracking_uri())  # the fixture's teardown restores it
    served = mlflow.pyfunc.load_model(scored.model_uri)
    rows = pd.read_parquet(local_partition(config.partition(config.features.output)))
    assert "churn_risk" not in rows.columns
    predicted = served.predict(rows).set_index(rows.customer_id)
    written = pd.read_parquet(local_partition(config.partition(config.score.output))).set_index("customer_id")
    pd.testing.assert_series_equal(
        predicted.segment_id.loc[written.index], written.segment_id, check_dtype=False
    )


def test_dask_derives_the_scores_on_its_workers_as_spark_does(valued):
    local, dask = valued["train"], valued["dask"]
    assert dask.metrics["inertia"] == pytest.approx(local.metrics["inertia"], rel=1e-9)
    assert sorted(dask.profile.customers) == sorted(local.profile.customers)


def test_the_gate_compares_models_deriving_their_own_scores(valued):
    promotion = valued["promotion"]
    assert promotion.decision == "promoted"
    assert dict((c.name, c.value) for c in promotion.gate.checks)["stability_ari"] == pytest.approx(1.0)
