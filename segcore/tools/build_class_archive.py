"""Build the Spark JVM's class archive (:mod:`segcore.runtime.class_archive`):
``python -m segcore.tools.build_class_archive [ARCHIVE]``.

A workload runs in a JVM of its own that writes the classes it loaded as it exits
(``-XX:ArchiveClassesAtExit``): the feature job on a small sample lake, its output read through
Arrow, as train and score read theirs. The archive replaces an older one whole."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from segcore.runtime.class_archive import ARCHIVE

_OPTIONS_VARIABLE = "SPARK_SUBMIT_OPTS"  # read by Spark's launcher for the JVM it starts
_WORKLOAD_CUSTOMERS = 300


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
            [sys.executable, "-m", "segcore.tools.build_class_archive", "--workload"],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode or not partial.is_file():
            last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}, no archive written"])[-1]
            raise RuntimeError(f"its workload failed: {last}")
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
    parser = argparse.ArgumentParser(
        prog="python -m segcore.tools.build_class_archive",
        description="Build the class archive that local Spark sessions map.",
    )
    parser.add_argument("archive", nargs="?", type=Path, default=ARCHIVE, help=f"default {ARCHIVE}")
    parser.add_argument("--workload", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workload:
        _workload()
        return 0
    try:
        build(args.archive)
    except (OSError, RuntimeError) as exc:
        print(f"segcore: no class archive at {args.archive}: {exc}", file=sys.stderr)
        return 1
    print(f"class archive {args.archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
