"""One writer per partition: a live holder's lease stops a second writer with exit code 3 naming
it, and the data stays; a lease whose holder is gone (or whose pid was reused) is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pandas as pd
import pytest

from segcore.errors import EnvironmentProblem
from segcore.runtime.processes import start_ticks
from segcore.storage.lease import LEASE
from segcore.storage.partitions import write_partition
from segcore.storage.versions import local_partition


def _lease(partition, pid: int, start_ticks: str | None) -> None:
    holder = {
        "host": socket.gethostname(),
        "pid": pid,
        "start_ticks": start_ticks,
        "since": "2026-12-05T10:00:00+00:00",
    }
    (partition / LEASE).write_text(json.dumps(holder))


def _frame(spark, run: int):
    return spark.createDataFrame(pd.DataFrame({"customer_id": range(10), "run": run}))


def test_a_live_holder_stops_a_second_writer_naming_it_and_the_data_stays(spark, tmp_path):
    partition = tmp_path / "segments" / "as_of=2026-06-30"
    write_partition(_frame(spark, 1), str(partition))
    _lease(partition, os.getpid(), start_ticks(os.getpid()))
    with pytest.raises(
        EnvironmentProblem, match=rf"being written by process {os.getpid()} on .* since"
    ) as error:
        write_partition(_frame(spark, 2), str(partition))
    assert error.value.exit_code == 3
    assert set(pd.read_parquet(local_partition(partition)).run) == {1}
    assert (partition / LEASE).exists()  # the holder's lease is not the loser's to remove


@pytest.mark.parametrize("holder", ["exited", "reused pid"])
def test_a_lease_whose_holder_is_gone_is_taken_over_and_released(spark, tmp_path, holder):
    partition = tmp_path / "segments" / "as_of=2026-06-30"
    write_partition(_frame(spark, 1), str(partition))
    if holder == "exited":
        gone = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        )
        _lease(partition, int(gone.stdout), "1")
    else:  # this very pid, but another process's start time
        _lease(partition, os.getpid(), "1")
    write_partition(_frame(spark, 2), str(partition))
    assert set(pd.read_parquet(local_partition(partition)).run) == {2}
    assert not (partition / LEASE).exists()
