"""A segment model clustering on value scores: it derives them from the feature table's value
inputs with the value model it carries, the same way from any caller and after a JSON round trip."""

import numpy as np
import pandas as pd
import pytest

from segcore.errors import TrainingError
from segcore.model.preparation import Preparation
from segcore.model.segment_model import SegmentModel
from segcore.value.bgnbd import BgNbd
from segcore.value.gamma_gamma import GammaGamma
from segcore.value.inputs import INPUT_COLUMNS, NO_PURCHASE
from segcore.value.model import ValueModel

CDNOW = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)
VALUE_MODEL = ValueModel(CDNOW, GammaGamma(6.25, 3.74, 15.44), "week", 91, 0.0, {"all": 1.0})
# Customers: a regular, a lapsed regular, a one-time buyer and one who never bought.
ROWS = pd.DataFrame(
    {
        "frequency": [8.0, 8.0, 1.0, 0.0],
        "repeat_purchases": [7.0, 7.0, 0.0, 0.0],
        "repeat_span_days": [170.0, 30.0, 0.0, 0.0],
        "observed_days": [180.0, 360.0, 100.0, NO_PURCHASE],
        "repeat_spend_mean": [45.0, 45.0, 0.0, 0.0],
    }
)


def _model() -> SegmentModel:
    bounds, mean, scale = ([0.0, 0.0], [100.0, 1.0]), [0.0, 0.0], [1.0, 1.0]
    preparation = Preparation(["frequency", "churn_risk"], [], *bounds, mean, scale, VALUE_MODEL.to_json())
    centres = np.array([[8.0, 0.0], [8.0, 1.0], [0.0, 1.0]])  # loyal, lapsing, gone
    return SegmentModel(preparation, centres, [1, 2, 3], ["loyal", "lapsing", "gone"], 4)


def test_the_model_reads_value_inputs_in_place_of_the_scores_it_derives():
    assert _model().preparation.inputs == ["frequency", *INPUT_COLUMNS]


def test_scores_derived_from_inputs_assign_as_the_scores_themselves():
    risk = VALUE_MODEL.score(ROWS[list(INPUT_COLUMNS)])["churn_risk"].fillna(1.0)
    given = _model().assign(pd.DataFrame({"frequency": ROWS.frequency, "churn_risk": risk}))
    derived = _model().assign(ROWS)
    pd.testing.assert_frame_equal(derived, given)
    assert derived.segment_name.tolist() == ["loyal", "lapsing", "gone", "gone"]


def test_a_customer_without_a_purchase_counts_as_certain_to_churn():
    derived = _model().preparation.with_derived(ROWS)
    assert derived.churn_risk.iloc[-1] == 1.0
    assert 0.0 < derived.churn_risk.iloc[0] < derived.churn_risk.iloc[1] < 1.0


def test_the_value_model_survives_the_json_state():
    model = SegmentModel.from_json(_model().to_json())
    pd.testing.assert_frame_equal(model.assign(ROWS), _model().assign(ROWS))


def test_rows_without_value_inputs_are_refused_naming_them():
    refusal = r"lacks the value input\(s\) \['observed_days'\] from which the model derives \['churn_risk'\]"
    with pytest.raises(TrainingError, match=refusal):
        _model().assign(ROWS.drop(columns="observed_days"))
