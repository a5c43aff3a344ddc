"""segcore on a real Spark standalone master and worker started from the pip package, with a real
`mlflow server`: the README's spark-submit lines, run as a user runs them, and where a session's
settings come from."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil
import pyspark
import pytest
from cluster_readme import README_MASTER, readme_block, readme_lines, readme_submit_words, user_env
from conftest import ROOT, free_port

from segcore.storage.versions import local_partition

BIN = Path(sys.executable).parent
SPARK_HOME = Path(pyspark.__file__).parent

# Runs in the driver, and in one task on an executor: where Python, segcore and pyspark came from.
PROBE = """
import json, os, sys

from segcore.runtime.spark import get_spark


def where(_):
    import pyspark, segcore
    yield {"prefix": sys.prefix, "segcore": segcore.__file__, "pyspark": pyspark.__file__, "cwd": os.getcwd()}


spark = get_spark("segcore-probe")
context = spark.sparkContext
report = {"master": context.master, "driver_memory": spark.conf.get("spark.driver.memory", None)}
if "--task" in sys.argv:
    report["driver_python"] = sys.executable
    report["task"] = context.parallelize([0], 1).mapPartitions(where).collect()[0]
print("PROBE " + json.dumps(report))
spark.stop()
"""


def activated_env(**extra: str) -> dict[str, str]:
    """A user's shell with .venv activated: its python3 first on PATH."""
    return user_env(PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", VIRTUAL_ENV=str(BIN.parent), **extra)


def run(args: list, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    """Run from the repository root, as the README's commands are."""
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout
    )


def probe_report(result: subprocess.CompletedProcess) -> dict:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return json.loads(re.search(r"^PROBE (.*)$", output, re.MULTILINE).group(1))


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@dataclass(frozen=True)
class Standalone:
    """The cluster the README's start lines started: a Spark master and worker, an MLflow server,
    a Dask scheduler and its workers."""

    url: str
    json_url: str
    work_dir: Path
    mlflow_uri: str
    dask_scheduler: str
    root: Path  # the README's cluster/ folder

    def completed_apps(self) -> dict[str, dict]:
        return {app["id"]: app for app in get_json(self.json_url)["completedapps"]}

    def new_completed_app(self, before: set[str]) -> dict:
        """The one application that completed since ``before`` (the master lists it within seconds)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = [app for app_id, app in self.completed_apps().items() if app_id not in before]
            if new:
                assert len(new) == 1, new
                return new[0]
            time.sleep(0.2)
        raise AssertionError(f"no new completed application on {self.json_url}")

    def executor_logs(self, app_id: str) -> str:
        """The stderr of every executor the worker ran for ``app_id``."""
        return "".join(path.read_text() for path in sorted(self.work_dir.glob(f"{app_id}/*/stderr")))

    def processes(self) -> list[psutil.Process]:
        """Every process the start lines left running (from their pid files), with its children."""
        found = []
        for pid_file in (self.root / "run").glob("*.pid"):
            with contextlib.suppress(psutil.NoSuchProcess, ValueError):
                process = psutil.Process(int(pid_file.read_text()))
                found += [process, *process.children(recursive=True)]
        return found


# The README's ports, and this test's cluster/ folder, replaced in its lines.
README_PORTS = (7077, 8080, 8081, 5000, 8786, 8787)


def run_readme_block(marker: str, root: Path, ports: dict[int, int]) -> subprocess.CompletedProcess:
    """Run the README's ``# marker`` block in bash, from the repository root, with free ports,
    ``root`` for cluster/ and this .venv."""
    script = readme_block(marker).replace("$PWD/cluster/", f"{root}/").replace("cluster/", f"{root}/")
    script = script.replace(".venv/bin/", f"{BIN}/")
    for port, free in ports.items():
        script = re.sub(rf"(?<=[:\s]){port}\b", str(free), script)
    return run(["bash", "-euc", script], user_env(), timeout=120)


def wait_until(ready, what: str, root: Path, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError):
            if ready():
                return
        time.sleep(0.3)
    logs = "".join(f"--- {path.name}\n{path.read_text()[-2000:]}" for path in (root / "logs").glob("*"))
    raise RuntimeError(f"{what} did not start:\n{logs}")


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """The README's start lines, run as written (free ports, a folder of this test's for
    cluster/); its stop lines at the end, unless the test of the stop lines ran them."""
    root = tmp_path_factory.mktemp("cluster")
    ports = {port: free_port() for port in README_PORTS}
    start = run_readme_block("start", root, ports)
    assert start.returncode == 0, start.stderr
    cluster = Standalone(
        f"spark://127.0.0.1:{ports[7077]}",
        f"http://127.0.0.1:{ports[8080]}/json/",
        root / "work",
        f"http://127.0.0.1:{ports[5000]}",
        f"tcp://127.0.0.1:{ports[8786]}",
        root,
    )
    try:
        wait_until(lambda: get_json(cluster.json_url).get("aliveworkers", 0) >= 1, "the Spark worker", root)
        wait_until(
            lambda: urllib.request.urlopen(f"{cluster.mlflow_uri}/health", timeout=5).status == 200,
            "the MLflow server",
            root,
        )
        wait_until(lambda: len(dask_workers(cluster.dask_scheduler)) == 2, "the Dask workers", root)
        yield cluster
    finally:
        if any(process.is_running() for process in cluster.processes()):
            run_readme_block("stop", root, ports)
        shutil.rmtree(root / "work", ignore_errors=True)  # 730 MB of unpacked environment per application


def dask_workers(address: str) -> dict:
    from distributed import Client

    with Client(address, timeout=10) as client:
        return client.scheduler_info()["workers"]


@functools.cache
def readme_env() -> dict[str, str]:
    """A user's shell after the README's `export SPARK_HOME=...` line (run by bash)."""
    export = next(line for line in readme_lines() if line.startswith("export SPARK_HOME="))
    script = export.replace(".venv/bin/", f"{BIN}/") + ' && printf %s "$SPARK_HOME"'
    shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, env=user_env())
    assert shell.returncode == 0 and Path(shell.stdout) == SPARK_HOME, shell.stderr
    return user_env(SPARK_HOME=shell.stdout)


def readme_submit(cluster: Standalone, dist: Path) -> list[str]:
    """The README's spark-submit line for this cluster and package: its master URL, dist/ and
    .venv/bin/ put where this test has them."""
    replaced = " ".join(readme_submit_words()).replace(README_MASTER, cluster.url)
    replaced = replaced.replace("dist/", f"{dist}/").replace(".venv/bin/", f"{BIN}/")
    return shlex.split(replaced)


@pytest.fixture(scope="module")
def cluster_workdir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cluster-jobs")
    command = [BIN / "segcore", "generate", "--out", path / "lake", "--customers", "400", "--seed", "3"]
    result = run(command, env=user_env())
    assert result.returncode == 0, result.stderr
    return path


def profile_settings(workdir: Path, tracking_uri: str) -> list[str]:
    """conf/cluster.yaml with its URIs pointed at this test's folder and MLflow server."""
    tables = ("customers", "orders", "events")
    settings = [f"lake.{table}.path={(workdir / 'lake' / table).as_uri()}" for table in tables]
    settings += [
        f"workdir={workdir.as_uri()}",
        f"mlflow.tracking_uri={tracking_uri}",
        "mlflow.experiment=cluster-tests",
        "mlflow.registered_model=cluster_segments",
        "kmeans.k=4",
        "kmeans.spark.num_workers=2",
        "value.backtest=false",  # checked in tests/integration/value
        "as_of=2026-06-30",
    ]
    return ["--config", "conf/cluster.yaml", *[word for item in settings for word in ("--set", item)]]


