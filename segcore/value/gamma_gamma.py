"""The Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV: using
iso-value curves"), on repeat customers' purchase count ``x`` and mean spend ``m``; vectorised NumPy."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, psi

from segcore.errors import TrainingError

BOUNDS = (1e-6, 1e6)


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    gamma: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def expected_spend(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """E[spend per purchase | x, m]: the population mean pγ/(q−1) shrunk towards the customer's
        own mean by the number of purchases (the population mean for x = 0)."""
        p, q, gamma = self.p, self.q, self.gamma
        weight = p * x / (p * x + q - 1)
        return (1 - weight) * p * gamma / (q - 1) + weight * np.where(x > 0, m, 0.0)


def log_likelihood(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's log-likelihood of mean spend ``m`` over ``x`` purchases, and its gradient by
    (p, q, γ) (shape 3 × n)."""
    p, q, gamma = params
    px = p * x
    log_total = np.log(x * m + gamma)
    value = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_total
    )
    d_p = x * (psi(px + q) - psi(px) + np.log(m) + np.log(x) - log_total)
    d_q = psi(px + q) - psi(q) + np.log(gamma) - log_total
    d_gamma = q / gamma - (px + q) / (x * m + gamma)
    return value, np.vstack([d_p, d_q, d_gamma])


@dataclass(frozen=True)
class GammaGammaFit:
    model: GammaGamma
    log_likelihood: float
    customers: int


def fit_gamma_gamma(x: np.ndarray, m: np.ndarray) -> GammaGammaFit:
    """Maximise the likelihood of repeat customers' ``(x, m)`` (x > 0, m > 0), or :class:`TrainingError`."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    if len(x) < 2:
        raise TrainingError(
            f"Gamma-Gamma needs repeat customers with a positive mean spend, found {len(x)}: check "
            "lake.orders (amount) or set value.enabled: false"
        )

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        value, gradient = log_likelihood(params, x, m)
        return -value.mean(), -gradient.mean(axis=1) * params

    start = np.log([1.0, 2.0, float(np.mean(m))])
    bounds = [tuple(np.log(BOUNDS))] * 3
    found = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 1000})
    model = GammaGamma(*(float(v) for v in np.exp(found.x)))
    if not found.success or not np.isfinite(found.fun) or model.q <= 1:
        raise TrainingError(
            f"the Gamma-Gamma fit did not converge to a finite mean spend ({found.message}; q must "
            f"exceed 1): parameters reached {model}; set value.enabled: false or check lake.orders (amount)"
        )
    return GammaGammaFit(model, float(-found.fun * len(x)), len(x))
