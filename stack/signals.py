"""SIGINT and SIGTERM as a stop request that code can hold back while a step must not be cut short."""

import contextlib
import logging
import signal
from typing import Iterator

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived; the message names the signal."""


_stop_on_hold = False
_pending: str | None = None


def _request_stop(signal_number: int, frame) -> None:
    global _pending
    name = signal.Signals(signal_number).name
    if _stop_on_hold:
        log.info("%s received; stopping once the current step is done", name)
        _pending = name
        return
    raise StopRequested(name)


def _ignore_repeat(signal_number: int, frame) -> None:
    log.info("%s received again; already stopping", signal.Signals(signal_number).name)


def raise_on_stop() -> None:
    """Make SIGINT and SIGTERM raise StopRequested in the main thread."""
    for signal_number in STOP_SIGNALS:
        signal.signal(signal_number, _request_stop)


def ignore_further_stops() -> None:
    """Log SIGINT and SIGTERM from now on instead of raising, so that the shutdown runs to its end."""
    for signal_number in STOP_SIGNALS:
        signal.signal(signal_number, _ignore_repeat)


@contextlib.contextmanager
def stop_held() -> Iterator[None]:
    """Hold back a stop request until the block ends, then raise StopRequested.

    For steps that leave broken state when interrupted, such as `initdb`
    creating a new PostgreSQL data folder.
    """
    global _stop_on_hold, _pending
    _stop_on_hold = True
    try:
        yield
    finally:
        _stop_on_hold = False
    if _pending is not None:
        name, _pending = _pending, None
        raise StopRequested(name)
