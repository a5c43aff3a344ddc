"""Fitting the value model on a table of :data:`~segcore.value.inputs.INPUT_COLUMNS`: Spark
aggregates, the driver maximises. BG/NBD sees the distinct ``(x, t_x, T)`` triples with their
counts; Gamma-Gamma the repeat customers with a positive mean spend, a seeded sample of
``value.gamma_gamma_sample`` of them at most."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segcore.config import Config
from segcore.errors import TrainingError
from segcore.value.bgnbd import BgNbdFit, fit_bgnbd
from segcore.value.gamma_gamma import GammaGammaFit, fit_gamma_gamma
from segcore.value.model import DAYS_PER_UNIT, ValueModel

X, T_X, T, SPEND = "repeat_purchases", "repeat_span_days", "observed_days", "repeat_spend_mean"


@dataclass(frozen=True)
class ValueFit:
    model: ValueModel
    bgnbd: BgNbdFit
    gamma_gamma: GammaGammaFit
    distinct_triples: int
    repeat_customers: int
    non_positive_spend: int  # repeat customers left out of Gamma-Gamma

    def metrics(self) -> dict[str, float]:
        return {
            "bgnbd_log_likelihood": self.bgnbd.log_likelihood,
            "bgnbd_customers": self.bgnbd.customers,
            "bgnbd_distinct_triples": self.distinct_triples,
            "gamma_gamma_log_likelihood": self.gamma_gamma.log_likelihood,
            "gamma_gamma_customers": self.gamma_gamma.customers,
            "repeat_customers": self.repeat_customers,
            "non_positive_spend_customers": self.non_positive_spend,
            **{f"bgnbd_{k}": v for k, v in self.model.bgnbd.as_dict().items()},
            **{f"gamma_gamma_{k}": v for k, v in self.model.gamma_gamma.as_dict().items()},
        }


def fit_value_model(inputs: DataFrame, config: Config) -> ValueFit:
    """Fit BG/NBD and Gamma-Gamma on the customers of ``inputs`` with a purchase, or
    :class:`TrainingError`."""
    unit = DAYS_PER_UNIT[config.value.time_unit]
    bought = inputs.where(F.col(T) >= 0)
    triples = bought.groupBy(X, T_X, T).count().toPandas()
    if triples.empty:
        raise TrainingError(
            "the value model needs customers with a purchase before as_of, found none in the orders: "
            "check lake.orders or as_of, or set value.enabled: false"
        )
    bgnbd = fit_bgnbd(triples[X], triples[T_X] / unit, triples[T] / unit, triples["count"])
    repeat = bought.where(F.col(X) > 0)
    counts = repeat.agg(
        F.count(F.when(F.col(SPEND) > 0, 1)).alias("positive"), F.count(F.lit(1)).alias("all")
    ).first()
    positive = repeat.where(F.col(SPEND) > 0)
    limit = config.value.gamma_gamma_sample
    if counts["positive"] > limit:  # a little over the share, then cut: exactly `limit` rows
        positive = positive.sample(
            fraction=min(1.0, 1.1 * limit / counts["positive"]), seed=config.kmeans.seed
        )
    spend = positive.select(X, SPEND).limit(limit).toPandas()
    gamma_gamma = fit_gamma_gamma(spend[X], spend[SPEND])
    model = ValueModel(
        bgnbd.model,
        gamma_gamma.model,
        config.value.time_unit,
        config.value.horizon_days,
        config.value.monthly_discount_rate,
        dict(config.value.risk_bands),
    )
    return ValueFit(
        model, bgnbd, gamma_gamma, len(triples), counts["all"], counts["all"] - counts["positive"]
    )
