"""The drift tests' data: two months of scorings with a planted migration (the second month's
feature table is built from the first's so that the truth is known: exactly 10% of the largest
segment take on the behaviour of the most lapsed segment's most typical customer, some customers of
another segment leave, new ones arrive, then it is scored with the same registered model), and two
hand-made models whose centres move."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import config_with

from segcore.model.preparation import Preparation
from segcore.model.segment_model import SegmentModel
from segcore.score.stage import score_segments
from segcore.storage.partitions import read_partition, write_partition

LATER = dt.date(2026, 7, 31)
LAPSING_SHARE = 0.10
DEPARTING, ARRIVING = 40, 25


def _copy(spark, source: str, target: str) -> None:
    write_partition(read_partition(spark, source, "partition", "the pipeline fixture writes it"), target)


def plant_months(spark, pipeline: dict, workdir: Path) -> dict:
    """Two scorings in ``workdir``: the pipeline's (as_of 2026-06-30) and LATER's, planted."""
    first = pipeline["config"]
    data = {"workdir": str(workdir), "as_of": first.as_of.isoformat()}
    config = config_with(data)
    for output in (first.features.output, first.score.output):
        _copy(spark, first.partition(output), config.partition(output))
    features = read_partition(spark, first.partition(first.features.output), "features", "").toPandas()
    scoring = read_partition(spark, first.partition(first.score.output), "segments", "").toPandas()
    merged = scoring.merge(features, on="customer_id")
    sizes = scoring.segment_id.value_counts()
    recency = merged.groupby("segment_id").recency_days.median()
    mover = int(sizes.index[0])  # the largest segment
    lapsed = int(recency.drop(mover).idxmax())  # the most lapsed other segment
    leaving = int(sizes.drop([mover, lapsed]).index[-1])
    donor = merged[merged.segment_id == lapsed].sort_values("distance").iloc[0]
    rng = np.random.default_rng(3)
    members = scoring.customer_id[scoring.segment_id == mover].to_numpy()
    lapsers = rng.choice(members, round(LAPSING_SHARE * len(members)), replace=False)
    leavers = rng.choice(
        scoring.customer_id[scoring.segment_id == leaving].to_numpy(), DEPARTING, replace=False
    )
    columns = [c for c in features.columns if c != "customer_id"]
    later = features[~features.customer_id.isin(leavers)].copy()
    for column in columns:
        later.loc[later.customer_id.isin(lapsers), column] = donor[column]
    newcomers = pd.DataFrame([donor[columns]] * ARRIVING, columns=columns).astype(later[columns].dtypes)
    newcomers.insert(0, "customer_id", features.customer_id.max() + 1 + np.arange(ARRIVING))
    later_config = config_with(data, as_of=LATER.isoformat(), mlflow__tracking_uri=first.tracking_uri())
    write_partition(
        spark.createDataFrame(pd.concat([later, newcomers], ignore_index=True)),
        later_config.partition(first.features.output),
    )
    score_segments(spark, later_config, pipeline["train"].model.version)
    before = sizes.to_dict()
    after = dict(before)
    after[mover] -= len(lapsers)
    after[lapsed] += len(lapsers) + ARRIVING
    after[leaving] -= DEPARTING
    shift = {s: after[s] / sum(after.values()) - before[s] / sum(before.values()) for s in before}
    return {
        "workdir": workdir,
        "config": config,
        "mover": mover,
        "lapsed": lapsed,
        "leaving": leaving,
        "lapsers": len(lapsers),
        "members": len(members),
        "shift": shift,
    }


def drift_args(months: dict, *settings: str) -> list[str]:
    """`segcore drift` from the first month to LATER in the months' workdir, with ``settings``."""
    return [
        "drift",
        "--from",
        "2026-06-30",
        "--to",
        LATER.isoformat(),
        "--set",
        f"workdir={months['workdir']}",
        *[item for setting in settings for item in ("--set", setting)],
    ]


def _model(centres, ids, mean, scale) -> SegmentModel:
    """A two-feature model (a, b) without log features or clipping."""
    preparation = Preparation(["a", "b"], [], [-1e9, -1e9], [1e9, 1e9], mean, scale)
    return SegmentModel(preparation, np.asarray(centres, float), ids, [f"s{i}" for i in ids], max(ids) + 1)


# Segment 5 moves from (12, 24) in original units, which is (0, 0) in the later model's space, to
# (0.5, -1) there, i.e. (12.5, 22); segment 4 is retired and 6 is new.
EARLIER_MODEL = _model([[0, 0], [1, 1]], [4, 5], [10.0, 20.0], [2.0, 4.0])
LATER_MODEL = _model([[0.5, -1], [3, 3]], [5, 6], [12.0, 24.0], [1.0, 2.0])
