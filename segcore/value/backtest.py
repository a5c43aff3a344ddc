"""The value model backtested on the customers' own future: fitted as of ``as_of − horizon`` and
compared with what each customer did in ``[as_of − horizon, as_of)``, beside a naive baseline
that projects each customer's past repeat-purchase rate."""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from segcore.config import Config
from segcore.errors import TrainingError
from segcore.features.orders import order_rows
from segcore.runtime.logs import log
from segcore.storage import versions
from segcore.storage.hadoop import HadoopStore, read_text
from segcore.value.fit import T, ValueFit, X, fit_value_model
from segcore.value.inputs import backtest_inputs, purchase_days
from segcore.value.scoring import with_value_scores

DECILES = 10
# Churn AUCs closer than this are a tie: on a few thousand customers the difference is noise.
AUC_TIE = 0.01
# Churn scores (in [0, 1]) are counted in this many bins for their AUC: one small aggregation
# instead of a sort of every customer; pairs within a bin count half.
AUC_BINS = 10_000
# Beside the inputs in their partition (value.backtest_output): {"cutoff": "YYYY-MM-DD"}.
CUTOFF_FILE = "_segcore_backtest_cutoff.json"


@dataclass(frozen=True)
class Backtest:
    cutoff: dt.date
    fit: ValueFit
    metrics: dict[str, float]  # model_* and naive_* figures side by side
    deciles: pd.DataFrame  # mean predicted, naive and actual purchases per decile of prediction

    @property
    def worse_than_naive(self) -> bool:
        """A larger error per customer than the baseline's, or a churn AUC lower by over :data:`AUC_TIE`."""
        m = self.metrics
        return m["model_mae"] > m["naive_mae"] or m["model_churn_auc"] < m["naive_churn_auc"] - AUC_TIE


def backtest_cutoff(config: Config) -> dt.date:
    """Where the backtest's fit ends and its horizon starts: ``as_of − value.horizon_days``."""
    return config.as_of - dt.timedelta(days=config.value.horizon_days)


def cutoff_record(cutoff: dt.date) -> str:
    """The text of :data:`CUTOFF_FILE` beside the inputs for ``cutoff``."""
    return json.dumps({"cutoff": str(cutoff)})


def stored_or_computed_inputs(spark: SparkSession, config: Config, features: str) -> DataFrame:
    """The backtest's inputs (:func:`segcore.value.inputs.inputs_at_cutoff`): those the feature job
    committed with the feature table read from the version folder ``features``, for this cutoff;
    else (a table built with another ``value.horizon_days``, with the backtest off, or by an
    earlier segcore) :func:`inputs_from_orders`."""
    cutoff = backtest_cutoff(config)
    partition = config.partition(config.value.backtest_output)
    folder = versions.current(HadoopStore(spark, partition), partition)
    version = posixpath.basename(features.rstrip("/"))
    if (
        folder is not None
        and version.startswith(versions.VERSION_PREFIX)
        and posixpath.basename(folder.rstrip("/")) == version  # committed with this feature table
        and read_text(spark, versions.join(folder, CUTOFF_FILE)) == cutoff_record(cutoff)
    ):
        return spark.read.parquet(folder)
    log.info("value: no backtest inputs for cutoff %s beside the feature table: reading the orders", cutoff)
    return inputs_from_orders(spark, config)


def inputs_from_orders(spark: SparkSession, config: Config) -> DataFrame:
    """The backtest's inputs from the lake's purchase days before ``as_of``, their rows shuffled
    once by customer (every later aggregation is by customer)."""
    days = purchase_days(order_rows(spark, config).repartition("customer_id"))
    return backtest_inputs(days, backtest_cutoff(config), config.as_of)


def run_backtest(config: Config, inputs: DataFrame) -> Backtest:
    """Fit on ``inputs`` (of :func:`stored_or_computed_inputs`) and score that fit against the horizon."""
    inputs = inputs.cache()  # one row per customer, read by the check below, the fit and the scoring
    try:
        return _backtest(config, inputs, backtest_cutoff(config))
    finally:
        inputs.unpersist()


