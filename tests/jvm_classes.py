"""A class-data-sharing archive of the classes a Spark JVM loads for segcore, built once per test
session so that every later Spark JVM of the session (the shared session's, and those of the
`segcore`, spark-submit and Spark writer subprocesses) maps them instead of loading and verifying
~14,000 classes from Spark's jars. A speed setting only: the JVM computes the same, and ignores an
archive it cannot use. Under xdist the first worker builds it and every worker maps it.

Run as a script, it is the archive's workload: one JVM that runs the feature job on a small lake
and reads its output through Arrow, then exits so that the JVM writes the classes it loaded
(-XX:ArchiveClassesAtExit). Those cover most of what train and score load too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parent
OPTS = "SPARK_SUBMIT_OPTS"


def built(archive: Path) -> bool:
    """Whether the build wrote ``archive`` and its JVM has exited (the archive is complete)."""
    return archive.with_suffix(".built").exists()


@dataclass
class ArchiveBuild:
    """The archive's workload, running in the background."""

    archive: Path
    log: Path
    process: subprocess.Popen | None  # None: another worker's build
    settled: bool = False

    @classmethod
    def start(cls, folder: Path) -> ArchiveBuild:
        """Start the build in ``folder``, unless another xdist worker of this run started it
        there first: then this one follows that build."""
        folder.mkdir(parents=True, exist_ok=True)
        archive, log = folder / "spark.jsa", folder / "build.log"
        try:
            (folder / "started").touch(exist_ok=False)
        except FileExistsError:
            return cls(archive, log, None)
        with log.open("w") as output:
            command = [sys.executable, __file__, str(archive)]
            # its own session: stop() stops the JVM with it
            process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, cwd=TESTS, start_new_session=True
            )
        return cls(archive, log, process)

    def use_when_built(self) -> None:
        """Once the build has ended, every Spark JVM this process starts maps the archive (its
        own logging off: a JVM that cannot use an archive runs without one, and would say so on
        stdout); or, once, the process that started the build warns why there is none (that
        costs speed only)."""
        if self.settled or (self.process is not None and self.process.poll() is None):
            return
        if not built(self.archive):
            if self.process is not None:
                self.settled = True
                failure = self.log.read_text()[-2000:]
                warnings.warn(f"no class archive for the Spark JVMs: {failure}", stacklevel=1)
            return
        self.settled = True
        mapped = f"-XX:SharedArchiveFile={self.archive} -Xlog:cds=off,cds+dynamic=off"
        os.environ[OPTS] = f"{os.environ.get(OPTS, '')} {mapped}".strip()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _workload(workdir: Path) -> None:
    """The feature job on a small lake, in this process's one JVM."""
    sys.path.insert(0, str(TESTS))
    from conftest import AS_OF, local_spark_session, make_config

    from segcore.features.stage import run_features
    from segcore.sample.lake import generate_lake

    generate_lake(workdir / "lake", 300, seed=5, end=AS_OF)
    spark = local_spark_session()
    config = make_config(workdir, workdir / "lake", value__backtest=True)
    run_features(spark, config)
    spark.read.parquet(config.path("features")).toPandas()  # and Arrow, as train and score use it
    spark.stop()
    gateway = spark.sparkContext._gateway  # the JVM writes the archive as it exits: wait for that
    gateway.proc.stdin.close()
    gateway.proc.wait()


if __name__ == "__main__":
    archive = Path(sys.argv[1])
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ[OPTS] = f"{os.environ.get(OPTS, '')} -XX:ArchiveClassesAtExit={archive}".strip()
    with tempfile.TemporaryDirectory() as folder:
        _workload(Path(folder))
    if not archive.exists():
        sys.exit(f"the JVM wrote no class archive at {archive}")
    archive.with_suffix(".built").touch()
