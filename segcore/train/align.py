"""Stable segment ids: match new centres to the champion's so an id keeps its meaning.

Both sets of centres are compared in the new model's scaled feature space (the champion's are
taken back to original units, then through the new preparation). A Hungarian assignment on centre
distance pairs them; a pair farther apart than ``max_match_distance``, or a new segment left over,
gets a new id — counted up from the first id no registered version has used (champion or not:
``next_free``, kept in the registry, see :func:`segcore.tracking.store.next_free_id`), so ids are never
recycled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from segcore.model.preparation import Preparation
from segcore.model.segment_model import SegmentModel


@dataclass(frozen=True)
class Alignment:
    ids: list[int]  # stable id of each new centre, in centre order
    next_id: int  # the first id no version has used yet
    matching: pd.DataFrame  # one row per new centre: champion id, distance, matched


def champion_centres(champion: SegmentModel, preparation: Preparation) -> np.ndarray | None:
    """The champion's centres in the new scaled space; None when the feature sets differ."""
    if champion.features != preparation.features:
        return None
    return preparation.transform_array(champion.preparation.inverse(champion.centres))


def align(
    centres: np.ndarray,
    champion: SegmentModel | None,
    preparation: Preparation,
    max_distance: float,
    next_free: int = 0,
) -> Alignment:
    """Stable ids for ``centres``: the champion's where they match, new ones from ``next_free``
    (or the champion's next id, if higher) otherwise."""
    k = len(centres)
    if champion is None:
        ids = list(range(next_free, next_free + k))
        return Alignment(ids, next_free + k, pd.DataFrame({"new_centre": range(k), "segment_id": ids}))
    previous = champion_centres(champion, preparation)
    next_id = max(champion.next_id, next_free)
    ids: list[int | None] = [None] * k
    champion_ids: list[int | None] = [None] * k
    distances = [np.nan] * k
    if previous is not None:
        cost = np.sqrt(((centres[:, None, :] - previous[None, :, :]) ** 2).sum(axis=2))
        for new, old in zip(*linear_sum_assignment(cost), strict=True):
            champion_ids[new], distances[new] = champion.segment_ids[old], float(cost[new, old])
            if cost[new, old] <= max_distance:
                ids[new] = champion.segment_ids[old]
    for new in range(k):
        if ids[new] is None:
            ids[new], next_id = next_id, next_id + 1
    matching = pd.DataFrame(
        {
            "new_centre": range(k),
            "segment_id": ids,
            "champion_segment_id": pd.array(champion_ids, dtype="Int64"),
            "distance": distances,
            "matched": [i == c for i, c in zip(ids, champion_ids, strict=True)],
        }
    )
    return Alignment([int(i) for i in ids], next_id, matching)
