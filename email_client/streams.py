"""Reading Redis streams as one consumer of a consumer group.

Several email_client processes share one group per stream, each under its
own consumer name. An entry stays pending for the consumer that read it until
it is acknowledged, so an entry read by a process that died is not lost. The
same consumer name reads it again on restart, and any consumer claims it once
it has been idle for `claim_idle` seconds. A live consumer calls `touch` on
the entries it still works on, more often than every `claim_idle` seconds,
so that no other consumer claims them.
"""

import logging
import math
import time

import redis.asyncio as redis
from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

#: An entry as `read` returns it: stream key, entry id, fields.
Entry = tuple[str, str, dict[str, str]]

# Resets the idle time of the entries that are pending for this consumer,
# and leaves alone those that another consumer claimed meanwhile.
_TOUCH = """
local touched = 0
for i = 3, #ARGV do
  local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #owned > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    touched = touched + 1
  end
end
return touched
"""


class GroupReader:
    """Reads entries of a changing list of streams for `consumer` in `group`.

    `read` returns, in this order: the entries this consumer read before and
    did not acknowledge, then entries of other consumers idle for
    `claim_idle` seconds, then new entries of every stream. It looks for the
    first kind once per stream, the first time it sees the stream, and for
    the second kind every `claim_idle` seconds per stream.
    """

    def __init__(self, client: redis.Redis, group: str, consumer: str, claim_idle: float):
        self._redis = client
        self.group = group
        self.consumer = consumer
        self._claim_idle = claim_idle
        # Per stream: where reading this consumer's own pending entries goes
        # on, None once they are all read.
        self._pending_cursors: dict[str, str | None] = {}
        self._claim_cursors: dict[str, str] = {}
        self._next_claims: dict[str, float] = {}
        self._touch = client.register_script(_TOUCH)
        self._rotation = 0

    async def create_group(self, stream: str) -> None:
        """Create the stream and the group unless they exist."""
        try:
            await self._redis.xgroup_create(stream, self.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def read(self, streams: list[str], count: int, block_ms: int) -> list[Entry]:
        """Return entries of `streams`, waiting up to `block_ms` for new ones.

        Returns at most `count` pending or claimed entries. New entries are
        read from up to `count` streams, taking turns, and up to
        ceil(count / streams read) per stream, so that every stream makes
        progress. That may add up to more than `count`, but fewer than
        2 * `count`. Creates the groups again if one is gone, such as after
        Redis was flushed.
        """
        if not streams:
            return []
        try:
            return await self._read(streams, count, block_ms)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
        log.warning("consumer group %s is missing on one of %d streams; creating it again", self.group, len(streams))
        for stream in streams:
            await self.create_group(stream)
        return await self._read(streams, count, block_ms)

    async def _read(self, streams: list[str], count: int, block_ms: int) -> list[Entry]:
        for stream in streams:
            cursor = self._pending_cursors.setdefault(stream, "0")
            if cursor is None:
                continue
            entries = await self._read_group({stream: cursor}, count, None)
            if entries:
                self._pending_cursors[stream] = entries[-1][1]
                return await self._skip_deleted(entries)
            self._pending_cursors[stream] = None

        for stream in streams:
            if time.monotonic() >= self._next_claims.get(stream, 0.0):
                entries = await self._claim(stream, count)
                if entries:
                    return entries

        # Starting at a different stream each time keeps the first streams
        # from always coming first, and reading at most `count` streams keeps
        # one consumer from taking far more entries than it has room for.
        self._rotation = (self._rotation + 1) % len(streams)
        chosen = (streams[self._rotation:] + streams[:self._rotation])[:count]
        per_stream = max(1, math.ceil(count / len(chosen)))
        return await self._read_group({stream: ">" for stream in chosen}, per_stream, block_ms)

    async def acknowledge(self, stream: str, entry_ids: list[str]) -> None:
        """Acknowledge and delete entries of `stream` in one transaction."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, self.group, *entry_ids)
            pipe.xdel(stream, *entry_ids)
            await pipe.execute()

    async def touch(self, stream: str, entry_ids: list[str]) -> int:
        """Reset the idle time of those entries still pending for this consumer; return how many."""
        return int(await self._touch(keys=[stream], args=[self.group, self.consumer, *entry_ids]))

    async def _read_group(self, streams: dict[str, str], count: int, block_ms: int | None) -> list[Entry]:
        reply = await self._redis.xreadgroup(self.group, self.consumer, streams, count=count, block=block_ms)
        entries: list[Entry] = []
        for stream, stream_entries in reply or []:
            entries.extend((stream, entry_id, fields) for entry_id, fields in stream_entries)
        return entries

    async def _claim(self, stream: str, count: int) -> list[Entry]:
        """Claim up to `count` entries of `stream` idle for `claim_idle` seconds, scanning its pending list."""
        while True:
            cursor, claimed, *_deleted = await self._redis.xautoclaim(
                stream, self.group, self.consumer, int(self._claim_idle * 1000),
                start_id=self._claim_cursors.get(stream, "0-0"), count=count,
            )
            entries = [(stream, entry_id, fields) for entry_id, fields in claimed if fields]
            finished = cursor in ("0-0", b"0-0")
            self._claim_cursors[stream] = "0-0" if finished else cursor
            if finished:
                self._next_claims[stream] = time.monotonic() + self._claim_idle
            if entries:
                log.warning(
                    "%s: claimed %d entries idle for %.1f s or more, most likely left by a stopped consumer",
                    stream, len(entries), self._claim_idle,
                )
                return entries
            if finished:
                return []

    async def _skip_deleted(self, entries: list[Entry]) -> list[Entry]:
        """Acknowledge pending entries that were deleted and return the others."""
        for stream, entry_id, fields in entries:
            if not fields:
                await self._redis.xack(stream, self.group, entry_id)
        return [entry for entry in entries if entry[2]]