@dataclass(frozen=True)
class JobRun:
    result: subprocess.CompletedProcess
    app: dict
    executor_logs: str
    seconds: float


@pytest.fixture(scope="module")
def jobs(standalone, package, cluster_workdir) -> dict[str, JobRun]:
    """features -> train -> score, each through the README's spark-submit line on the cluster."""
    submit, runs = readme_submit(standalone, package), {}
    for job in ("build_features.py", "train_segments.py", "score_segments.py"):
        before = set(standalone.completed_apps())
        started = time.monotonic()
        result = run(
            [*submit, f"jobs/{job}", *profile_settings(cluster_workdir, standalone.mlflow_uri)], readme_env()
        )
        seconds = time.monotonic() - started
        assert result.returncode == 0, f"{job}:\n{(result.stdout + result.stderr)[-4000:]}"
        app = standalone.new_completed_app(before)
        runs[job] = JobRun(result, app, standalone.executor_logs(app["id"]), seconds)
    return runs


@pytest.mark.parametrize("job", ["build_features.py", "train_segments.py", "score_segments.py"])
def test_job_runs_its_tasks_on_the_standalone_cluster(jobs, job):
    run_ = jobs[job]
    assert run_.app["state"] == "FINISHED"
    assert re.search(r"Executor: Finished task \S+ in stage", run_.executor_logs), run_.executor_logs[-3000:]
    assert "Starting executor ID driver" not in run_.result.stdout + run_.result.stderr


SYNCED = re.compile(r"BarrierTaskContext: Task (\d+) from Stage (\d+)\(Attempt \d+\) finished global sync")


