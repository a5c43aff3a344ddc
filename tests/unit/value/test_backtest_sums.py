"""The backtest's sums (segcore.value.backtest_sums), per partition and added up across
partitions as Spark adds them: the figures equal a direct computation over every customer, the
binned churn AUC scikit-learn's exact one, the deciles those of exact quantiles."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from value_data import backtest_customers, cdnow_model

from segcore.value.backtest_sums import SUMS, PartitionSums, deciles, forecasts, metrics

MODEL = cdnow_model()


def _summed(*partitions: list[pd.DataFrame]) -> pd.DataFrame:
    """Each partition's batches into its sums, then the sums of every partition per kind and bin
    (Spark's aggregation of the partitions' rows)."""
    rows = []
    for batches in partitions:
        sums = PartitionSums()
        for batch in batches:
            sums.add(batch)
        rows.append(sums.rows())
    return pd.concat(rows).groupby(["kind", "bin"], as_index=False)[list(SUMS)].sum()


def test_the_figures_equal_a_direct_computation_however_the_customers_are_split():
    customers = backtest_customers(5_000, seed=1)
    scored = forecasts(MODEL, customers)
    whole = metrics(_summed([scored]))
    split = metrics(_summed([scored[:1000], scored[1000:1500]], [scored[1500:]]))
    assert split == pytest.approx(whole, rel=1e-12)

    actual = customers["actual_purchases"]
    expected = MODEL.score(customers)["expected_purchases"]
    rate = customers["repeat_purchases"] / customers["observed_days"].where(customers["observed_days"] > 0)
    naive = rate.fillna(0.0) * 91
    assert whole["customers"] == 5_000 and whole["actual_purchases"] == actual.sum()
    assert whole["model_purchases"] == pytest.approx(expected.sum(), rel=1e-12)
    assert whole["naive_purchases"] == pytest.approx(naive.sum(), rel=1e-12)
    assert whole["model_mae"] == pytest.approx((expected - actual).abs().mean(), rel=1e-12)
    assert whole["naive_mae"] == pytest.approx((naive - actual).abs().mean(), rel=1e-12)
    assert whole["lapsed_share"] == pytest.approx((actual == 0).mean(), rel=1e-12)


def test_binned_churn_auc_equals_the_exact_one():
    rng = np.random.default_rng(3)
    risk = rng.uniform(size=20_000)
    lapsed = rng.uniform(size=risk.size) < risk  # a score that ranks, imperfectly
    coarse = np.round(risk, 2)  # ties across lapsed and active customers count half
    zeros = np.zeros(risk.size)
    scored = pd.DataFrame(
        {
            "predicted": zeros,
            "naive": zeros,
            "actual": np.where(lapsed, 0.0, 1.0),
            "model_churn": risk,
            "naive_churn": coarse,
        }
    )
    figures = metrics(_summed([scored[:7_000]], [scored[7_000:]]))
    assert figures["model_churn_auc"] == pytest.approx(roc_auc_score(lapsed, risk), abs=1e-4)
    assert figures["naive_churn_auc"] == pytest.approx(roc_auc_score(lapsed, coarse), abs=1e-12)


def test_without_both_lapsed_and_active_customers_the_auc_is_nan():
    scored = forecasts(MODEL, backtest_customers(50, seed=2).assign(actual_purchases=0.0))
    assert math.isnan(metrics(_summed([scored]))["model_churn_auc"])


def test_deciles_are_those_of_exact_quantiles_to_a_bin():
    """A bin of predicted purchases is 0.05% wide: the deciles' customers differ from exact
    quantiles' by the few customers of the bin an edge falls in."""
    customers = backtest_customers(20_000, seed=4)
    scored = forecasts(MODEL, customers)
    binned = deciles(_summed([scored[:9_000]], [scored[9_000:]]))
    exact = (
        scored.assign(decile=pd.qcut(scored["predicted"].rank(method="first"), 10, labels=range(1, 11)))
        .groupby("decile", observed=True)
        .agg(customers=("predicted", "size"), predicted=("predicted", "mean"), actual=("actual", "mean"))
    )
    assert list(binned["decile"]) == list(range(1, 11))
    assert binned["customers"].sum() == 20_000
    assert np.abs(binned["customers"].to_numpy() - exact["customers"].to_numpy()).max() <= 20
    assert binned["predicted"].to_numpy() == pytest.approx(exact["predicted"].to_numpy(), rel=2e-3)
    assert binned["actual"].to_numpy() == pytest.approx(exact["actual"].to_numpy(), abs=0.01)
    assert (np.diff(binned["predicted"]) > 0).all()
