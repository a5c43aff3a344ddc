"""The test tiers, and the shared fixtures: one real local SparkSession per test session, a small
sample lake, the whole pipeline run once on it, a real `mlflow server`, and the data sets and runs
that modules of several tiers share.

Tiers, by folder (tests/<tier>/<package>/test_*.py, the package being segcore's), each test marked
with its tier here so that `pytest -m unit` (`scripts/test --fast`) selects exactly tests/unit/:

- unit: pure NumPy, scikit-learn, pandas, PyArrow and pydantic logic: no Spark, no MLflow store,
  no Dask cluster, no subprocess, no network. A unit test that asks for the fixtures spark,
  pipeline or mlflow_server, or for a fixture that depends on them, stops the run.
- integration: the shared local Spark session (local[2]), SQLite MLflow stores, a Dask
  LocalCluster, the segcore CLI run in this process, and `python` subprocesses (a Spark writer to
  kill, a fresh interpreter, a notebook kernel) that start no server.
- cluster: servers and clusters in subprocesses: spark-submit and a standalone master and worker,
  `mlflow server`, `dask scheduler` / `dask worker`, headless Chromium, the GPU (marker gpu), and
  scripts/ and the `segcore` command run as a user runs them.

A whole run goes unit, then integration, then cluster."""

from __future__ import annotations

import copy
import datetime as dt
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ.pop("MLFLOW_TRACKING_URI", None)
# Every JVM the tests start (this session's, and those of the `segcore`, spark-submit and Spark
# writer subprocesses, which spark-submit launches with SPARK_SUBMIT_OPTS) stops at the C1 compiler:
# short-lived JVMs spend much of their life in C2 compilations they never profit from. A speed
# setting only (the JVM computes the same): `segcore features` on a small lake in a subprocess takes
# 13-15% less time on 2 quiet cores, about 40% less on a busy machine, and the long-lived session of
# the integration tier runs no slower. Set SPARK_SUBMIT_OPTS yourself to run with other options.
os.environ.setdefault("SPARK_SUBMIT_OPTS", "-XX:TieredStopAtLevel=1")

from parallel import Cores, ModulesShareTheCores, shared_folder  # noqa: E402

from segcore.config import Config, build_config  # noqa: E402
from segcore.sample.lake import generate_lake  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]  # the repository
AS_OF = dt.date(2026, 6, 30)
LAKE_CUSTOMERS = 3000


TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "cluster")
NOT_IN_UNIT = ("spark", "pipeline", "mlflow_server")


def _tier(item: pytest.Item) -> str | None:
    """The tier folder ``item`` lives in (tests/<tier>/...), or None."""
    parts = Path(item.path).resolve().relative_to(TESTS).parts
    return parts[0] if len(parts) > 1 and parts[0] in TIERS else None


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its tier; refuse tests outside the tier folders and unit tests that
    use Spark, the pipeline or an MLflow server, directly or through another fixture."""
    refused = []
    for item in items:
        tier = _tier(item)
        if tier is None:
            refused.append(f"{item.nodeid}: not under tests/{{{','.join(TIERS)}}}/")
            continue
        item.add_marker(getattr(pytest.mark, tier))
        used = [name for name in NOT_IN_UNIT if name in getattr(item, "fixturenames", ())]
        if tier == "unit" and used:
            refused.append(
                f"{item.nodeid}: a unit test uses the fixture(s) {', '.join(used)} (directly or through "
                "another fixture): move it to tests/integration/ or tests/cluster/"
            )
    if refused:
        raise pytest.UsageError("tests in the wrong tier:\n  " + "\n  ".join(refused))


class _TiersInOrder:
    """Run the selected tests tier by tier: unit, integration, cluster (modules stay whole)."""

    @pytest.hookimpl(trylast=True)  # after -m, -k and pytest's own reordering
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if not (config.getoption("failedfirst", False) or config.getoption("newfirst", False)):
            items.sort(key=lambda item: TIERS.index(_tier(item)))


CORES = pytest.StashKey[Cores]()


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_TiersInOrder(), "segcore-tiers-in-order")
    cores = config.stash[CORES] = Cores(shared_folder(config))
    config.pluginmanager.register(ModulesShareTheCores(cores), "segcore-modules-share-the-cores")


@pytest.fixture(scope="session")
def cores(pytestconfig) -> Cores:
    """The machine's cores, shared between the xdist workers (parallel.Cores): ``with
    cores.alone():`` around what a test measures against the clock."""
    return pytestconfig.stash[CORES]


@pytest.fixture(scope="session", autouse=True)
def _class_archive_build(request, tmp_path_factory):
    """The Spark JVMs' class archive (jvm_classes), started at the session's first test when a
    selected test is outside the unit tier: it builds while the unit tier runs. Yields the
    build, or None."""
    if all(_tier(item) == "unit" for item in request.session.items):
        yield None
        return
    from jvm_classes import ArchiveBuild

    folder = shared_folder(request.config) or tmp_path_factory.getbasetemp()
    build = ArchiveBuild.start(folder / "jvm-classes")
    try:
        yield build
    finally:
        build.stop()


@pytest.fixture(scope="module", autouse=True)
def _spark_jvms_share_classes(request, _class_archive_build) -> None:
    """The JVMs of the first module outside the unit tier that starts after the archive's build
    ended, and of every module after it, map the archive: nothing waits for the build."""
    if _class_archive_build is not None and _tier(request.node) != "unit":
        _class_archive_build.use_when_built()


@pytest.fixture(autouse=True)
def _import_path_kept() -> Iterator[None]:
    """Loading a registered pyfunc in a test puts that version's logged copy of segcore first on
    ``sys.path``; processes that later tests of this worker spawn would import it: put it back."""
    path = list(sys.path)
    yield
    sys.path[:] = path


def local_spark_session():
    """The tests' local SparkSession: two cores, two shuffle partitions, UTC, no UI."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("segcore-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


