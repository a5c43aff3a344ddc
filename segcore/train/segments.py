"""From the chosen fit to the segment model: ids aligned with the champion's, every customer
assigned and profiled in Spark, segments named."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from segcore.config import Config
from segcore.model.profiles import feature_columns, profile_with_population
from segcore.model.segment_model import SegmentModel
from segcore.runtime.logs import step
from segcore.train.align import Alignment, Reserve, align
from segcore.train.inputs import TrainingInputs
from segcore.train.naming import name_segments
from segcore.train.sweep import Selection


@dataclass(frozen=True)
class Segments:
    """The trained model and what describes its segments."""

    model: SegmentModel
    alignment: Alignment
    profile: pd.DataFrame  # one row per segment, with segment_name
    names: dict[int, str]  # segment id -> name


def build_segments(
    config: Config,
    inputs: TrainingInputs,
    selection: Selection,
    champion: SegmentModel | None,
    reserve: Reserve,
) -> Segments:
    """Align the chosen centres with ``champion`` (new segments' ids from ``reserve``), profile
    every customer's segment in one Spark aggregation, and name the segments."""
    centres, preparation = selection.result.centres, inputs.preparation
    alignment = align(centres, champion, preparation, config.segments.max_match_distance, reserve)
    with step("train", "profile segments"):
        profile, population = profile_with_population(
            inputs.frame.drop("customer_id"),
            feature_columns(inputs.frame),
            preparation,
            config.train.log_features,
            centres,
            alignment.ids,
        )
        names = {**name_segments(profile, population), **config.segments.names}
    model = SegmentModel(
        preparation, centres, alignment.ids, [names[i] for i in alignment.ids], alignment.next_id
    )
    profile.insert(1, "segment_name", profile["segment_id"].map(names))
    return Segments(model, alignment, profile, names)