def _backtest(config: Config, inputs: DataFrame, cutoff: dt.date) -> Backtest:
    horizon = config.value.horizon_days
    if inputs.where(F.col(X) > 0).isEmpty():
        raise TrainingError(
            f"value.horizon_days ({horizon}) is longer than the order history allows: no customer bought "
            f"twice before {cutoff} (as_of {config.as_of} minus the horizon): shorten value.horizon_days "
            "or set value.backtest: false"
        )
    fit = fit_value_model(inputs, config)
    scored = (
        with_value_scores(inputs, fit.model)
        .withColumns(_naive(horizon))
        .withColumn("lapsed", (F.col("actual_purchases") == 0).cast("double"))
        .cache()
    )
    try:
        return Backtest(cutoff, fit, _metrics(scored), _deciles(scored))
    finally:
        scored.unpersist()


def _naive(horizon: int) -> dict[str, Column]:
    """The baseline: the customer's repeat purchases per day so far, projected over the horizon,
    and the Poisson chance of no purchase at that rate."""
    rate = F.coalesce(F.try_divide(F.col(X), F.col(T)), F.lit(0.0))
    return {"naive_purchases": rate * horizon, "naive_churn_risk": F.exp(-rate * horizon)}


def _metrics(scored: DataFrame) -> dict[str, float]:
    totals = (
        scored.agg(
            F.count(F.lit(1)).alias("customers"),
            F.sum("actual_purchases").alias("actual_purchases"),
            F.sum("expected_purchases").alias("model_purchases"),
            F.sum("naive_purchases").alias("naive_purchases"),
            F.avg(F.abs(F.col("expected_purchases") - F.col("actual_purchases"))).alias("model_mae"),
            F.avg(F.abs(F.col("naive_purchases") - F.col("actual_purchases"))).alias("naive_mae"),
            F.avg("lapsed").alias("lapsed_share"),
        )
        .first()
        .asDict()
    )
    totals["model_churn_auc"] = churn_auc(scored, "churn_risk")
    totals["naive_churn_auc"] = churn_auc(scored, "naive_churn_risk")
    return {key: float(value) for key, value in totals.items()}


def churn_auc(scored: DataFrame, score: str) -> float:
    """The area under the ROC curve of ``score`` (in [0, 1]) for ``lapsed`` (1.0 or 0.0), from the
    lapsed and active customers per bin of :data:`AUC_BINS` (NaN without both kinds)."""
    bins = (
        scored.groupBy(F.round(F.col(score) * AUC_BINS).alias("bin"))
        .agg(F.sum("lapsed").alias("lapsed"), F.count(F.lit(1)).alias("customers"))
        .toPandas()
        .sort_values("bin")
    )
    lapsed = bins["lapsed"].to_numpy(dtype=float)
    active = bins["customers"].to_numpy(dtype=float) - lapsed
    pairs = lapsed.sum() * active.sum()
    if pairs == 0:
        return float("nan")
    active_below = np.cumsum(active) - active
    return float((lapsed * (active_below + active / 2)).sum() / pairs)


def _deciles(scored: DataFrame) -> pd.DataFrame:
    """Customers in deciles of predicted purchases (approximate edges): mean predicted, naive and
    actual purchases each, the paper's conditional-expectation check."""
    edges = sorted(
        set(scored.approxQuantile("expected_purchases", [i / DECILES for i in range(1, DECILES)], 0.001))
    )
    decile = sum((F.col("expected_purchases") > edge).cast("int") for edge in edges) + F.lit(1)
    return (
        scored.groupBy(decile.alias("decile"))
        .agg(
            F.count(F.lit(1)).alias("customers"),
            F.avg("expected_purchases").alias("predicted"),
            F.avg("naive_purchases").alias("naive"),
            F.avg("actual_purchases").alias("actual"),
        )
        .orderBy("decile")
        .toPandas()
    )
