#!/usr/bin/env python
"""Cost of the crash-safe commit: write a feature-table-sized partition (ROWS customers x 20
double columns, default 1,000,000) twice to a temporary folder and time, for the replacement, the
Spark write of the staged data and the commit (publish, pointer, removal of the old version).

Usage: scripts/bench_commit.py [ROWS]"""

import shutil
import sys
import tempfile
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from segcore.storage.partitions import commit_partitions


def main(rows: int) -> None:
    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    frame = spark.range(rows).select("id", *[F.rand(i).alias(f"f{i}") for i in range(20)])
    folder = tempfile.mkdtemp(prefix="segcore-commit-")
    target = f"{folder}/features/as_of=2026-06-30"
    for attempt in ("first write", "replacement"):
        with commit_partitions(spark, [target]) as outputs:
            started = time.perf_counter()
            outputs.write(frame, target)
            written = time.perf_counter()
        done = time.perf_counter()
        timing = f"Spark write {written - started:.2f} s, commit {done - written:.3f} s"
        print(f"{attempt}: {rows:,} rows, {timing}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
