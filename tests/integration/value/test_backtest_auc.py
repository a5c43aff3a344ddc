"""The backtest's churn AUC, from lapsed and active customers per score bin in Spark, equals
scikit-learn's exact AUC over every customer."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from segcore.value.backtest import churn_auc


def test_binned_auc_equals_the_exact_one(spark):
    rng = np.random.default_rng(3)
    risk = rng.uniform(size=20_000)
    lapsed = (rng.uniform(size=risk.size) < risk).astype(float)  # a score that ranks, imperfectly
    coarse = np.round(risk, 2)  # ties across lapsed and active customers count half
    frame = pd.DataFrame({"risk": risk, "coarse": coarse, "lapsed": lapsed})
    scored = spark.createDataFrame(frame)
    assert churn_auc(scored, "risk") == pytest.approx(roc_auc_score(lapsed, risk), abs=1e-4)
    assert churn_auc(scored, "coarse") == pytest.approx(roc_auc_score(lapsed, coarse), abs=1e-12)


def test_without_both_kinds_of_customer_the_auc_is_nan(spark):
    scored = spark.createDataFrame(pd.DataFrame({"risk": [0.1, 0.9], "lapsed": [1.0, 1.0]}))
    assert math.isnan(churn_auc(scored, "risk"))
