"""New segment ids, handed out once: the registered model's tag ``next_segment_id`` (the first id
no version has used) is read and raised in one compare-and-set, under a lock that any MLflow store
provides — creating a registered model is refused when one of that name exists.

The lock is the registered model ``<model>.segment-id-lock``, held for the few milliseconds of
one read and one tag write, with SIGTERM and SIGINT held off meanwhile. It records its holder
(host, pid, start time): a lock whose holder was killed outright is taken over — at once on the
holder's host, after :data:`EXPIRY` from another host.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager

from mlflow.exceptions import MlflowException

from segcore.errors import EnvironmentProblem
from segcore.runtime.processes import ProcessIdentity
from segcore.runtime.stopping import signals_held
from segcore.tracking.registry import create_registered_model
from segcore.tracking.store import Tracking

NEXT_ID_TAG = "next_segment_id"
LOCK_SUFFIX = ".segment-id-lock"
EXPIRY = dt.timedelta(minutes=5)  # a lock from another host older than this is taken over
WAIT = dt.timedelta(minutes=2)  # how long a train waits for the lock before it gives up
RETRY_S = 0.05
LOCK_DESCRIPTION = "segcore: new segment ids being handed out (a lock held for milliseconds)"
# Refusals of creating the lock that mean "held, or just released": a store that finds the name
# taken looks the holder up to say so, and finds nothing when the holder let go in between.
CONTENDED = ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST")


def next_free_id(tracking: Tracking) -> int:
    """The first segment id that no registered version of the model has used, champion or not
    (0 when the model is not registered yet)."""
    try:
        tags = tracking.client.get_registered_model(tracking.model_name).tags
    except MlflowException:
        return 0
    return int(tags.get(NEXT_ID_TAG, 0))


def reserve_segment_ids(tracking: Tracking, count: int, floor: int) -> int:
    """Reserve ``count`` new segment ids, none below ``floor`` (the champion's next id), for this
    train alone; returns the first. Ids of a train that fails later stay unused."""
    create_registered_model(tracking)
    with signals_held(), _id_lock(tracking):
        first = max(next_free_id(tracking), floor)
        tracking.client.set_registered_model_tag(tracking.model_name, NEXT_ID_TAG, str(first + count))
    return first


def _holder_tags() -> dict[str, str]:
    me = ProcessIdentity.current()
    since = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return {"host": me.host, "pid": str(me.pid), "started": me.started or "", "since": since}


def _stale(tags: dict[str, str]) -> bool:
    """Whether the lock's holder is gone (killed outright while it held the lock)."""
    holder = ProcessIdentity(tags.get("host", ""), int(tags.get("pid") or 0), tags.get("started") or None)
    return not holder.presumed_alive(tags.get("since"), EXPIRY)


@contextmanager
def _id_lock(tracking: Tracking) -> Iterator[None]:
    """Hold the model's id lock while the body runs (see the module's docstring)."""
    client, name = tracking.client, tracking.model_name + LOCK_SUFFIX
    deadline = time.monotonic() + WAIT.total_seconds()
    while True:
        try:
            client.create_registered_model(name, tags=_holder_tags(), description=LOCK_DESCRIPTION)
            break
        except MlflowException as exc:
            if exc.error_code not in CONTENDED:
                raise
        try:
            holder = client.get_registered_model(name).tags
            if _stale(holder) and client.get_registered_model(name).tags == holder:  # still that lock
                client.delete_registered_model(name)
                continue
        except MlflowException:
            continue  # released meanwhile
        if time.monotonic() > deadline:
            raise EnvironmentProblem(
                f"registered model {name} has locked the segment ids of {tracking.model_name} for "
                f"over {WAIT.seconds // 60} minutes: another train holds it; rerun, or delete that "
                "registered model if no train is running"
            )
        time.sleep(RETRY_S)
    try:
        yield
    finally:
        client.delete_registered_model(name)
