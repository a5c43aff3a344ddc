"""The dask engine's client, facing a scheduler it cannot use: one that does not answer, and a
LocalCluster without workers; both an environment error (exit code 3) that says what to do."""

from __future__ import annotations

import pytest
from conftest import free_port

from segcore.config import DaskEngineConfig
from segcore.errors import EnvironmentProblem
from segcore.train.engines import dask_client

distributed = pytest.importorskip("distributed")


def test_an_unreachable_scheduler_is_an_environment_error():
    import dask

    address = f"tcp://127.0.0.1:{free_port()}"
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
        pytest.raises(EnvironmentProblem) as error,
        dask_client(DaskEngineConfig(scheduler=address)),
    ):
        pass
    assert error.value.exit_code == 3
    assert f"cannot reach the Dask scheduler {address} (kmeans.dask.scheduler)" in str(error.value)
    assert f"`dask worker {address}`" in str(error.value)


def test_a_scheduler_without_workers_is_an_environment_error():
    import dask

    with (
        distributed.LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None) as empty,
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
        pytest.raises(EnvironmentProblem) as error,
        dask_client(DaskEngineConfig(scheduler=empty.scheduler_address)),
    ):
        pass
    assert error.value.exit_code == 3
    assert f"the Dask scheduler {empty.scheduler_address} (kmeans.dask.scheduler) has no workers" in str(
        error.value
    )
