"""The value model backtested on the customers' own future: fitted as of ``as_of − horizon`` and
compared with what each customer did in ``[as_of − horizon, as_of)``, beside a naive baseline
that projects each customer's past repeat-purchase rate."""

from __future__ import annotations

import datetime as dt
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segcore.config import Config
from segcore.errors import TrainingError
from segcore.features.orders import order_rows
from segcore.runtime.logs import log
from segcore.storage import versions
from segcore.storage.hadoop import HadoopStore, read_text
from segcore.value import backtest_sums
from segcore.value.fit import ValueFit, X, fit_value_model
from segcore.value.inputs import (
    CUTOFF_FILE,
    INPUT_COLUMNS,
    backtest_cutoff,
    backtest_inputs,
    cutoff_record,
    purchase_days,
)
from segcore.value.model import ValueModel

# Churn AUCs closer than this are a tie: on a few thousand customers the difference is noise.
AUC_TIE = 0.01


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
    summed = sums_over_horizon(inputs, fit.model)
    return Backtest(cutoff, fit, backtest_sums.metrics(summed), backtest_sums.deciles(summed))


def sums_over_horizon(inputs: DataFrame, model: ValueModel) -> pd.DataFrame:
    """The sums of :mod:`segcore.value.backtest_sums` over every customer of ``inputs``: one Arrow pass
    that scores and sums each partition, then one small aggregation of the partitions' bins."""
    columns = [*INPUT_COLUMNS, "actual_purchases"]

    def sums(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for frame in backtest_sums.partition_sums(model, (batch.to_pandas() for batch in batches)):
            yield pa.RecordBatch.from_pandas(frame, preserve_index=False)

    partial = inputs.select(*[F.col(c).cast("double") for c in columns]).mapInArrow(
        sums, backtest_sums.SCHEMA
    )
    return partial.groupBy("kind", "bin").agg(*[F.sum(c).alias(c) for c in backtest_sums.SUMS]).toPandas()
