"""A class-data-sharing archive of the classes Spark's JVM loads for segcore, built once per
environment (``scripts/bootstrap`` runs ``python -m segcore.runtime.class_archive``), so that every
local session's JVM maps them instead of loading and verifying some 12,000 classes from Spark's
jars: 3 to 5 s less per command here (README, Results). A speed setting only: a JVM that cannot
use the archive (another Java or Spark since it was built) runs without it, silently.

Built by a workload in a JVM of its own that writes the classes it loaded as it exits
(``-XX:ArchiveClassesAtExit``): the feature job on a small sample lake, its output read through
Arrow, as train and score read theirs. It replaces an older archive whole."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ARCHIVE = Path(sys.prefix, "share", "segcore", "spark-classes.jsa")
_OPTIONS_VARIABLE = "SPARK_SUBMIT_OPTS"  # read by Spark's launcher for the JVM it starts
_WORKLOAD_CUSTOMERS = 300


def archive_options() -> list[str]:
    """The JVM options that map :data:`ARCHIVE`, where it was built (its own logging off: a JVM
    that cannot use it would say so on stdout), quoted for Spark's launcher, which splits them at
    spaces outside quotes."""
    if not ARCHIVE.is_file():
        return []
    return [f'"-XX:SharedArchiveFile={ARCHIVE}"', "-Xlog:cds=off,cds+dynamic=off"]


def build(archive: Path) -> None:
    """Run the workload (module docstring) and put the archive it wrote at ``archive``."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f".{archive.name}.{os.getpid()}")
    dump = f"-XX:ArchiveClassesAtExit={partial}"
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        _OPTIONS_VARIABLE: f"{os.environ.get(_OPTIONS_VARIABLE, '')} {dump}".strip(),
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "segcore.runtime.class_archive", "--workload"],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode or not partial.is_file():
            raise RuntimeError(f"the class archive's workload failed: {done.stderr[-2000:]}")
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)


def _workload() -> None:
    """The feature job on a small sample lake, read back through Arrow, in this process's JVM;
    returns once that JVM has exited (it writes the archive as it exits)."""
    from segcore.config import build_config
    from segcore.features.stage import run_features
    from segcore.runtime.spark import get_spark
    from segcore.sample.lake import generate_lake
    from segcore.storage.partitions import read_partition

    with tempfile.TemporaryDirectory() as folder:
        config = build_config({"workdir": folder})
        generate_lake(Path(folder, "lake"), _WORKLOAD_CUSTOMERS, seed=5, end=config.as_of)
        spark = get_spark("segcore-class-archive")
        read_partition(spark, run_features(spark, config).path, "feature table", "").toPandas()
        gateway = spark.sparkContext._gateway
        spark.stop()
        gateway.proc.stdin.close()  # the JVM exits, writing the archive: wait for it
        gateway.proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", nargs="?", type=Path, default=ARCHIVE)
    parser.add_argument("--workload", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workload:
        _workload()
    else:
        build(args.archive)
        print(f"class archive {args.archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
