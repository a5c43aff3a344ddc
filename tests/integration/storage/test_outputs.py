"""Output partitions are never missing: a writer killed (SIGKILL) at any step of a write leaves
readers the complete old or the complete new data, the next write cleans up after it, and a full
disk or an unwritable folder is an environment error that keeps the previous data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT
from pyspark.sql import functions as F

from segcore.errors import EnvironmentProblem
from segcore.runtime.crash_points import PAUSE_ENV
from segcore.storage.partitions import commit_partitions, read_partition, read_table, write_partition
from segcore.storage.versions import POINTER, STEPS, local_partition

WRITER = """
import sys
from pyspark.sql import SparkSession, functions as F
from segcore.storage.partitions import commit_partitions
spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
primary, follower = sys.argv[1:]
with commit_partitions(spark, [primary, follower]) as outputs:
    outputs.write(spark.range(200).withColumn("run", F.lit(2)), primary)
    outputs.write(spark.range(20).withColumn("run", F.lit(2)), follower)
"""


def _write_group(spark, primary: str, follower: str, run: int) -> None:
    with commit_partitions(spark, [primary, follower]) as outputs:
        outputs.write(spark.range(100 * run).withColumn("run", F.lit(run)), primary)
        outputs.write(spark.range(10 * run).withColumn("run", F.lit(run)), follower)


def _runs(spark, primary: str, follower: str) -> tuple[tuple[int, int], ...]:
    """(rows, run) of both partitions, through the pointer with Spark and with pandas."""
    seen = []
    for path in (primary, follower):
        frame = read_partition(spark, path, "table", "write it")
        values = frame.groupBy().agg(F.count("*"), F.countDistinct("run"), F.max("run")).first()
        assert values[1] == 1, f"{path} mixes runs"
        local = pd.read_parquet(local_partition(path))
        assert (len(local), local["run"].max()) == (values[0], values[2])
        seen.append((values[0], values[2]))
    return tuple(seen)


OLD, NEW = ((100, 1), (10, 1)), ((200, 2), (20, 2))


@pytest.mark.parametrize("step", STEPS)
def test_a_reader_sees_all_old_or_all_new_data_when_the_writer_is_killed(spark, tmp_path, step):
    primary, follower = str(tmp_path / "segments" / "as_of=1"), str(tmp_path / "profiles" / "as_of=1")
    if step in ("staged", "committed"):  # partitions in the previous layout: files in the folder
        spark.range(100).withColumn("run", F.lit(1)).write.parquet(primary)
        spark.range(10).withColumn("run", F.lit(1)).write.parquet(follower)
    else:
        _write_group(spark, primary, follower, 1)
    expected = NEW if step == "committed" else OLD
    env = {**os.environ, PAUSE_ENV: step, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, primary, follower], env=env, stderr=subprocess.PIPE, text=True
    )
    seen = []
    try:
        for line in writer.stderr:
            seen.append(line)
            if f"segcore: paused at {step}" in line:
                break
        else:
            pytest.fail(f"the writer ended without pausing at {step}:\n{''.join(seen)[-3000:]}")
        assert _runs(spark, primary, follower) == expected  # while the writer waits there
        rows = dict(read_table(spark, str(tmp_path / "segments")).groupBy("as_of").count().collect())
        assert rows == {1: expected[0][0]}
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert _runs(spark, primary, follower) == expected  # after the crash

    _write_group(spark, primary, follower, 3)  # the next run cleans what the killed one left
    assert _runs(spark, primary, follower) == ((300, 3), (30, 3))
    for path in (primary, follower):
        names = sorted(os.listdir(path))
        assert names[0] == POINTER and len(names) == 2 and names[1].startswith("v-"), names
    assert [p.name for p in (tmp_path / "segments").iterdir()] == ["as_of=1"]


def test_spark_reads_the_whole_table_with_partition_discovery_when_no_write_is_in_flight(spark, tmp_path):
    table = tmp_path / "segments"
    spark.range(3).write.parquet(str(table / "as_of=2026-05-31"))  # previous layout
    write_partition(spark.range(5), str(table / "as_of=2026-06-30"))
    write_partition(spark.range(7), str(table / "as_of=2026-06-30"))  # replaced: one version left
    expected = {"2026-05-31": 3, "2026-06-30": 7}
    for frame in (spark.read.parquet(str(table)), read_table(spark, str(table))):
        counts = {str(day): n for day, n in frame.groupBy("as_of").count().collect()}
        assert counts == expected


def test_a_partition_lost_between_the_previous_layouts_renames_is_put_back(spark, tmp_path):
    table = tmp_path / "features"
    spark.range(4).write.parquet(str(table / "_old_as_of=1_1a2b3c4d"))  # killed between its two renames
    spark.range(9).write.parquet(str(table / "_tmp_as_of=1_1a2b3c4d"))
    failing = spark.range(10).select(F.raise_error(F.lit("boom")).alias("id"))
    with pytest.raises(Exception, match="boom"):
        write_partition(failing, str(table / "as_of=1"))
    assert read_partition(spark, str(table / "as_of=1"), "table", "write it").count() == 4
    assert [p.name for p in table.iterdir()] == ["as_of=1"]


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (root only)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mount], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", mount], check=True)


def test_a_full_disk_is_an_environment_error_that_keeps_the_previous_data(spark, small_disk):
    target = str(small_disk / "features" / "as_of=1")
    write_partition(spark.range(5), target)
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"x" * (free - 256 * 1024))
    big = spark.range(300_000).select(F.rand(1).alias("a"), F.rand(2).alias("b"))
    with pytest.raises(EnvironmentProblem, match=rf"cannot write output {target}: the disk is full"):
        write_partition(big, target)
    assert EnvironmentProblem.exit_code == 3
    assert read_partition(spark, target, "table", "write it").count() == 5
    assert len(os.listdir(target)) == 2  # the pointer and the previous version: nothing staged is left


def test_scoring_commits_segments_and_profiles_with_one_pointer(spark, pipeline):
    config = pipeline["config"]
    segments, profiles = config.partition("segments"), config.partition("profiles")
    version = Path(local_partition(segments)).name
    assert Path(local_partition(profiles)).name == version
    assert '"follows": "../../segments/as_of=2026-06-30"' in Path(profiles, POINTER).read_text()
    customers = read_partition(spark, segments, "segments", "score").count()
    assert pd.read_parquet(local_partition(profiles))["customers"].sum() == customers


def test_unwritable_profiles_stop_scoring_before_segments_are_replaced(spark, pipeline, tmp_path):
    from segcore.score.stage import score_segments

    config = pipeline["config"]
    before = local_partition(config.partition("segments"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    unwritable = config.model_copy(deep=True)
    unwritable.score.profiles_output = str(blocker)
    with pytest.raises(EnvironmentProblem, match=rf"cannot write output {blocker}/as_of=2026-06-30"):
        score_segments(spark, unwritable)
    assert local_partition(config.partition("segments")) == before
