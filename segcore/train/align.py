"""Stable segment ids: match new centres to the champion's so an id keeps its meaning.

Both sets of centres are compared in the new model's scaled feature space (the champion's are
taken back to original units, then through the new preparation). A Hungarian assignment on centre
distance pairs them; a pair farther apart than ``max_match_distance``, or a new segment left over,
gets a new id. New ids are reserved in the registry (``reserve``, see
:func:`segcore.tracking.registry.reserve_segment_ids`) at one compare-and-set, so they are never
recycled, not even by two trains at once.
"""

from __future__ import annotations

from collections.abc import Callable
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


# Reserves ``count`` new ids, none below ``floor``; returns the first.
Reserve = Callable[[int, int], int]


def unshared(count: int, floor: int) -> int:
    """A :data:`Reserve` for a model that no registry shares: new ids start at ``floor``."""
    return floor


def align(
    centres: np.ndarray,
    champion: SegmentModel | None,
    preparation: Preparation,
    max_distance: float,
    reserve: Reserve = unshared,
) -> Alignment:
    """Stable ids for ``centres``: the champion's where they match, new ones from ``reserve``
    (none below the champion's next id) otherwise."""
    k = len(centres)
    if champion is None:
        first = reserve(k, 0)
        ids = list(range(first, first + k))
        return Alignment(ids, first + k, pd.DataFrame({"new_centre": range(k), "segment_id": ids}))
    previous = champion_centres(champion, preparation)
    ids: list[int | None] = [None] * k
    champion_ids: list[int | None] = [None] * k
    distances = [np.nan] * k
    if previous is not None:
        cost = np.sqrt(((centres[:, None, :] - previous[None, :, :]) ** 2).sum(axis=2))
        for new, old in zip(*linear_sum_assignment(cost), strict=True):
            champion_ids[new], distances[new] = champion.segment_ids[old], float(cost[new, old])
            if cost[new, old] <= max_distance:
                ids[new] = champion.segment_ids[old]
    unmatched = [new for new in range(k) if ids[new] is None]
    next_id = reserve(len(unmatched), champion.next_id) if unmatched else champion.next_id
    for new in unmatched:
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
