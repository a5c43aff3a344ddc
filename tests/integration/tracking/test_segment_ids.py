"""New segment ids handed out once, on a real MLflow SQLite store: processes reserving at the same
time get disjoint ids, a lock left by a killed holder is taken over, and a live holder's lock
makes a reservation wait, then give up naming it."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys

import pytest
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore
from mlflow.tracking import MlflowClient

from segcore.config import build_config
from segcore.errors import EnvironmentProblem
from segcore.runtime.processes import ProcessIdentity
from segcore.tracking import segment_ids
from segcore.tracking.segment_ids import LOCK_SUFFIX, NEXT_ID_TAG, reserve_segment_ids
from segcore.tracking.store import open_tracking

NAME = "ids-test"
RESERVATIONS = 15


pytestmark = pytest.mark.usefixtures("tracking_uri_restored")


def _config(workdir: str):
    return build_config({"workdir": workdir, "mlflow": {"experiment": "ids-tests", "registered_model": NAME}})


def _reserve_many(workdir: str, count: int, results) -> None:
    """One process's reservations: ``RESERVATIONS`` of ``count`` ids each, as a train reserves them."""
    tracking = open_tracking(_config(workdir))
    results.put([(reserve_segment_ids(tracking, count, 0), count) for _ in range(RESERVATIONS)])


def test_processes_reserving_at_once_get_disjoint_ids(tmp_path):
    open_tracking(_config(str(tmp_path)))  # the store's schema, before the race
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_reserve_many, args=(str(tmp_path), n, results)) for n in (1, 2, 3)]
    for process in processes:
        process.start()
    reserved = [reservation for _ in processes for reservation in results.get(timeout=300)]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    ids = [first + i for first, count in reserved for i in range(count)]
    assert len(ids) == len(set(ids)) == RESERVATIONS * 6  # every id handed out once
    assert sorted(ids) == list(range(len(ids)))  # and none lost
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    assert client.get_registered_model(NAME).tags[NEXT_ID_TAG] == str(len(ids))
    assert [m.name for m in client.search_registered_models()] == [NAME]  # the lock is gone


def test_reservations_never_go_below_the_champions_next_id(tmp_path):
    tracking = open_tracking(_config(str(tmp_path)))
    assert reserve_segment_ids(tracking, 2, 7) == 7
    assert reserve_segment_ids(tracking, 1, 0) == 9
    assert reserve_segment_ids(tracking, 0, 3) == 10  # nothing new: nothing moves
    assert tracking.client.get_registered_model(NAME).tags[NEXT_ID_TAG] == "10"


def _lock(tracking, process: ProcessIdentity, since: str = "2026-12-05T10:00:00+00:00") -> None:
    tags = {"host": process.host, "pid": str(process.pid), "started": process.started or "", "since": since}
    tracking.client.create_registered_model(NAME + LOCK_SUFFIX, tags=tags)


def test_a_lock_whose_holder_was_killed_is_taken_over(tmp_path):
    tracking = open_tracking(_config(str(tmp_path)))
    reserve_segment_ids(tracking, 3, 0)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    _lock(tracking, ProcessIdentity(ProcessIdentity.current().host, int(gone.stdout), "1"))
    assert reserve_segment_ids(tracking, 2, 0) == 3
    assert [m.name for m in tracking.client.search_registered_models()] == [NAME]


def test_a_live_holders_lock_makes_a_reservation_give_up_naming_it(tmp_path, monkeypatch):
    tracking = open_tracking(_config(str(tmp_path)))
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock(tracking, ProcessIdentity(ProcessIdentity.current().host, holder.pid, None))
        monkeypatch.setattr(segment_ids, "WAIT", segment_ids.dt.timedelta(seconds=1))
        with pytest.raises(
            EnvironmentProblem, match=rf"registered model {NAME}{LOCK_SUFFIX} has locked"
        ) as error:
            reserve_segment_ids(tracking, 1, 0)
        assert error.value.exit_code == 3
        assert NEXT_ID_TAG not in tracking.client.get_registered_model(NAME).tags
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_released_while_the_store_looks_up_its_holder_is_taken(tmp_path, monkeypatch):
    """The holder lets go between the store's refusal of a second lock and its lookup of the first
    (the store then says the lock does not exist): the reservation takes the lock and goes on."""
    tracking = open_tracking(_config(str(tmp_path)))
    reserve_segment_ids(tracking, 2, 0)
    _lock(tracking, ProcessIdentity.current())  # a live holder
    holder = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    lookup, released = SqlAlchemyStore.get_registered_model, []

    def released_meanwhile(store, name):
        if name == NAME + LOCK_SUFFIX and not released:
            released.append(name)
            holder.delete_registered_model(name)
        return lookup(store, name)

    monkeypatch.setattr(SqlAlchemyStore, "get_registered_model", released_meanwhile)
    assert reserve_segment_ids(tracking, 1, 0) == 2
    assert [m.name for m in holder.search_registered_models()] == [NAME]
