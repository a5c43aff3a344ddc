"""SIGTERM and SIGINT (what schedulers and Ctrl-C send) as an exception, so a stage unwinds and
leaves its state tidy; and a way to hold them off while a step must not be cut in two."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# A signal that comes during a call into these is raised after the call, checked every RETRY_S.
STORE_MODULES = ("mlflow.", "sqlalchemy.", "alembic.")
RETRY_S = 0.1


class Stopped(BaseException):
    """The process got SIGTERM or SIGINT. A BaseException, like KeyboardInterrupt, so that no
    ``except Exception`` swallows it."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum


def stopped_by(exc: BaseException) -> Stopped | None:
    """The signal behind ``exc``: ``exc`` itself, or a :class:`Stopped` (or KeyboardInterrupt) that a
    library's clean-up turned into another error on the way out (PySpark's collect reports the
    broken stream of the call the signal interrupted, with the signal as its context)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, Stopped):
            return current
        if isinstance(current, KeyboardInterrupt):
            return Stopped(signal.SIGINT)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class _Held:
    depth = 0
    pending: int | None = None


def _in_store_call(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside MLflow or its database layer, where an exception could leave
    a connection half-used and the store locked for the run's own ending."""
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(STORE_MODULES):
            return True
        frame = frame.f_back
    return False


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    if _Held.depth:
        _Held.pending = _Held.pending or signum
        return
    if _in_store_call(frame):  # come back once that call is done
        threading.Timer(RETRY_S, os.kill, (os.getpid(), signum)).start()
        return
    raise Stopped(signum)


def _raise_again(unraisable: sys.UnraisableHookArgs) -> None:
    """``sys.unraisablehook``: a :class:`Stopped` raised where Python cannot raise it (in a
    finalizer, such as py4j's for a Java object collected meanwhile) would be printed as "Exception
    ignored in ..." and lost, and the command would run on. The signal is sent again, to be raised
    where it can; any other unraisable exception goes to Python's own hook."""
    if isinstance(unraisable.exc_value, Stopped):
        threading.Timer(RETRY_S, os.kill, (os.getpid(), unraisable.exc_value.signum)).start()
        return
    sys.__unraisablehook__(unraisable)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def raise_on_signals() -> None:
    """From now on SIGTERM and SIGINT raise :class:`Stopped` (for the command line, in its main thread)."""
    sys.unraisablehook = _raise_again
    for signum in SIGNALS:
        signal.signal(signum, _raise_stopped)


def _exit_now(signum: int, frame: FrameType | None) -> None:
    with suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(128 + signum)


def exit_on_signals() -> None:
    """From now on (a command's outcome is decided) SIGTERM and SIGINT end the process at once
    with 128 + the signal: raised while Python shuts down, :class:`Stopped` would only print a
    traceback ("Exception ignored in threading._shutdown") and be lost."""
    if _main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _exit_now)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Inside, SIGTERM and SIGINT raise :class:`Stopped` in the main thread (elsewhere, where
    Python cannot take signals, nothing changes); the previous handlers come back after."""
    if not _main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise_stopped) for signum in SIGNALS}
    previous_hook, sys.unraisablehook = sys.unraisablehook, _raise_again
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def signals_held() -> Iterator[None]:
    """The steps inside happen together: a SIGTERM or SIGINT that comes meanwhile raises
    :class:`Stopped` only after them (under :func:`stop_on_signals` or :func:`raise_on_signals`)."""
    _Held.depth += 1
    try:
        yield
    finally:
        _Held.depth -= 1
        if not _Held.depth and _Held.pending is not None:
            signum, _Held.pending = _Held.pending, None
            raise Stopped(signum)
