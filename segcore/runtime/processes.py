"""Whether a process recorded earlier still runs, told by its host, pid and start time: a pid that
the system gave to a new process after the recorded one died is not taken for it."""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass


def start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as recorded by a run or a lease; ``started`` None where it was not recorded."""

    host: str
    pid: int
    started: str | None

    @classmethod
    def current(cls) -> ProcessIdentity:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, start_ticks(pid))

    def on_this_host(self) -> bool:
        return self.host == socket.gethostname()

    def running(self) -> bool:
        """Whether the process still runs, for a process of this host (ask :meth:`on_this_host`
        first): its pid exists and started when recorded. Without a recorded start time, a pid
        equal to this process's own is an earlier process that had the same id: gone."""
        if self.pid <= 0:  # not a process (and os.kill would signal a whole group)
            return False
        if self.started is None and self.pid == os.getpid():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's live process
        return self.started is None or self.started == start_ticks(self.pid)

    def presumed_alive(self, since: str | None, expiry: dt.timedelta) -> bool:
        """For a holder of a lock or lease taken at ``since`` (ISO time): on this host, whether it
        still runs; from another host, where it cannot be asked, whether ``expiry`` has not passed."""
        if self.on_this_host():
            return self.running()
        taken = dt.datetime.fromisoformat(since or "1970-01-01T00:00:00+00:00")
        return dt.datetime.now(dt.UTC) - taken < expiry
