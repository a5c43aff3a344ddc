"""The BG/NBD model of repeat purchases (Fader, Hardie & Lee 2005, "Counting your customers the
easy way"), on per-customer summaries ``x`` (repeat purchases), ``t_x`` (time of the last one
after the first purchase) and ``T`` (time observed since the first purchase).

The likelihood depends on ``(x, t_x, T)`` only, so the fit takes distinct triples with their
counts: what Spark aggregates, whatever the number of customers. Everything here is vectorised
NumPy, used alike by the fit on the driver and by the scores in Spark's Arrow batches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1, psi

from segcore.errors import TrainingError

PARAMETERS = ("r", "alpha", "a", "b")
BOUNDS = (1e-6, 1e6)  # every parameter, on its own scale


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def _odds_dead(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(dead at T) / P(alive at T): 0 for customers without a repeat purchase."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        repeat = x > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = np.log(a) - np.log(b + x - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return np.where(repeat, np.exp(np.where(repeat, log_odds, 0.0)), 0.0)

    def p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(the customer is still active at T | x, t_x, T)."""
        return 1.0 / (1.0 + self._odds_dead(x, t_x, T))

    def expected_purchases(self, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T] (the paper's equation 10)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        ratio = (alpha + T) / (alpha + T + t)
        series = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        bracket = (a + b + x - 1) / (a - 1) * (1 - ratio ** (r + x) * series)
        return bracket / (1.0 + self._odds_dead(x, t_x, T))

    def no_purchase_probability(self, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(no purchase in (T, T + t] | x, t_x, T) = 1 − p_alive + p_alive · ((α+T)/(α+T+t))^(r+x):
        dead, or alive without a purchase (a customer only drops out right after a purchase)."""
        alive = self.p_alive(x, t_x, T)
        quiet = ((self.alpha + T) / (self.alpha + T + t)) ** (self.r + x)
        return 1.0 - alive + alive * quiet


class Likelihood:
    """The log-likelihood of fixed ``(x, t_x, T)`` rows as a function of the parameters. The
    terms of ``x`` alone are computed over its distinct values (tens), those of ``T`` and ``t_x``
    over theirs (days: hundreds), and then spread to the rows."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
        self.x = x
        self._x, self._of_x = np.unique(x, return_inverse=True)
        self._T, self._of_T = np.unique(T, return_inverse=True)
        self._t_x, self._of_t_x = np.unique(t_x, return_inverse=True)

    def __call__(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's log-likelihood and its gradient by (r, α, a, b) (shape 4 × n)."""
        r, alpha, a, b = params
        x, of_x = self._x, self._of_x
        repeat = x > 0
        b_x = np.where(repeat, b + x - 1, 1.0)
        # Per distinct x: the parts of the log-likelihood and of each derivative that need no time.
        counts_part = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        counts_part += gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        dropout_part = np.where(repeat, np.log(a) - np.log(b_x), -np.inf)
        d_r_part = psi(r + x) - psi(r) + np.log(alpha)
        d_a_part = psi(a + b) - psi(a + b + x)
        d_b_part = psi(a + b) + psi(b + x) - psi(b) - psi(a + b + x)
        # Per row: alive at T (a3), or dropped out right after the last purchase (a4).
        log_T, log_t_x = np.log(alpha + self._T)[self._of_T], np.log(alpha + self._t_x)[self._of_t_x]
        r_x = r + self.x
        a3 = -r_x * log_T
        a4 = dropout_part[of_x] - r_x * log_t_x
        tail = np.logaddexp(a3, a4)
        w4 = np.exp(a4 - tail)  # the weight of "dropped out after the last purchase"
        w3 = 1.0 - w4
        d_r = d_r_part[of_x] - w3 * log_T - w4 * log_t_x
        d_alpha = r / alpha - r_x * (
            w3 / (alpha + self._T)[self._of_T] + w4 / (alpha + self._t_x)[self._of_t_x]
        )
        d_a = d_a_part[of_x] + w4 / a
        d_b = d_b_part[of_x] - w4 / b_x[of_x]
        return counts_part[of_x] + tail, np.vstack([d_r, d_alpha, d_a, d_b])


@dataclass(frozen=True)
class BgNbdFit:
    model: BgNbd
    log_likelihood: float
    customers: int
    iterations: int


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, counts: np.ndarray) -> BgNbdFit:
    """Maximise the likelihood of distinct ``(x, t_x, T)`` triples weighted by ``counts``
    (L-BFGS-B on log-parameters with the analytic gradient), or :class:`TrainingError`."""
    x, t_x, T, counts = (np.asarray(v, dtype=float) for v in (x, t_x, T, counts))
    if not (x > 0).any():
        raise TrainingError(
            "BG/NBD needs repeat purchases, but no customer bought on two different days before "
            "as_of: check lake.orders (order_ts, customer_id) or choose a later as_of"
        )
    total = counts.sum()
    likelihood = Likelihood(x, t_x, T)

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        value, gradient = likelihood(params)
        return -(counts @ value) / total, -(gradient @ counts) * params / total

    start = np.log([1.0, max(float(np.average(T, weights=counts)), 1e-3), 1.0, 1.0])
    bounds = [tuple(np.log(BOUNDS))] * 4
    found = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 1000})
    model = BgNbd(*(float(v) for v in np.exp(found.x)))
    if not found.success or not np.isfinite(found.fun):
        raise TrainingError(f"the BG/NBD fit did not converge ({found.message}); parameters reached {model}")
    return BgNbdFit(model, float(-found.fun * total), int(total), int(found.nit))
