"""A stop by signal is recognised whatever a library turned it into, and not lost where Python
cannot raise it."""

import signal
import time

import pytest

from segcore.runtime.stopping import Stopped, stop_on_signals, stopped_by


def test_a_signal_that_a_library_turned_into_another_error_still_counts_as_a_stop():
    """PySpark's collect, interrupted by SIGTERM, raises its broken stream from a ``finally``."""
    try:
        try:
            raise Stopped(signal.SIGTERM)
        finally:
            raise RuntimeError("java.io.IOException: Broken pipe")  # noqa: B012
    except RuntimeError as exc:
        assert stopped_by(exc).signum == signal.SIGTERM
    assert stopped_by(ValueError("a bug")) is None
    assert stopped_by(KeyboardInterrupt()).signum == signal.SIGINT


class _SignalledWhenCollected:
    """Sends SIGINT from its finalizer, as a signal can land in py4j's finalizer of a Java object
    that the garbage collector takes meanwhile."""

    def __del__(self):
        signal.raise_signal(signal.SIGINT)


def test_a_stop_that_lands_in_a_finalizer_is_raised_again_where_it_can_be(capfd):
    """Python ignores an exception raised in a finalizer ("Exception ignored in ..."): the stop is
    raised again in the code that runs on, within a second, and nothing is printed."""
    with pytest.raises(Stopped) as stopped, stop_on_signals():
        _SignalledWhenCollected()  # collected at once: the handler runs inside __del__
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.01)
    assert stopped.value.signum == signal.SIGINT
    assert time.monotonic() < deadline - 4
    assert "Exception ignored" not in capfd.readouterr().err
