"""Drift arithmetic without Spark: centre change in the later model's space, and the demo's
earlier month."""

import datetime as dt

import numpy as np
import pytest
from drift_data import EARLIER_MODEL, LATER_MODEL

from segcore.cli.demo import month_before
from segcore.drift.figures import centre_change


def test_centre_change_is_measured_in_the_later_models_space_for_shared_ids():
    table = centre_change(EARLIER_MODEL, LATER_MODEL)
    assert table.segment_id.tolist() == [5]
    assert table.centre_distance.iloc[0] == pytest.approx(np.hypot(0.5, 1.0))
    assert (table.change_a.iloc[0], table.change_b.iloc[0]) == pytest.approx((0.5, -2.0))


@pytest.mark.parametrize(
    "day, before",
    [
        ("2026-06-30", "2026-05-31"),
        ("2026-03-31", "2026-02-28"),
        ("2026-03-15", "2026-02-15"),
        ("2026-01-31", "2025-12-31"),
    ],
)
def test_the_demos_earlier_month_is_the_previous_month_end_or_the_same_day(day, before):
    assert month_before(dt.date.fromisoformat(day)) == dt.date.fromisoformat(before)
