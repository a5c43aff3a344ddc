"""The value model's score columns: their names and Spark types, and those that may enter
clustering. Names only, so that reading them (the config's checks) imports no NumPy or SciPy."""

from __future__ import annotations

# Score columns and their Spark types, in the order they are written.
SCORE_COLUMNS = {
    "p_alive": "double",
    "expected_purchases": "double",
    "expected_spend": "double",
    "expected_value": "double",
    "churn_risk": "double",
    "churn_risk_band": "string",
}
NO_PURCHASE_BAND = "no_purchase"
# The scores that may enter clustering (train.features, :mod:`segcore.value.features`), each with
# its value for a customer without a purchase (the model has no scores for one): certain to churn,
# nothing expected.
VALUE_FEATURES: dict[str, float] = {
    "p_alive": 0.0,
    "expected_purchases": 0.0,
    "expected_spend": 0.0,
    "expected_value": 0.0,
    "churn_risk": 1.0,
}
