"""The suite on several pytest-xdist workers (`scripts/test` starts one per core, at most 4, and
sends each a whole module at a time, in the tiers' order): the folder they share, and the
machine's cores as a reader-writer lock between the workers.

Every module runs holding the cores shared. A test that measures against the clock (the stages
that must give up within 30 s) takes them whole with :meth:`Cores.alone`: it waits until the
other workers' current modules have ended, and no worker starts a module until it is done. In one
process (no xdist) the lock is a no-op."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def worker() -> str | None:
    """This process's xdist worker id (``gw0``, ``gw1``, ...), or None outside xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def shared_folder(config: pytest.Config) -> Path | None:
    """The run's temporary root, which every worker sees (each has its own folder in it), or None
    outside xdist."""
    basetemp = config.option.basetemp
    return Path(basetemp).parent if worker() and basetemp else None


class Cores:
    """The cores, as two lock files in the shared folder: ``cores.lock`` (held shared by every
    running module, whole by a test alone) and ``cores.gate`` (held by a test waiting to be alone,
    so that no module starts meanwhile: a stream of modules cannot starve it)."""

    def __init__(self, folder: Path | None) -> None:
        self._lock = self._gate = None
        if folder is not None:
            self._lock = (folder / "cores.lock").open("a")
            self._gate = (folder / "cores.gate").open("a")

    def share(self) -> None:
        """At a module's start: waits while a test is, or waits to be, alone."""
        if self._lock is not None:
            fcntl.flock(self._gate, fcntl.LOCK_SH)
            fcntl.flock(self._lock, fcntl.LOCK_SH)
            fcntl.flock(self._gate, fcntl.LOCK_UN)

    def unshare(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        """Inside a module: the cores whole, then shared again. It lets go of its share before it
        waits, so that two workers wanting to be alone take turns instead of waiting for each other."""
        if self._lock is None:
            yield
            return
        self.unshare()
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_SH)
            fcntl.flock(self._gate, fcntl.LOCK_UN)


class ModulesShareTheCores:
    """Holds the cores shared from a module's first test's setup (the session fixtures it builds
    included) to its last test's teardown."""

    def __init__(self, cores: Cores) -> None:
        self.cores = cores
        self.holding = False

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None):
        if not self.holding:
            self.cores.share()
            self.holding = True
        try:
            return (yield)
        finally:
            if nextitem is None or nextitem.path != item.path:
                self.cores.unshare()
                self.holding = False
