"""Riding out a Redis outage: retry with backoff, log once per outage.

Every loop and job of one process shares one `RedisGuard`, so that a Redis
restart gives one warning when the first command fails and one info line
when a command succeeds again, however many commands failed in between.
"""

import asyncio
import logging
import time
from typing import Awaitable, Callable, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

#: Errors of an unreachable or restarting Redis; a Redis still loading its
#: data raises BusyLoadingError, a ConnectionError.
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)

# Delays between two tries of a failed command, in seconds.
FIRST_RETRY_DELAY = 0.1
MAX_RETRY_DELAY = 5.0

T = TypeVar("T")


class RedisGuard:
    """Whether Redis is reachable for this process, learnt from the commands it runs."""

    def __init__(self) -> None:
        self._down_since: float | None = None
        self._failures = 0

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    def failed(self, error: Exception, doing: str) -> None:
        """Record a failed command; the first failure of an outage logs a warning."""
        self._failures += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning(
                "Redis is unavailable (%s while %s): %s; retrying with backoff until it is back",
                type(error).__name__, doing, error,
            )

    def succeeded(self) -> None:
        """Record a command that worked; it ends an outage, if any."""
        if self._down_since is None:
            return
        log.info(
            "Redis is available again after %.1f s (%d failed commands)",
            time.monotonic() - self._down_since, self._failures,
        )
        self._down_since = None
        self._failures = 0

    async def call(self, doing: str, operation: Callable[[], Awaitable[T]]) -> T:
        """Await `operation()` until Redis is reachable and return its result.

        `doing` names the step for the log, such as "recording a job result".
        Only connection and timeout errors are retried, so `operation` runs
        again after a failure; the scripts it runs must be safe to repeat.
        Other RedisErrors propagate, and cancelling the caller stops the retries.
        """
        delay = FIRST_RETRY_DELAY
        while True:
            try:
                result = await operation()
            except UNAVAILABLE as error:
                self.failed(error, doing)
                await asyncio.sleep(delay)
                delay = min(MAX_RETRY_DELAY, delay * 2)
                continue
            self.succeeded()
            return result
