"""The registered model, on a real MLflow SQLite store: rebuilt from its own code and pinned
requirements, and segment ids that no registered version has used handed out only once."""

import logging
import subprocess
import sys
from functools import partial
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import ROOT

from segcore.config import build_config
from segcore.model.preparation import Preparation
from segcore.model.segment_model import SegmentModel
from segcore.tracking.lifecycle import tracked_run
from segcore.tracking.registry import (
    CHAMPION,
    MODEL_REQUIREMENTS,
    load_segment_model,
    log_model,
    register,
)
from segcore.tracking.segment_ids import NEXT_ID_TAG, reserve_segment_ids
from segcore.tracking.store import Tracking, open_tracking
from segcore.train.align import align

PREPARATION = Preparation(["a", "b"], [], [-1e9, -1e9], [1e9, 1e9], [0.0, 0.0], [1.0, 1.0])
NAME = "segments-test"


@pytest.fixture
def sqlite_registry(tmp_path):
    """A real MLflow SQLite store opened as a stage opens it; the tracking URI restored afterwards."""
    previous = mlflow.get_tracking_uri()
    config = build_config(
        {"workdir": str(tmp_path), "mlflow": {"experiment": "model-tests", "registered_model": NAME}}
    )
    yield open_tracking(config)
    mlflow.set_tracking_uri(previous)


def _register(tracking: Tracking, centres, champion: SegmentModel | None) -> tuple[SegmentModel, str]:
    """Align ``centres`` as training does and register the model as a new version."""
    centres = np.asarray(centres, dtype=np.float64)
    alignment = align(centres, champion, PREPARATION, 2.0, partial(reserve_segment_ids, tracking))
    names = [f"segment {i}" for i in alignment.ids]
    model = SegmentModel(PREPARATION, centres, alignment.ids, names, alignment.next_id)
    with tracked_run(tracking, "registration") as run:
        registered = register(tracking, log_model(model), {}, run)
    return model, registered.version


def test_ids_come_from_every_registered_version_never_reused(sqlite_registry):
    champion, first = _register(sqlite_registry, [[0, 0], [10, 0], [0, 10]], None)
    assert champion.segment_ids == [0, 1, 2]
    # A challenger, never promoted: segment 2 disappears, a new one at (50, 50) takes id 3.
    challenger, second = _register(sqlite_registry, [[0, 0], [10, 0], [50, 50]], champion)
    assert challenger.segment_ids == [0, 1, 3]
    # The next version still starts from the champion: segment 1 disappears and a new one appears
    # at (-50, -50). Id 3 meant (50, 50) in the challenger: the new segment gets 4.
    later, third = _register(sqlite_registry, [[0, 0], [0, 10], [-50, -50]], champion)
    assert later.segment_ids == [0, 2, 4]
    assert sqlite_registry.client.get_registered_model(NAME).tags[NEXT_ID_TAG] == "5"
    assert str(sqlite_registry.client.get_model_version_by_alias(NAME, CHAMPION).version) == first
    stored = {v: load_segment_model(f"models:/{NAME}/{v}") for v in (second, third)}
    np.testing.assert_array_equal(stored[second].centres[stored[second].segment_ids.index(3)], [50, 50])
    np.testing.assert_array_equal(stored[third].centres[stored[third].segment_ids.index(4)], [-50, -50])


# Loads the model where segcore is not installed: the editable install's finder is dropped, so
# segcore can only come from the model's own code.
LOAD_ELSEWHERE = """
import sys
sys.meta_path = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
sys.path = [p for p in sys.path if "__editable__" not in p and p not in ("", sys.argv[2])]
try:
    import segcore
except ImportError:
    pass
else:
    raise SystemExit("segcore is still importable: the test would prove nothing")
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
import segcore
print(segcore.__file__)
print(model.predict(pd.DataFrame({"a": [9.0, 0.0], "b": [0.0, 11.0]})).segment_id.tolist())
"""


def test_a_registered_version_rebuilds_from_its_own_code_and_pinned_requirements(
    sqlite_registry, tmp_path, caplog
):
    with caplog.at_level(logging.WARNING, logger="mlflow"):
        _, version = _register(sqlite_registry, [[0, 0], [10, 0], [0, 10]], None)
    assert not [r for r in caplog.records if "pickle" in r.getMessage().lower()]
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/{version}", dst_path=str(tmp_path)))
    assert not list(folder.rglob("*.pkl"))
    requirements = (folder / "requirements.txt").read_text().split()
    assert {f"{name}=={metadata.version(name)}" for name in MODEL_REQUIREMENTS} <= set(requirements)
    assert not [r for r in requirements if r.startswith("segcore")]
    repo = str(ROOT)
    shown = subprocess.run(
        [sys.executable, "-c", LOAD_ELSEWHERE, str(folder), repo],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert Path(shown[0]).is_relative_to(folder)
    assert shown[1] == "[1, 2]"
