"""A class-data-sharing archive of the classes a Spark JVM loads for segcore, built once per test
session so that every later Spark JVM of the session (the shared session's, and those of the
`segcore`, spark-submit and Spark writer subprocesses) maps them instead of loading and verifying
~12,000 classes from Spark's jars. A speed setting only: the JVM computes the same, and ignores an
archive it cannot use. The environment's archive where `scripts/bootstrap` built it; otherwise
built by the same code (`segcore.tools.build_class_archive`) at the session's start: under xdist the
first worker builds it and every worker maps it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from segcore.runtime import class_archive

TESTS = Path(__file__).resolve().parent
OPTS = "SPARK_SUBMIT_OPTS"


def built(archive: Path) -> bool:
    """Whether the build put ``archive`` in place (it appears whole)."""
    return archive.is_file()


@dataclass
class ArchiveBuild:
    """The archive's workload, running in the background."""

    archive: Path
    log: Path
    process: subprocess.Popen | None  # None: another worker's build, or the environment's archive
    settled: bool = False

    @classmethod
    def start(cls, folder: Path) -> ArchiveBuild:
        """Start the build in ``folder``, unless the environment's archive was built (by
        ``scripts/bootstrap``: then that one is used) or another xdist worker of this run started
        it there first (then this one follows that build)."""
        folder.mkdir(parents=True, exist_ok=True)
        archive, log = folder / "spark.jsa", folder / "build.log"
        if class_archive.ARCHIVE.is_file():
            return cls(class_archive.ARCHIVE, log, None)
        try:
            (folder / "started").touch(exist_ok=False)
        except FileExistsError:
            return cls(archive, log, None)
        with log.open("w") as output:
            command = [sys.executable, "-m", "segcore.tools.build_class_archive", str(archive)]
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
        mapped = " ".join(class_archive.mapping_options(self.archive))
        os.environ[OPTS] = f"{os.environ.get(OPTS, '')} {mapped}".strip()

    def wait(self, timeout: float) -> bool:
        """Whether the archive is built, waiting up to ``timeout`` s for its build to end."""
        deadline = time.monotonic() + timeout
        while not built(self.archive) and time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.5)
        return built(self.archive)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
