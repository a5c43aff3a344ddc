"""Choosing k and keeping segment ids, on arrays: the knee, the fixed rule, stability, alignment."""

import numpy as np
import pandas as pd
import pytest

from segcore.kmeans import FitSettings
from segcore.model.preparation import Preparation
from segcore.model.segment_model import SegmentModel
from segcore.train.align import align
from segcore.train.choose_k import choose_k, knee, stability


def test_knee_finds_the_elbow():
    assert knee([2, 3, 4, 5, 6, 7], [100, 60, 25, 22, 20, 19]) == 4


def test_fixed_rule_outside_the_range_is_refused():
    table = pd.DataFrame({"k": [3, 4], "inertia": [2.0, 1.0]})
    with pytest.raises(ValueError, match="select.fixed_k=9 is not in the tried range 3..4"):
        choose_k(table, "fixed", 9)


def test_stability_is_high_for_clusters_and_low_for_noise():
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(c, 0.3, (300, 2)) for c in ((0, 0), (5, 5), (0, 5))])
    noise = rng.uniform(0, 1, (900, 2))
    settings = FitSettings(seed=1, max_iter=100)
    assert stability(blobs, 3, settings, 4) > 0.95
    assert stability(noise, 8, settings, 4) < 0.9


def test_unmatched_segments_get_new_ids_never_recycled():
    preparation = Preparation(["a", "b"], [], [-1e9, -1e9], [1e9, 1e9], [0.0, 0.0], [1.0, 1.0])
    champion = SegmentModel(preparation, np.array([[0.0, 0.0], [10.0, 0.0]]), [4, 7], ["x", "y"], next_id=9)
    new = np.array([[10.1, 0.0], [0.2, 0.0], [50.0, 50.0]])
    result = align(new, champion, preparation, max_distance=2.0)
    assert result.ids == [7, 4, 9]
    assert result.next_id == 10
