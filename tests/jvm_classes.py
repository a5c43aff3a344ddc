"""A class-data-sharing archive of the classes a Spark JVM loads for segcore, built once per test
session so that every later Spark JVM of the session (the shared session's, and those of the
`segcore`, spark-submit and Spark writer subprocesses) maps them instead of loading and verifying
~14,000 classes from Spark's jars. A speed setting only: the JVM computes the same, and ignores an
archive it cannot use.

Run as a script, it is the archive's workload: one JVM that runs features, train and score on a
small lake, then exits so that the JVM writes the classes it loaded (-XX:ArchiveClassesAtExit)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parent
OPTS = "SPARK_SUBMIT_OPTS"


def start_archive_build(archive: Path, log: Path) -> subprocess.Popen:
    """This file run as the archive's workload in the background: it writes ``archive``."""
    env = {**os.environ, OPTS: f"{os.environ.get(OPTS, '')} -XX:ArchiveClassesAtExit={archive}".strip()}
    with log.open("w") as output:
        command = [sys.executable, __file__, str(archive)]
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=TESTS)


def use_archive(archive: Path) -> None:
    """Every Spark JVM this process starts from now on maps ``archive`` (its own logging off: a JVM
    that cannot use an archive runs without one, and would say so on stdout)."""
    mapped = f"-XX:SharedArchiveFile={archive} -Xlog:cds=off,cds+dynamic=off"
    os.environ[OPTS] = f"{os.environ.get(OPTS, '')} {mapped}".strip()


def _workload(workdir: Path) -> None:
    """features -> train -> score on a small lake, in this process's one JVM."""
    sys.path.insert(0, str(TESTS))
    from conftest import AS_OF, local_spark_session, make_config

    from segcore.features.stage import run_features
    from segcore.sample.lake import generate_lake
    from segcore.score.stage import score_segments
    from segcore.train.stage import train_segments

    generate_lake(workdir / "lake", 300, seed=5, end=AS_OF)
    spark = local_spark_session()
    config = make_config(workdir, workdir / "lake", kmeans__k=3, value__backtest=True)
    run_features(spark, config)
    train_segments(spark, config)
    score_segments(spark, config)
    spark.stop()
    gateway = spark.sparkContext._gateway  # the JVM writes the archive as it exits: wait for that
    gateway.proc.stdin.close()
    gateway.proc.wait()


if __name__ == "__main__":
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    with tempfile.TemporaryDirectory() as folder:
        _workload(Path(folder))
    if not Path(sys.argv[1]).exists():
        sys.exit(f"the JVM wrote no class archive at {sys.argv[1]}")
