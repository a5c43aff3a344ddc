"""A stop by signal is recognised whatever a library turned it into."""

import signal

from segcore.runtime.stopping import Stopped, stopped_by


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
