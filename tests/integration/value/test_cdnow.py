"""The published BG/NBD and Gamma-Gamma results on the CDNOW sample, reproduced through segcore's
own path: lake folder -> config mapping -> feature stage -> value fit (and the holdout backtest)."""

import logging

import pandas as pd
import pytest
from cdnow import cdnow_config, cdnow_lake

from segcore.config import build_config
from segcore.features.stage import run_features
from segcore.storage.partitions import read_partition, resolve_partition
from segcore.value.backtest import inputs_from_orders, run_backtest, stored_or_computed_inputs
from segcore.value.fit import fit_value_model


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    root = tmp_path_factory.mktemp("cdnow")
    return root, cdnow_lake(root / "lake")


def test_calibration_fit_matches_the_papers(spark, cdnow):
    """Fader, Hardie & Lee (2005): BG/NBD r=0.243, alpha=4.414, a=0.793, b=2.426, LL=-9582.4 on
    1997-01-01..1997-09-30 in weeks; Gamma-Gamma p=6.25, q=3.74, gamma=15.44 on 946 repeat customers."""
    root, orders = cdnow
    config = build_config(cdnow_config(root / "calibration", orders))
    features = run_features(spark, config)
    assert features.customers == 2357
    fit = fit_value_model(read_partition(spark, features.path, "features", ""), config)
    bg, gg = fit.model.bgnbd, fit.model.gamma_gamma
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert {name: round(value, 3) for name, value in bg.as_dict().items()} == published
    assert round(fit.bgnbd.log_likelihood, 1) == -9582.4
    assert fit.bgnbd.customers == 2357 and fit.gamma_gamma.customers == fit.repeat_customers == 946
    assert fit.non_positive_spend == 0
    assert gg.p == pytest.approx(6.25, abs=0.01)
    assert gg.q == pytest.approx(3.74, abs=0.01)
    assert gg.gamma == pytest.approx(15.448, abs=0.01)


def test_holdout_backtest_beats_the_naive_baseline(spark, cdnow):
    """Fitted on the calibration period and compared with 1997-10-01..1998-06-30 (39 weeks)."""
    root, orders = cdnow
    config = build_config({**cdnow_config(root / "holdout", orders, horizon_days=273), "as_of": "1998-07-01"})
    backtest = run_backtest(config, inputs_from_orders(spark, config))
    m = backtest.metrics
    print("CDNOW holdout backtest:", {k: round(v, 4) for k, v in m.items()})
    print(backtest.deciles.round(3).to_string(index=False))
    assert str(backtest.cutoff) == "1997-10-01" and m["customers"] == 2357
    assert round(backtest.fit.bgnbd.log_likelihood, 1) == -9582.4  # the same calibration fit
    # Repeat purchase days in the holdout: 1,882 (1,788 distinct purchase weeks, the paper's count).
    assert m["actual_purchases"] == 1882
    assert m["model_purchases"] == pytest.approx(m["actual_purchases"], rel=0.15)
    assert abs(m["naive_purchases"] - m["actual_purchases"]) > abs(
        m["model_purchases"] - m["actual_purchases"]
    )
    assert m["model_mae"] < m["naive_mae"] and m["model_churn_auc"] > 0.7
    assert not backtest.worse_than_naive
    actual = backtest.deciles["actual"]
    assert actual.iloc[-1] > 5 * actual.iloc[0]  # the prediction ranks customers


def _sorted(frame) -> pd.DataFrame:
    return frame.toPandas().sort_values("customer_id", ignore_index=True)


def test_the_feature_job_writes_the_backtest_inputs_train_would_compute_from_the_orders(spark, cdnow, caplog):
    """The inputs at the cutoff and the horizon's purchases come out of the feature job's pass over
    the orders, equal to the orders' own aggregation; a config with another horizon reads the orders."""
    root, orders = cdnow
    config = build_config({**cdnow_config(root / "stored", orders, horizon_days=273), "as_of": "1998-07-01"})
    folder = resolve_partition(spark, run_features(spark, config).path)
    with caplog.at_level(logging.INFO, logger="segcore"):
        stored = stored_or_computed_inputs(spark, config, folder)
    assert "reading the orders" not in caplog.text
    files = stored.inputFiles()
    assert files and all("/value_backtest/as_of=1998-07-01/v-" in f for f in files)
    expected = _sorted(inputs_from_orders(spark, config))
    assert len(expected) == 2357 and expected["actual_purchases"].sum() == 1882
    pd.testing.assert_frame_equal(_sorted(stored), expected, rtol=1e-9, check_dtype=False)
    from_orders = run_backtest(config, inputs_from_orders(spark, config)).metrics
    assert run_backtest(config, stored).metrics == pytest.approx(from_orders, rel=1e-12)  # summation order

    other = config.model_copy(update={"value": config.value.model_copy(update={"horizon_days": 200})})
    with caplog.at_level(logging.INFO, logger="segcore"):
        computed = stored_or_computed_inputs(spark, other, folder)
    assert "no backtest inputs for cutoff 1997-12-13 beside the feature table: reading the orders" in (
        caplog.text
    )
    assert not any("value_backtest" in f for f in computed.inputFiles())


def test_backtest_inputs_of_an_older_feature_table_are_not_used(spark, cdnow, caplog):
    """A feature table rebuilt without the backtest leaves the earlier inputs in place, but they
    belong to the earlier table's version: train reads the orders."""
    root, orders = cdnow
    config = build_config({**cdnow_config(root / "rebuilt", orders, horizon_days=273), "as_of": "1998-07-01"})
    run_features(spark, config)
    off = config.model_copy(update={"value": config.value.model_copy(update={"backtest": False})})
    folder = resolve_partition(spark, run_features(spark, off).path)
    assert resolve_partition(spark, config.partition("value_backtest"))  # the earlier inputs
    with caplog.at_level(logging.INFO, logger="segcore"):
        computed = stored_or_computed_inputs(spark, config, folder)
    assert "reading the orders" in caplog.text
    assert computed.count() == 2357
