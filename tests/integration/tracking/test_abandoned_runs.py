"""A run left RUNNING is ended only when its process is gone, told by pid and start time: a pid
that now belongs to another process does not keep a dead run alive."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlflow.entities import RunStatus

from segcore.config import build_config
from segcore.runtime.processes import ProcessIdentity, start_ticks
from segcore.tracking.lifecycle import HOST_TAG, PID_TAG, STARTED_TAG, end_abandoned_runs
from segcore.tracking.store import open_tracking

pytestmark = pytest.mark.usefixtures("tracking_uri_restored")


def _running_run(tracking, pid: int, started: str | None) -> str:
    tags = {HOST_TAG: ProcessIdentity.current().host, PID_TAG: str(pid)}
    if started is not None:
        tags[STARTED_TAG] = started
    return tracking.client.create_run(tracking.experiment_id, tags=tags).info.run_id


def test_only_runs_whose_process_is_gone_are_ended(tmp_path):
    tracking = open_tracking(build_config({"workdir": str(tmp_path)}))
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = _running_run(tracking, alive.pid, start_ticks(alive.pid))
        reused = _running_run(tracking, alive.pid, "1")  # the pid now belongs to another process
        recorded_without_start = _running_run(tracking, alive.pid, None)  # an older segcore's run
        ended = end_abandoned_runs(tracking)
    finally:
        alive.kill()
        alive.wait()
    assert ended == [reused]
    status = {run: tracking.client.get_run(run).info.status for run in (live, reused, recorded_without_start)}
    killed, running = RunStatus.to_string(RunStatus.KILLED), RunStatus.to_string(RunStatus.RUNNING)
    assert status == {live: running, reused: killed, recorded_without_start: running}
