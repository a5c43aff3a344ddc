"""The promotion gate's arithmetic: ARI from a contingency table, and id conflicts named."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from segcore.promote.gate import ari_from_contingency, id_conflicts


def test_ari_from_the_contingency_table_equals_scikit_learns():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, 2000)
    b = np.where(rng.random(2000) < 0.7, a, rng.integers(0, 4, 2000))
    table = pd.crosstab(a, b).to_numpy()
    assert ari_from_contingency(table) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
    assert ari_from_contingency(np.diag([10, 20, 30])) == pytest.approx(1.0)


def test_id_conflicts_name_a_changed_id_and_an_id_given_to_another_segment():
    # champion 0 -> challenger 5 (a new id for a kept segment); champion 1 -> challenger 1 (kept);
    # challenger 2 takes most of champion 3, while champion 2 is split: id 2 changed meaning.
    table = pd.DataFrame(
        [[90, 0, 5, 0], [0, 80, 0, 0], [0, 10, 30, 30], [0, 0, 90, 0]],
        index=[0, 1, 2, 3],
        columns=[5, 1, 2, 7],
    )
    assert id_conflicts(table) == [
        "challenger segment 5 matches champion segment 0 but does not keep its id",
        "challenger segment 2 matches champion segment 3 but does not keep its id",
        "id 2 names a challenger segment that does not match champion segment 2",
    ]
