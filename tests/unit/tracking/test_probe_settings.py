"""The tracking probe's one-attempt settings live in the process environment only while a probe
runs, whatever other threads probe at the same time."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from segcore.tracking.store import _one_quick_attempt

KEYS = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")


def test_a_probe_sets_one_quick_attempt_and_puts_back_what_was_set(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    with _one_quick_attempt():
        assert [os.environ[key] for key in KEYS] == ["0", "10"]
    assert [os.environ.get(key) for key in KEYS] == [None, "120"]


def test_two_threads_probing_at_once_leave_the_environment_as_it_was(monkeypatch):
    """A second thread's probe that would start inside the first's and end after it waits its turn."""
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    entered, release = threading.Event(), threading.Event()

    def second() -> None:
        with _one_quick_attempt():
            entered.set()
            release.wait(60)

    with ThreadPoolExecutor(1) as pool:
        with _one_quick_attempt():
            done = pool.submit(second)
            entered.wait(2)  # without turns, the second probe starts at once
        release.set()
        done.result(timeout=60)
    assert [os.environ.get(key) for key in KEYS] == [None, None]
