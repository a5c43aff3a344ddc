"""Aliases and version tags set by several processes at once, on a real MLflow SQLite store: the
store inserts a new alias or tag after a lookup, and refuses the second of two inserts at once;
segcore's setters try again, so that every process ends well and the last write wins."""

from __future__ import annotations

import multiprocessing

import pytest
from mlflow.tracking import MlflowClient

from segcore.config import build_config
from segcore.tracking.registry import set_alias, tag_version
from segcore.tracking.store import open_tracking

NAME = "writes-test"
NEW_KEYS = 25  # each a new tag and a new alias, which every process sets at the same time

pytestmark = pytest.mark.usefixtures("tracking_uri_restored")


def _config(workdir: str):
    return build_config(
        {"workdir": workdir, "mlflow": {"experiment": "writes-tests", "registered_model": NAME}}
    )


def _set_new_ones(workdir: str, start, results) -> None:
    """What two promotions at once do to one version: set its tags, then move an alias to it."""
    tracking = open_tracking(_config(workdir))
    start.wait(60)
    try:
        for n in range(NEW_KEYS):
            tag_version(tracking, "1", {f"promotion.key{n}": "set"})
            set_alias(tracking, f"alias{n}", "1")
    except Exception as exc:  # the test reports it
        results.put(f"{type(exc).__name__}: {str(exc)[:300]}")
        return
    results.put("ok")


def test_processes_setting_one_alias_and_tag_at_once_all_succeed(tmp_path):
    tracking = open_tracking(_config(str(tmp_path)))
    tracking.client.create_registered_model(NAME)
    tracking.client.create_model_version(NAME, source=tmp_path.as_uri())
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(3), context.Queue()
    processes = [
        context.Process(target=_set_new_ones, args=(str(tmp_path), start, results)) for _ in range(3)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(60)
    assert outcomes == ["ok"] * 3
    version = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_model_version(NAME, "1")
    assert {key for key in version.tags if key.startswith("promotion.")} == {
        f"promotion.key{n}" for n in range(NEW_KEYS)
    }
    assert set(version.aliases) == {f"alias{n}" for n in range(NEW_KEYS)}
