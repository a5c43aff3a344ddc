"""The dask engine on an external cluster started with the `dask scheduler` and `dask worker`
commands, as a user runs it: `segcore train` against the scheduler's address, on a feature table of
several Parquet files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from commands import run
from conftest import AS_OF, free_port
from sklearn.metrics import adjusted_rand_score

from segcore.config import TrainConfig
from segcore.kmeans import FitSettings, core
from segcore.kmeans.engines.local import LocalBlocks
from segcore.kmeans.kernels import nearest

distributed = pytest.importorskip("distributed")

BIN = Path(sys.executable).parent
FEATURES = TrainConfig().features
LOGGED = set(TrainConfig().log_features)
FILE_ROWS = [2600, 0, 700, 4100, 1500]  # unequal Parquet files, one of them empty
K, SEED, WORKERS = 4, 42, 2
HIDE = 'mount -t tmpfs hidden "$0" && exec "$@"'  # then runs the worker, blind to folder $0


@pytest.fixture(scope="module")
def feature_table(tmp_path_factory):
    """``<root>/features/as_of=…/`` in five files (and wider than the clustered columns, as
    `segcore features` writes it), with the planted segment of every customer."""
    rng = np.random.default_rng(7)
    planted = rng.integers(K, size=sum(FILE_ROWS))
    centres = rng.uniform(0.5, 5.0, size=(K, len(FEATURES)))
    spread = centres[planted] + rng.normal(scale=0.1, size=(len(planted), len(FEATURES)))
    table = pd.DataFrame({"customer_id": np.arange(len(planted))})
    for j, feature in enumerate(FEATURES):
        table[feature] = np.expm1(spread[:, j]) if feature in LOGGED else spread[:, j] / 6
    for j in range(20):
        table[f"other_{j}"] = rng.normal(size=len(planted))
    root = tmp_path_factory.mktemp("shared")
    partition = root / "features" / f"as_of={AS_OF.isoformat()}"
    partition.mkdir(parents=True)
    bounds = np.cumsum([0, *FILE_ROWS])
    for i, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        table.iloc[start:stop].to_parquet(partition / f"part-{i:05d}.parquet", index=False)
    return root / "features", table, planted


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: the worker processes it spawned
        process.wait()


@contextmanager
def dask_cluster(logs: Path, workers: int, worker_prefix: tuple[str, ...] = ()):
    """`dask scheduler` and `dask worker` subprocesses on 127.0.0.1, and a client of them."""
    address = f"tcp://127.0.0.1:{free_port()}"
    started: list[subprocess.Popen] = []
    commands = {
        "scheduler": [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1]],
        "worker": [
            *worker_prefix,
            BIN / "dask",
            "worker",
            address,
            "--host",
            "127.0.0.1",
            "--nworkers",
            str(workers),
            "--nthreads",
            "1",
        ],
    }
    try:
        for name, command in commands.items():
            with (logs / f"{name}.log").open("w") as log:
                started.append(
                    subprocess.Popen(
                        [
                            str(part)
                            for part in [*command, "--no-dashboard", "--dashboard-address", "127.0.0.1:0"]
                        ],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
            client.get_task_stream()  # installs the scheduler's task-stream plugin from now on
            yield address, client
    finally:
        for process in reversed(started):
            _stop(process)


@pytest.fixture(scope="module")
def external_dask_cluster(tmp_path_factory):
    with dask_cluster(tmp_path_factory.mktemp("dask-logs"), WORKERS) as (address, client):
        yield address, client


def train(tmp_path: Path, features: Path, scheduler: str):
    return run(
        BIN / "segcore",
        "train",
        "--set",
        f"workdir={tmp_path}",
        "--set",
        f"features.output={features}",
        "--set",
        f"kmeans.k={K}",
        "--set",
        "kmeans.tol=0",
        "--set",
        "kmeans.engine=dask",
        "--set",
        f"kmeans.dask.scheduler={scheduler}",
        "--set",
        "value.enabled=false",  # a table of k-means features only
    )


def _registered_model(workdir: Path):
    import mlflow

    from segcore.tracking.registry import load_segment_model

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    try:
        return load_segment_model("models:/customer_segments/1")
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)  # as conftest leaves it for the other tests


def test_train_runs_on_the_external_scheduler_from_a_multi_file_table(
    external_dask_cluster, feature_table, tmp_path
):
    from distributed.utils import key_split

    address, client = external_dask_cluster
    features, table, planted = feature_table
    since = time.time()
    result = train(tmp_path, features, address)
    assert result.returncode == 0, result.stderr

    tasks = client.get_task_stream(start=since)
    ran = Counter(key_split(task["key"]) for task in tasks)
    assert ran["read_parquet"] == ran["rows"] == len(FILE_ROWS), ran  # each file read and prepared there
    holders = {task["worker"] for task in tasks if key_split(task["key"]) == "as_blocks"}
    assert holders == set(client.scheduler_info()["workers"])  # rows held on both workers

    model = _registered_model(tmp_path)
    assert adjusted_rand_score(planted, model.assign(table)["segment_id"]) == 1.0
    prepared = model.preparation.transform(table)
    local = core.fit(LocalBlocks(prepared), K, FitSettings(seed=SEED, max_iter=100, tol=0.0))
    matched = nearest(model.centres, local.centres)[0]
    assert sorted(matched) == list(range(K))
    np.testing.assert_allclose(model.centres, local.centres[matched], rtol=1e-9, atol=1e-12)


def test_workers_that_cannot_read_the_table_fail_with_what_to_do(feature_table, tmp_path):
    """A worker in its own mount namespace, where a tmpfs hides the feature table's folder."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "--mount", "true"]).returncode:
        pytest.skip("needs `unshare --mount` (root or user namespaces) to hide a folder from one worker")
    features = feature_table[0]
    hide = ("unshare", "--mount", "--propagation", "private", "sh", "-c", HIDE, str(features))
    with dask_cluster(tmp_path, 1, hide) as (address, client):
        worker = next(iter(client.scheduler_info()["workers"]))
        result = train(tmp_path, features, address)
    assert result.returncode == 3, result.stderr
    message = result.stderr
    assert f"Dask workers of the scheduler {address} cannot read the feature table {features}/" in message
    assert f"{worker}: FileNotFoundError" in message
    assert "file system mounted at the same path on every worker" in message
    assert "object-store URI" in message
