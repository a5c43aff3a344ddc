"""Pause points for crash tests: with ``SEGCORE_TEST_PAUSE_AT=<step>`` a process says so on stderr at
that step and waits there, so a test can kill or stop it at a known moment."""

from __future__ import annotations

import os
import sys
import time

PAUSE_ENV = "SEGCORE_TEST_PAUSE_AT"


def pause(step: str) -> None:
    """In tests only (``SEGCORE_TEST_PAUSE_AT=<step>``): say so on stderr and wait to be killed."""
    if os.environ.get(PAUSE_ENV) == step:
        print(f"segcore: paused at {step}", file=sys.stderr, flush=True)
        time.sleep(3600)
