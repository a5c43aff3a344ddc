"""One writer per output partition: a lease file ``_LEASE`` in the partition folder, created only
if absent (``O_EXCL`` on a local disk, HDFS's create without overwrite), naming its holder.

A second writer of the partition stops with exit code 3 naming the holder, rather than having its
staged files cleaned away under it. A lease whose holder is gone is taken over: on the same host,
a holder is gone when its pid no longer runs with the start time it recorded (a reused pid does
not fool it); from another host, when the lease is older than :data:`EXPIRY`. Object stores have
no create-if-absent: there the lease narrows the race without closing it (schedule one writer per
partition). The lease is removed when the write ends, committed or not.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from segcore.errors import EnvironmentProblem
from segcore.runtime.processes import ProcessIdentity
from segcore.storage.hadoop import HadoopStore
from segcore.storage.versions import LEASE, join

EXPIRY = dt.timedelta(hours=12)  # a lease from another host older than this is taken over


def _holder() -> dict:
    me = ProcessIdentity.current()
    return {
        "host": me.host,
        "pid": me.pid,
        "start_ticks": me.started,
        "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _alive(holder: dict) -> bool:
    process = ProcessIdentity(str(holder.get("host")), int(holder.get("pid", 0)), holder.get("start_ticks"))
    return process.presumed_alive(holder.get("since"), EXPIRY)


def _read(store: HadoopStore, path: str) -> dict | None:
    text = store.read(path)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _take(store: HadoopStore, partition: str, mine: dict) -> None:
    path = join(partition, LEASE)
    for _ in range(3):
        if store.create_new(path, json.dumps(mine)):
            return
        holder = _read(store, path)
        if holder is not None and _alive(holder):
            raise EnvironmentProblem(
                f"output {partition} is being written by process {holder.get('pid')} on {holder.get('host')} "
                f"since {holder.get('since')} (lease {path}): wait for it to finish and rerun, or delete the "
                "lease if that process is gone"
            )
        if _read(store, path) == holder:  # still the stale lease: take it over
            store.delete(path)
    raise EnvironmentProblem(f"could not take the lease {path}: another writer keeps taking it; rerun")


@contextmanager
def partition_leases(store: HadoopStore, partitions: Sequence[str]) -> Iterator[None]:
    """Hold the lease of every partition in ``partitions`` (taken in a fixed order) while the body runs."""
    mine, taken = _holder(), []
    try:
        for partition in sorted(partitions):
            _take(store, partition, mine)
            taken.append(partition)
        yield
    finally:
        for partition in taken:
            path = join(partition, LEASE)
            if _read(store, path) == mine:
                store.delete(path)
