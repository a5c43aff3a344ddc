"""A value model and backtest customers that the unit and integration tiers' backtest tests share."""

from __future__ import annotations

import numpy as np
import pandas as pd

from segcore.value.bgnbd import BgNbd
from segcore.value.gamma_gamma import GammaGamma
from segcore.value.model import ValueModel

# The CDNOW paper's BG/NBD fit (weeks) and a Gamma-Gamma fit of the same data.
CDNOW = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)
CDNOW_SPEND = GammaGamma(6.25, 3.74, 15.44)


def cdnow_model(
    horizon: int = 91, discount: float = 0.0, bands: dict[str, float] | None = None
) -> ValueModel:
    return ValueModel(CDNOW, CDNOW_SPEND, "week", horizon, discount, bands or {"all": 1.0})


def backtest_customers(count: int, seed: int) -> pd.DataFrame:
    """Backtest inputs (days) of ``count`` customers with a purchase, with their customer_id and
    their purchases over the horizon (integers, as a Spark count gives them)."""
    rng = np.random.default_rng(seed)
    observed = rng.uniform(0, 400, count).round()
    repeats = rng.poisson(3, count)
    return pd.DataFrame(
        {
            "customer_id": np.arange(count),
            "repeat_purchases": repeats.astype(float),
            "repeat_span_days": np.where(repeats > 0, observed * rng.uniform(0, 1, count), 0.0).round(),
            "observed_days": observed,
            "repeat_spend_mean": rng.gamma(4.0, 10.0, count),
            "actual_purchases": rng.poisson(repeats / 4),
        }
    )
