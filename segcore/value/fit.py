"""Fitting the value model on a table of :data:`~segcore.value.inputs.INPUT_COLUMNS`: Spark
aggregates, the driver maximises. BG/NBD sees the distinct ``(x, t_x, T)`` triples with their
counts (the same aggregation counts those with a positive spend); Gamma-Gamma the repeat
customers with a positive mean spend, a seeded sample of ``value.gamma_gamma_sample`` of them at
most."""

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
    positive_spend = F.col(SPEND) > 0
    triples = (
        bought.groupBy(X, T_X, T)
        .agg(F.count(F.lit(1)).alias("count"), F.count(F.when(positive_spend, 1)).alias("positive"))
        .toPandas()
    )
    if triples.empty:
        raise TrainingError(
            "the value model needs customers with a purchase before as_of, found none in the orders: "
            "check lake.orders or as_of, or set value.enabled: false"
        )
    bgnbd = fit_bgnbd(triples[X], triples[T_X] / unit, triples[T] / unit, triples["count"])
    repeat = triples[triples[X] > 0]
    repeat_customers, positive_count = int(repeat["count"].sum()), int(repeat["positive"].sum())
    positive = bought.where((F.col(X) > 0) & positive_spend)
    limit = config.value.gamma_gamma_sample
    if positive_count > limit:  # a little over the share, then cut: exactly `limit` rows
        positive = positive.sample(fraction=min(1.0, 1.1 * limit / positive_count), seed=config.kmeans.seed)
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
        model, bgnbd, gamma_gamma, len(triples), repeat_customers, repeat_customers - positive_count
    )
