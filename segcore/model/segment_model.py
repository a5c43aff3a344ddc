"""The segmentation model: fitted preparation, centres and segment names, scoring pandas frames.

It is stored as an ``mlflow.pyfunc`` model from code (:mod:`segcore.model.pyfunc`, nothing is
pickled) whose state is one versioned JSON artifact, so a registered version can be read and
audited without running or unpickling anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segcore.kmeans.kernels import nearest
from segcore.model.preparation import Preparation

STATE_ARTIFACT = "segment_model"
# The state's format: 1 had no format_version key; 2 adds it; 3 adds the preparation's value model
# (a model clustering on value scores). A loader reads every format up to its own.
STATE_FORMAT = 3
OUTPUT_COLUMNS = {"segment_id": "long", "segment_name": "string", "distance": "double"}


@dataclass(frozen=True)
class SegmentModel:
    """Everything needed to assign a customer to a segment."""

    preparation: Preparation
    centres: np.ndarray  # (k, d) in the prepared (scaled) space
    segment_ids: list[int]  # stable ids (see segcore.train.align), in centre order
    segment_names: list[str]
    next_id: int  # the first id no version of the model has used

    @property
    def features(self) -> list[str]:
        return self.preparation.features

    def assign(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Segment id, name and distance to the segment's centre (in the scaled space)."""
        labels, squared = nearest(self.preparation.transform(frame), self.centres)
        return pd.DataFrame(
            {
                "segment_id": np.asarray(self.segment_ids, dtype=np.int64)[labels],
                "segment_name": np.asarray(self.segment_names, dtype=object)[labels],
                "distance": np.sqrt(squared),
            },
            index=frame.index,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "format_version": STATE_FORMAT,
                "preparation": self.preparation.to_dict(),
                "centres": self.centres.tolist(),
                "segment_ids": self.segment_ids,
                "segment_names": self.segment_names,
                "next_id": self.next_id,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SegmentModel:
        """The model from its state in any format up to ``STATE_FORMAT``."""
        state = json.loads(text)
        version = state.get("format_version", 1)
        if not isinstance(version, int) or not 1 <= version <= STATE_FORMAT:
            raise ValueError(
                f"segment model state format_version={version!r} is not one this segcore reads "
                f"(1..{STATE_FORMAT}): score it with the segcore version that trained it, or upgrade segcore"
            )
        return cls(
            Preparation(**state["preparation"]),
            np.asarray(state["centres"], dtype=np.float64),
            [int(i) for i in state["segment_ids"]],
            list(state["segment_names"]),
            int(state["next_id"]),
        )
