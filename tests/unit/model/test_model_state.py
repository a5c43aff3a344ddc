"""The model's state: a versioned JSON format, read back from the first format on."""

import json

import pandas as pd
import pytest

from segcore.model.segment_model import STATE_FORMAT, SegmentModel

# A state as the first format wrote it (no format_version): kept verbatim, never regenerated.
FORMAT_1_STATE = (
    '{"preparation": {"features": ["a", "b"], "log_features": [], "lower": [-1000000000.0, '
    '-1000000000.0], "upper": [1000000000.0, 1000000000.0], "mean": [0.0, 0.0], "scale": [1.0, 1.0]}, '
    '"centres": [[0.0, 0.0], [10.0, 0.0]], "segment_ids": [4, 7], "segment_names": ["x", "y"], "next_id": 9}'
)


def test_a_state_in_the_previous_format_loads():
    model = SegmentModel.from_json(FORMAT_1_STATE)
    assert model.segment_ids == [4, 7] and model.next_id == 9 and model.features == ["a", "b"]
    scored = model.assign(pd.DataFrame({"a": [9.0, 1.0], "b": [0.0, 0.0]}))
    assert scored.segment_id.tolist() == [7, 4] and scored.segment_name.tolist() == ["y", "x"]
    assert json.loads(model.to_json())["format_version"] == STATE_FORMAT
    assert SegmentModel.from_json(model.to_json()).segment_ids == [4, 7]


def test_a_state_from_a_newer_format_is_refused_with_what_to_do():
    state = json.loads(FORMAT_1_STATE) | {"format_version": STATE_FORMAT + 1}
    with pytest.raises(ValueError, match=rf"format_version={STATE_FORMAT + 1} is not one this segcore reads"):
        SegmentModel.from_json(json.dumps(state))
