"""scripts/bench_chain.py compares the feature job with a hand-written Spark SQL job: that job must
compute the same figures, or the comparison says nothing."""

from __future__ import annotations

import importlib.util
import sys

import pandas as pd
from conftest import AS_OF, ROOT

COMPARED = (
    "recency_days",
    "frequency",
    "monetary_total",
    "monetary_mean",
    "tenure_days",
    "discount_rate",
    "return_rate",
    "order_interval_cv",
    "events_per_active_month",
    "sessions_per_active_month",
)


def _bench_chain():
    spec = importlib.util.spec_from_file_location("bench_chain", ROOT / "scripts" / "bench_chain.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_reference_job_computes_the_features_it_is_compared_with(spark, lake, pipeline):
    for table in ("customers", "orders", "events"):
        spark.read.parquet(str(lake / table)).createOrReplaceTempView(table)
    reference = spark.sql(_bench_chain().reference_sql(AS_OF.isoformat())).toPandas().set_index("customer_id")
    features = pd.read_parquet(pipeline["features"].path).set_index("customer_id")
    shares = [c for c in reference.columns if c.endswith("_share")]
    assert len(shares) == 16 and set(shares) <= set(features.columns)
    buyers = reference.index[reference["frequency"] > 0]
    assert len(buyers) > 0.5 * len(features) and set(reference.index) == set(features.index)
    columns = [*COMPARED, *shares]
    expected = reference.loc[buyers, columns].fillna(0.0).astype(float).sort_index()
    actual = features.loc[buyers, columns].sort_index()
    pd.testing.assert_frame_equal(actual, expected, check_names=False, rtol=1e-9, atol=1e-9)
