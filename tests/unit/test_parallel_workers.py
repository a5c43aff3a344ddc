"""The cores the xdist workers share (tests/parallel.py), each Cores object standing for a worker:
a test alone waits for the modules running and keeps new ones out until it is done."""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from parallel import Cores, shared_folder


def _wait_until_gate_held(folder: Path) -> None:
    """Until a worker holds cores.gate (a test waiting to be alone, or alone)."""
    with (folder / "cores.gate").open("a") as gate:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                fcntl.flock(gate, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            fcntl.flock(gate, fcntl.LOCK_UN)
            time.sleep(0.01)
    raise AssertionError("no worker took the gate")


def test_a_test_alone_waits_for_the_running_module_and_no_module_starts_meanwhile(tmp_path):
    running, measuring, next_module = Cores(tmp_path), Cores(tmp_path), Cores(tmp_path)
    events: list[str] = []
    running.share()
    measuring.share()

    def measure() -> None:
        with measuring.alone():
            events.append("alone")
            time.sleep(0.2)
            events.append("alone ends")

    def start_module() -> None:
        next_module.share()
        events.append("next module")
        next_module.unshare()

    threads = [threading.Thread(target=measure)]
    threads[0].start()
    _wait_until_gate_held(tmp_path)
    threads.append(threading.Thread(target=start_module))
    threads[1].start()
    time.sleep(0.2)  # both wait: the one alone for the running module, the next module at the gate
    events.append("running module ends")
    running.unshare()
    for thread in threads:
        thread.join(timeout=10)
    assert events == ["running module ends", "alone", "alone ends", "next module"]


def test_two_tests_wanting_to_be_alone_take_turns(tmp_path):
    workers = [Cores(tmp_path), Cores(tmp_path)]
    inside, most_inside = [0], [0]
    lock = threading.Lock()

    def measure(cores: Cores) -> None:
        cores.share()
        with cores.alone():
            with lock:
                inside[0] += 1
                most_inside[0] = max(most_inside[0], inside[0])
            time.sleep(0.1)
            with lock:
                inside[0] -= 1
        cores.unshare()

    threads = [threading.Thread(target=measure, args=(cores,)) for cores in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)  # neither waits for the other forever
    assert most_inside[0] == 1


def test_workers_share_the_run_root_and_one_process_locks_nothing(tmp_path, monkeypatch):
    config = SimpleNamespace(option=SimpleNamespace(basetemp=str(tmp_path / "popen-gw1")))
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert shared_folder(config) == tmp_path
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert shared_folder(config) is None
    held = Cores(tmp_path)
    with held.alone():  # a worker alone, and this process, without xdist, goes on all the same
        alone = Cores(shared_folder(config))
        alone.share()
        with alone.alone():
            pass
        alone.unshare()