def test_spark_engine_trains_in_barrier_tasks_on_the_worker(jobs):
    logs = jobs["train_segments.py"].executor_logs
    tasks_per_stage: dict[str, set[str]] = {}
    for task, stage in SYNCED.findall(logs):
        tasks_per_stage.setdefault(stage, set()).add(task)
    assert 2 in {len(tasks) for tasks in tasks_per_stage.values()}, logs[-3000:]  # kmeans.spark.num_workers=2


def test_cluster_jobs_write_every_customer_and_register_the_model_on_the_server(
    jobs, cluster_workdir, standalone
):
    import mlflow

    features, segments, profiles, kpis = (
        pd.read_parquet(local_partition(cluster_workdir / table / "as_of=2026-06-30"))
        for table in ("features", "segments", "profiles", "kpis")
    )
    assert sorted(segments.customer_id) == sorted(features.customer_id)
    assert segments.segment_id.nunique() == 4
    assert profiles.customers.sum() == len(segments)
    assert set(kpis.segment_id) >= set(segments.segment_id)
    client = mlflow.MlflowClient(standalone.mlflow_uri)
    champion = client.get_model_version_by_alias("cluster_segments", "champion")
    assert set(segments.model_version.astype(str)) == {champion.version}


def test_executors_run_segcore_from_the_unpacked_environment(standalone, package, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    before = set(standalone.completed_apps())
    report = probe_report(run([*readme_submit(standalone, package), probe, "--task"], readme_env()))
    app = standalone.new_completed_app(before)
    task = report["task"]
    env = Path(task["cwd"]) / "env"
    assert Path(task["cwd"]).parent == standalone.work_dir / app["id"]
    assert Path(task["prefix"]).resolve() == env.resolve()
    assert Path(task["segcore"]).resolve().is_relative_to(env.resolve() / "lib")
    assert task["pyspark"].startswith(str(SPARK_HOME / "python" / "lib" / "pyspark.zip"))
    assert report["driver_python"] == str(BIN / "python")
    assert report["master"] == standalone.url


def test_standalone_master_refuses_cluster_deploy_mode_for_python(standalone, package):
    submit = readme_submit(standalone, package)
    result = run([*submit, "--deploy-mode", "cluster", "jobs/build_features.py"], readme_env(), timeout=120)
    assert result.returncode != 0
    refusal = "Cluster deploy mode is currently not supported for python applications on standalone clusters"
    assert refusal in result.stdout + result.stderr


def test_every_process_of_the_cluster_listens_on_host_only(standalone):
    processes = standalone.processes()
    assert len(processes) >= 6  # master, worker, the server (and its workers), scheduler, 2 workers
    listening = {
        (process.name(), connection.laddr.ip.removeprefix("::ffff:"))  # Java's IPv4 as IPv6
        for process in processes
        for connection in process.net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN
    }
    assert {"java", "dask"} <= {name for name, _ in listening}, listening
    assert {ip for _, ip in listening} == {"127.0.0.1"}, listening


def test_the_readme_stop_lines_stop_every_process(standalone):
    processes = standalone.processes()
    started = [int(pid_file.read_text()) for pid_file in (standalone.root / "run").glob("*.pid")]
    stop = run_readme_block("stop", standalone.root, {})  # it finds the processes by their pid files
    assert stop.returncode == 0, stop.stderr
    assert not [pid for pid in started if psutil.pid_exists(pid)]  # the lines wait for them
    gone, alive = psutil.wait_procs(processes, timeout=60)  # and their children
    assert alive == [], [process.cmdline()[:4] for process in alive]


@pytest.fixture
def probe(tmp_path) -> Path:
    path = tmp_path / "probe.py"
    path.write_text(PROBE)
    return path


def test_spark_submit_master_and_driver_memory_win(probe):
    command = [BIN / "spark-submit", "--master", "local[1]", "--driver-memory", "1g", probe]
    report = probe_report(run(command, env=activated_env()))
    assert (report["master"], report["driver_memory"]) == ("local[1]", "1g")


def test_pyspark_submit_args_win_outside_spark_submit(probe):
    env = activated_env(PYSPARK_SUBMIT_ARGS="--master local[1] --driver-memory 1g pyspark-shell")
    report = probe_report(run([BIN / "python", probe], env=env))
    assert (report["master"], report["driver_memory"]) == ("local[1]", "1g")


def test_spark_defaults_conf_wins_outside_spark_submit(probe, tmp_path):
    (tmp_path / "spark-defaults.conf").write_text("spark.master local[1]\nspark.driver.memory 1g\n")
    report = probe_report(run([BIN / "python", probe], env=activated_env(SPARK_CONF_DIR=str(tmp_path))))
    assert (report["master"], report["driver_memory"]) == ("local[1]", "1g")


def test_local_defaults_apply_when_nothing_sets_a_master(probe):
    report = probe_report(run([BIN / "python", probe], env=activated_env()))
    assert (report["master"], report["driver_memory"]) == ("local[*]", "2g")