@pytest.fixture(scope="session")
def spark():
    session = local_spark_session()
    yield session
    session.stop()


@pytest.fixture
def tracking_uri_restored():
    """For a test that opens its own MLflow store, which points MLflow's process-wide API at it:
    the tracking URI from before comes back afterwards."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    yield
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="session")
def lake(tmp_path_factory) -> Path:
    """A sample lake whose data ends on AS_OF."""
    path = tmp_path_factory.mktemp("lake") / "lake"
    generate_lake(path, LAKE_CUSTOMERS, seed=11, end=AS_OF)
    return path


def make_config(workdir: Path, lake: Path, **overrides) -> Config:
    """A config over ``lake`` with outputs and MLflow under ``workdir``. The value model's backtest
    (a second pass over the lake's orders in every train) is off unless a test turns it on: the
    pipeline fixture and tests/integration/value do."""
    data = {
        "workdir": str(workdir),
        "as_of": AS_OF.isoformat(),
        "lake": {table: {"path": str(lake / table)} for table in ("customers", "orders", "events")},
        "value": {"backtest": False},
    }
    return config_with(data, **overrides)


def config_with(data: dict, **changes) -> Config:
    """``data`` with ``changes`` set at double-underscore paths (``lake__orders__filter``), validated."""
    data = copy.deepcopy(data)
    for key, value in changes.items():
        *parents, last = key.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return build_config(data)


@pytest.fixture
def lines_lake_data(tmp_path) -> dict:
    """Config data of a small lake of invoice lines and a customer master in this test's tmp_path
    (lake_data.lines_lake): the tests may add files to it."""
    from lake_data import lines_lake

    return lines_lake(tmp_path)


@pytest.fixture(scope="session")
def pipeline(spark, lake, tmp_path_factory):
    """generate -> features -> train -> score, run once for the end-to-end assertions."""
    from segcore.features.stage import run_features
    from segcore.score.stage import score_segments
    from segcore.train.stage import train_segments

    workdir = tmp_path_factory.mktemp("pipeline")
    config = make_config(workdir, lake, value__backtest=True)
    features = run_features(spark, config)
    trained = train_segments(spark, config)
    scored = score_segments(spark, config)
    return {"config": config, "features": features, "train": trained, "score": scored}


# Blob data sets that a unit and an integration module share (one fixture each, computed once).
LLOYD_K6 = {"k": 6, "iterations": 25, "columns": 5}


@pytest.fixture(scope="session")
def lloyd_k6():
    """The engines' common reference: 12,000 points in 5 dimensions around 6 centres (std 2.5), 6
    random rows as initial centres, and scikit-learn's Lloyd from them (25 iterations, tol 0):
    (points, init, reference)."""
    import numpy as np
    from sklearn.cluster import KMeans as SklearnKMeans
    from sklearn.datasets import make_blobs

    k, iterations = LLOYD_K6["k"], LLOYD_K6["iterations"]
    points, _ = make_blobs(12_000, n_features=LLOYD_K6["columns"], centers=k, cluster_std=2.5, random_state=8)
    init = points[np.random.default_rng(1).choice(len(points), k, replace=False)]
    reference = SklearnKMeans(k, init=init, n_init=1, algorithm="lloyd", tol=0.0, max_iter=iterations)
    return points, init, reference.fit(points)


@pytest.fixture(scope="session")
def lloyd_k4():
    """The estimator's reference: 3,000 points in 4 dimensions around 4 centres, the first 4 points
    as initial centres, and scikit-learn's Lloyd from them (20 iterations, tol 0):
    (points, init, reference)."""
    from sklearn.cluster import KMeans as SklearnKMeans
    from sklearn.datasets import make_blobs

    points, _ = make_blobs(3_000, n_features=4, centers=4, random_state=4)
    init = points[:4].copy()
    reference = SklearnKMeans(4, init=init, n_init=1, algorithm="lloyd", tol=0.0, max_iter=20).fit(points)
    return points, init, reference


@pytest.fixture(scope="session")
def labelled_blobs_k6():
    """20,000 points in 5 dimensions around 6 well-separated centres (std 2.0) and their true
    labels, for the numerics far from the origin: (points, labels)."""
    from sklearn.datasets import make_blobs

    return make_blobs(20_000, n_features=5, centers=6, cluster_std=2.0, random_state=8)


@pytest.fixture(scope="session")
def drift_months(spark, pipeline, tmp_path_factory) -> dict:
    """Two scorings in a fresh workdir, the pipeline's and a month later's with a planted migration
    (drift_data.plant_months): shared by the in-process drift tests and the drift job's."""
    from drift_data import plant_months

    return plant_months(spark, pipeline, tmp_path_factory.mktemp("drift"))


@pytest.fixture(scope="session")
def lifecycle(spark, lake, pipeline, tmp_path_factory) -> dict:
    """Two trained versions and two scorings (May, June) in a fresh workdir
    (lifecycle_data.build_registry): shared by the promotion tests and the report's."""
    from lifecycle_data import build_registry

    return build_registry(spark, lake, pipeline, tmp_path_factory.mktemp("lifecycle"))


@pytest.fixture(scope="session")
def lifecycle_report(lifecycle, tmp_path_factory) -> Path:
    """The HTML report of lifecycle's first version, written once."""
    from lifecycle_data import write_report

    return write_report(lifecycle, tmp_path_factory.mktemp("report") / "report.html")


def _untracked_files() -> set[str]:
    """Files of the checkout that git neither tracks nor ignores (none outside a git checkout)."""
    listing = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True
    )
    return set(listing.stdout.splitlines()) if listing.returncode == 0 else set()


