"""BG/NBD and Gamma-Gamma on NumPy arrays: gradients, the scores' limits, the JSON state, errors."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad
from value_data import CDNOW, CDNOW_SPEND, cdnow_model

from segcore.errors import TrainingError
from segcore.value import bgnbd, gamma_gamma
from segcore.value.backtest import Backtest
from segcore.value.bgnbd import fit_bgnbd
from segcore.value.gamma_gamma import fit_gamma_gamma
from segcore.value.model import ValueModel
from segcore.value.scores import NO_PURCHASE_BAND

RNG = np.random.default_rng(7)
X = RNG.integers(0, 12, 300).astype(float)
T = RNG.uniform(5, 60, 300)
T_X = np.where(X > 0, T * RNG.uniform(0, 1, 300), 0.0)
SPEND = RNG.gamma(4.0, 10.0, 300)
BANDS = {"low": 0.3, "medium": 0.6, "high": 1.0}


def _model(discount: float = 0.0, horizon: int = 91) -> ValueModel:
    return cdnow_model(horizon, discount, BANDS)


def _inputs(x, t_x_days, T_days, spend) -> pd.DataFrame:
    columns = ("repeat_purchases", "repeat_span_days", "observed_days", "repeat_spend_mean")
    return pd.DataFrame(dict(zip(columns, map(np.atleast_1d, (x, t_x_days, T_days, spend)), strict=True)))


@pytest.mark.parametrize("point", [[0.3, 4.0, 0.8, 2.5], [1.7, 20.0, 1.5, 0.9]])
def test_bgnbd_gradient_matches_finite_differences(point):
    def value(p):
        return bgnbd.Likelihood(X, T_X, T)(p)[0].sum()

    def gradient(p):
        return bgnbd.Likelihood(X, T_X, T)(p)[1].sum(axis=1)

    assert check_grad(value, gradient, np.array(point)) < 1e-4 * np.abs(gradient(np.array(point))).max()


def test_gamma_gamma_gradient_matches_finite_differences():
    repeat = X > 0

    def value(p):
        return gamma_gamma.log_likelihood(p, X[repeat], SPEND[repeat])[0].sum()

    def gradient(p):
        return gamma_gamma.log_likelihood(p, X[repeat], SPEND[repeat])[1].sum(axis=1)

    point = np.array([5.0, 3.0, 12.0])
    assert check_grad(value, gradient, point) < 1e-4 * np.abs(gradient(point)).max()


def test_counted_triples_fit_like_one_row_per_customer():
    """The weighted fit over distinct triples is the fit over every customer."""
    frame = pd.DataFrame({"x": X, "t_x": np.round(T_X), "T": np.round(T)})
    per_customer = fit_bgnbd(frame.x, frame.t_x, frame["T"], np.ones(len(frame)))
    triples = frame.value_counts().reset_index()
    weighted = fit_bgnbd(triples.x, triples.t_x, triples["T"], triples["count"])
    assert weighted.customers == per_customer.customers == len(frame)
    assert weighted.log_likelihood == pytest.approx(per_customer.log_likelihood, rel=1e-8)
    for name, value in per_customer.model.as_dict().items():
        assert getattr(weighted.model, name) == pytest.approx(value, rel=1e-4)


def test_churn_risk_ranks_one_time_buyers_by_time_since_their_purchase():
    """1 − p_alive is 0 for every one-time buyer; churn risk grows with the time since the purchase."""
    x, t_x = np.zeros(3), np.zeros(3)
    T = np.array([1.0, 10.0, 38.0])
    assert (CDNOW.p_alive(x, t_x, T) == 1).all()
    risk = CDNOW.no_purchase_probability(13.0, x, t_x, T)
    assert (np.diff(risk) > 0).all() and (risk < 1).all()


def test_a_regular_who_stopped_buying_is_at_higher_risk_than_one_who_just_bought():
    x, T = np.array([8.0, 8.0]), np.array([38.0, 38.0])
    t_x = np.array([37.0, 12.0])
    alive = CDNOW.p_alive(x, t_x, T)
    risk = CDNOW.no_purchase_probability(13.0, x, t_x, T)
    assert alive[0] > 0.9 > alive[1] and risk[1] > risk[0]


def test_expected_spend_shrinks_towards_the_population_mean():
    model = CDNOW_SPEND
    population = 6.25 * 15.44 / (3.74 - 1)
    spend = model.expected_spend(np.array([0.0, 1.0, 50.0]), np.array([0.0, 100.0, 100.0]))
    assert spend[0] == pytest.approx(population)
    assert population < spend[1] < spend[2] < 100


def test_scores_of_a_customer_without_a_purchase_are_null_with_their_own_band():
    scores = _model().score(_inputs([0, 3], [0, 70], [-1, 200], [0, 30]))
    assert scores.loc[0, ["p_alive", "churn_risk", "expected_value"]].isna().all()
    assert scores.loc[0, "churn_risk_band"] == NO_PURCHASE_BAND
    assert scores.loc[1].drop("churn_risk_band").notna().all()


def test_risk_bands_take_the_first_upper_bound_at_or_above_the_risk():
    bands = _model().risk_band(np.array([0.0, 0.3, 0.31, 0.6, 0.99, 1.0]))
    assert list(bands) == ["low", "low", "medium", "medium", "high", "high"]


def test_expected_value_is_discounted_month_by_month():
    inputs = _inputs([4], [150], [250], [40])
    plain, discounted = _model(0.0).score(inputs), _model(0.05).score(inputs)
    assert plain.expected_value[0] == pytest.approx(plain.expected_purchases[0] * plain.expected_spend[0])
    assert plain.expected_value[0] / 1.05**4 < discounted.expected_value[0] < plain.expected_value[0] / 1.05


def test_the_state_round_trips_through_json():
    model = _model(0.01)
    assert ValueModel.from_json(model.to_json()) == model


def test_bgnbd_refuses_a_population_without_repeat_purchases():
    with pytest.raises(TrainingError, match="no customer bought on two different days"):
        fit_bgnbd(np.zeros(5), np.zeros(5), np.full(5, 10.0), np.ones(5))


def test_gamma_gamma_refuses_too_few_repeat_customers():
    with pytest.raises(TrainingError, match="Gamma-Gamma needs repeat customers"):
        fit_gamma_gamma(np.array([2.0]), np.array([10.0]))


def test_gamma_gamma_reports_a_fit_without_a_finite_mean():
    """Spend with heavier tails than a gamma mixture can give: q ends at or below 1."""
    x = np.ones(400)
    m = np.exp(np.random.default_rng(3).standard_cauchy(400))
    with pytest.raises(TrainingError, match="did not converge to a finite mean spend"):
        fit_gamma_gamma(x, m)


@pytest.mark.parametrize(
    "model_mae, model_auc, worse",
    [(0.9, 0.80, False), (1.1, 0.80, True), (0.9, 0.795, False), (0.9, 0.78, True)],
)
def test_a_backtest_is_worse_than_naive_on_error_or_clearly_on_auc(model_mae, model_auc, worse):
    metrics = {"model_mae": model_mae, "naive_mae": 1.0, "model_churn_auc": model_auc, "naive_churn_auc": 0.8}
    assert Backtest(dt.date(2026, 3, 1), None, metrics, pd.DataFrame()).worse_than_naive is worse
