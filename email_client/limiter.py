"""The gateway rate limit shared by every email_client process on one Redis.

Each second of the Redis clock has a counter of the gateway attempts started
in it. Taking a slot increments the counter of the current second unless it
has reached the limit; otherwise the caller waits for the next second. The
Redis clock is used so that processes on hosts whose clocks differ still
share one counter per second.
"""

import asyncio
import logging
import random

import redis.asyncio as redis

from email_client.keys import Keys
from email_client.redis_guard import RedisGuard

log = logging.getLogger(__name__)

#: Seconds a per-second counter is kept, so that the recent rate can be read in Redis.
WINDOW_TTL = 60
# Up to this many milliseconds are added to each wait, so that the processes
# waiting for the next second do not all ask at the same instant.
MAX_JITTER_MS = 20

# Returns 0 when a slot of the current second was taken, else the number of
# milliseconds until the next second. The counter's key is built here from
# the Redis clock, so it cannot be declared in KEYS.
# NOTE: undeclared keys work on a single Redis server but not on Redis Cluster.
_TAKE_SLOT = """
local now = redis.call('TIME')
local key = ARGV[1] .. now[1]
local taken = tonumber(redis.call('GET', key) or '0')
if taken < tonumber(ARGV[2]) then
  redis.call('INCR', key)
  if taken == 0 then
    redis.call('EXPIRE', key, ARGV[3])
  end
  return 0
end
return 1000 - math.floor(tonumber(now[2]) / 1000)
"""


class RateLimiter:
    """Lets at most `limit` gateway attempts start per second across processes; 0 means no limit."""

    def __init__(self, client: redis.Redis, keys: Keys, limit: int, guard: RedisGuard):
        self._limit = limit
        self._guard = guard
        self._key_prefix = keys.rate_window("")
        self._take_slot = client.register_script(_TAKE_SLOT)

    async def acquire(self) -> bool:
        """Wait for a slot and take it; return whether the caller had to wait.

        Waiting is not a failure, and the time it takes is not bounded.
        """
        if self._limit <= 0:
            return False
        waited = False
        while True:
            wait_ms = await self._guard.call("taking a rate limit slot", self._try_take)
            if wait_ms == 0:
                return waited
            waited = True
            await asyncio.sleep((wait_ms + random.uniform(0, MAX_JITTER_MS)) / 1000)

    async def _try_take(self) -> int:
        return int(await self._take_slot(keys=[], args=[self._key_prefix, self._limit, WINDOW_TTL]))
