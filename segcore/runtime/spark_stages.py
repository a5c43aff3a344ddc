"""The Spark stages a block of work ran, for the log: where the time of one fused job goes (its
scans, shuffles and the final aggregate and write), from Spark's own status store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from segcore.runtime.logs import log


@dataclass(frozen=True)
class SparkStage:
    seconds: float  # from submission to completion (stages may overlap)
    task_seconds: float  # summed over its tasks
    input_rows: int  # read from files
    shuffle_bytes: int  # written to the shuffle
    output_rows: int  # written to files

    def describe(self, tables: dict[int, str]) -> str:
        """What the stage did, naming the table whose row count it read where ``tables`` knows it."""
        parts = []
        if self.input_rows:
            table = tables.get(self.input_rows)
            parts.append(  # a cached frame's blocks count one record per batch of rows
                f"read {table} ({self.input_rows:,} rows)"
                if table
                else f"read {self.input_rows:,} records (cached batches or files)"
            )
        if self.output_rows:
            parts.append(f"aggregate, join and write ({self.output_rows:,} rows)")
        if self.shuffle_bytes:
            parts.append(f"shuffle {self.shuffle_bytes / 2**20:,.1f} MiB")
        if not self.input_rows and not self.output_rows:
            parts.insert(0, "aggregate")
        return f"{', '.join(parts)} in {self.seconds:.1f} s ({self.task_seconds:.1f} s of tasks)"


@contextmanager
def spark_stages(spark: Any) -> Iterator[list[SparkStage]]:
    """Run the block's Spark jobs in a job group of their own; afterwards the yielded list holds
    their completed stages in order (stages skipped for a reused shuffle are left out)."""
    context = spark.sparkContext
    group = f"segcore-{uuid.uuid4().hex[:12]}"
    context.setJobGroup(group, "segcore")
    stages: list[SparkStage] = []
    try:
        yield stages
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
        context.setLocalProperty("spark.job.description", None)
    stages.extend(_completed(context, group))


def _completed(context: Any, group: str) -> list[SparkStage]:
    tracker, store = context.statusTracker(), context._jsc.sc().statusStore()
    jobs = [tracker.getJobInfo(job) for job in tracker.getJobIdsForGroup(group)]
    ids = sorted({stage for job in jobs if job is not None for stage in job.stageIds})  # None: forgotten
    stages = []
    for stage_id in ids:
        with suppress(Exception):  # no attempt: the stage was skipped
            data = store.lastStageAttempt(stage_id)
            if data.status().toString() != "COMPLETE":
                continue
            started, ended = data.submissionTime(), data.completionTime()
            seconds = (ended.get().getTime() - started.get().getTime()) / 1000
            stages.append(
                SparkStage(
                    seconds,
                    data.executorRunTime() / 1000,
                    data.inputRecords(),
                    data.shuffleWriteBytes(),
                    data.outputRecords(),
                )
            )
    return stages


def log_stages(stage: str, stages: list[SparkStage], tables: dict[int, str]) -> None:
    """One log line per Spark stage: ``<stage>: spark stage <n>: <what it did> in <s> s``."""
    for number, spark_stage in enumerate(stages, 1):
        log.info("%s: spark stage %d: %s", stage, number, spark_stage.describe(tables))