@pytest.fixture(scope="session", autouse=True)
def _checkout_left_clean():
    """No test writes into the checkout: an output of a relative path landing in the repository
    (once, a cluster job's kpis) fails the run instead of being committed."""
    before = _untracked_files()
    yield
    written = sorted(_untracked_files() - before)
    assert not written, f"the tests wrote into the checkout {ROOT}: {written[:10]}"


@pytest.fixture(scope="session")
def package(tmp_path_factory) -> Path:
    """`scripts/package` once per worker that needs it (a fresh venv, pip and gzip: a minute or
    more, mostly one core, while the other workers go on): the folder holding the wheel and
    segcore-env.tar.gz."""
    from cluster_readme import user_env

    dist = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [ROOT / "scripts" / "package", dist], capture_output=True, text=True, env=user_env(), timeout=900
    )
    assert build.returncode == 0, build.stderr[-3000:]
    return dist


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, below the kernel's ephemeral
    range: no process that binds port 0 (a Dask worker's dashboard, a JVM's block manager) can be
    given it before the server it is for binds it. (Once, a port taken from the ephemeral range
    went to a Dask worker's dashboard first; `mlflow server` could not bind it and exited, and the
    dashboard answered its health check.)"""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    for port in random.Random().sample(range(max(1024, low - 12000), low), 500):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port on 127.0.0.1 below {low}")


def wait_healthy(url: str, server: subprocess.Popen, log: Path, limit_s: float = 120) -> None:
    """Until ``url``/health answers 200 (an `mlflow server` or `mlflow models serve` process)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"{url} exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    tail = log.read_text()[-3000:]
    raise RuntimeError(f"{url} not healthy after {limit_s:.0f} s:\n{tail}")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 (SQLite backend, proxied artifacts); yields its http URI."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = root / "server.log"
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{root}/mlflow.db",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--workers",
        "1",
    ]
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        wait_healthy(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
