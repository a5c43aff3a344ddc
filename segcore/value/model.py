"""The customer value model: fitted BG/NBD and Gamma-Gamma parameters and the scoring settings,
kept as JSON (MLflow models-from-code, nothing pickled), and its scores of a pandas batch."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segcore.value.bgnbd import BgNbd
from segcore.value.gamma_gamma import GammaGamma
from segcore.value.scores import NO_PURCHASE_BAND

STATE_ARTIFACT = "value_model"
DAYS_PER_UNIT = {"day": 1.0, "week": 7.0}
DISCOUNT_PERIOD_DAYS = 30.0


@dataclass(frozen=True)
class ValueModel:
    bgnbd: BgNbd
    gamma_gamma: GammaGamma
    time_unit: str
    horizon_days: int
    monthly_discount_rate: float
    risk_bands: dict[str, float]

    def to_json(self) -> str:
        return json.dumps(
            {
                "bgnbd": self.bgnbd.as_dict(),
                "gamma_gamma": self.gamma_gamma.as_dict(),
                "time_unit": self.time_unit,
                "horizon_days": self.horizon_days,
                "monthly_discount_rate": self.monthly_discount_rate,
                "risk_bands": self.risk_bands,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> ValueModel:
        state = json.loads(text)
        return cls(
            BgNbd(**state["bgnbd"]),
            GammaGamma(**state["gamma_gamma"]),
            state["time_unit"],
            int(state["horizon_days"]),
            float(state["monthly_discount_rate"]),
            {str(k): float(v) for k, v in state["risk_bands"].items()},
        )

    def score(self, inputs: pd.DataFrame) -> pd.DataFrame:
        """:data:`SCORE_COLUMNS` for rows of :data:`INPUT_COLUMNS` (days); a customer without a
        purchase (``observed_days`` < 0) gets nulls and band :data:`NO_PURCHASE_BAND`."""
        x, t_x, T, bought = self._history(inputs)
        horizon = self.horizon_days / DAYS_PER_UNIT[self.time_unit]
        purchases = self.bgnbd.expected_purchases(horizon, x, t_x, T)
        spend = self.gamma_gamma.expected_spend(x, inputs["repeat_spend_mean"].to_numpy(float))
        risk = self.bgnbd.no_purchase_probability(horizon, x, t_x, T)
        scores = pd.DataFrame(
            {
                "p_alive": self.bgnbd.p_alive(x, t_x, T),
                "expected_purchases": purchases,
                "expected_spend": spend,
                "expected_value": self._discounted_purchases(x, t_x, T) * spend,
                "churn_risk": risk,
            }
        ).where(pd.Series(bought), None)
        scores["churn_risk_band"] = np.where(bought, self.risk_band(risk), NO_PURCHASE_BAND)
        return scores

    def purchases_and_churn_risk(self, inputs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Expected purchases over the horizon and the chance of none (``expected_purchases`` and
        ``churn_risk`` of :meth:`score`) for rows of :data:`INPUT_COLUMNS` of customers with a purchase."""
        x, t_x, T, _ = self._history(inputs)
        horizon = self.horizon_days / DAYS_PER_UNIT[self.time_unit]
        return (
            self.bgnbd.expected_purchases(horizon, x, t_x, T),
            self.bgnbd.no_purchase_probability(horizon, x, t_x, T),
        )

    def _history(self, inputs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """x, t_x and T in the model's time unit (T 0 for a customer without a purchase), and
        which customers bought."""
        unit = DAYS_PER_UNIT[self.time_unit]
        T = inputs["observed_days"].to_numpy(float) / unit
        bought = T >= 0
        x = inputs["repeat_purchases"].to_numpy(float)
        return x, inputs["repeat_span_days"].to_numpy(float) / unit, np.where(bought, T, 0.0), bought

    def risk_band(self, churn_risk: np.ndarray) -> np.ndarray:
        """The first band whose upper bound is at least the risk."""
        names, bounds = list(self.risk_bands), np.array(list(self.risk_bands.values()))
        index = np.searchsorted(bounds, np.clip(churn_risk, 0.0, 1.0), side="left")
        return np.array(names, dtype=object)[np.minimum(index, len(names) - 1)]

    def _discounted_purchases(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Expected purchases over the horizon, each 30-day period's discounted by the monthly rate."""
        unit = DAYS_PER_UNIT[self.time_unit]
        ends = np.append(
            np.arange(DISCOUNT_PERIOD_DAYS, self.horizon_days, DISCOUNT_PERIOD_DAYS), self.horizon_days
        )
        total, before = np.zeros_like(x), np.zeros_like(x)
        for period, end in enumerate(ends, start=1):
            cumulative = self.bgnbd.expected_purchases(end / unit, x, t_x, T)
            total += (cumulative - before) / (1 + self.monthly_discount_rate) ** period
            before = cumulative
        return total
