"""Reading a Redis stream as one consumer of a consumer group.

Several email_client processes share one group, each under its own consumer
name. An entry stays pending for the consumer that read it until it is
acknowledged, so an entry read by a process that died is not lost. The same
consumer name reads it again on restart, and any consumer claims it once it
has been idle for CLAIM_IDLE seconds.
"""

import logging
import time

import redis.asyncio as redis
from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

# NOTE: a setting would be better. An entry that one live consumer works on
# for longer than this, such as a job in long gateway retries, can be claimed
# and processed by a second consumer too. Only one of them records the
# outcome, and the gateway's idempotency key keeps the email from being sent
# twice.
CLAIM_IDLE = 60.0

Entry = tuple[str, dict[str, str]]


class GroupReader:
    """Reads entries of `stream` for `consumer` in `group`.

    `read` returns, in this order: the entries this consumer read before and
    did not acknowledge, then entries of other consumers idle for CLAIM_IDLE
    seconds (looked for every CLAIM_IDLE seconds), then new entries.
    """

    def __init__(self, client: redis.Redis, stream: str, group: str, consumer: str):
        self._redis = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self._pending_cursor: str | None = "0"
        self._claim_cursor = "0-0"
        self._next_claim = 0.0

    async def create_group(self) -> None:
        """Create the stream and the group unless they exist."""
        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def read(self, count: int, block_ms: int) -> list[Entry]:
        """Return up to `count` entries, waiting up to `block_ms` for new ones.

        Creates the group again if it is gone, such as after Redis was flushed.
        """
        try:
            return await self._read(count, block_ms)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
        log.warning("%s: consumer group %s is missing; creating it again", self.stream, self.group)
        await self.create_group()
        return await self._read(count, block_ms)

    async def _read(self, count: int, block_ms: int) -> list[Entry]:
        if self._pending_cursor is not None:
            entries = await self._read_group(self._pending_cursor, count, None)
            if entries:
                self._pending_cursor = entries[-1][0]
                return await self._skip_deleted(entries)
            self._pending_cursor = None
        if time.monotonic() >= self._next_claim:
            entries = await self._claim(count)
            if entries:
                return entries
        return await self._skip_deleted(await self._read_group(">", count, block_ms))

    async def acknowledge(self, entry_ids: list[str]) -> None:
        """Acknowledge and delete entries in one transaction."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, *entry_ids)
            pipe.xdel(self.stream, *entry_ids)
            await pipe.execute()

    async def _read_group(self, start: str, count: int, block_ms: int | None) -> list[Entry]:
        reply = await self._redis.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=count, block=block_ms
        )
        if not reply:
            return []
        return list(reply[0][1])

    async def _claim(self, count: int) -> list[Entry]:
        """Claim up to `count` entries idle for CLAIM_IDLE seconds, scanning the group's pending list."""
        while True:
            cursor, entries, *_deleted = await self._redis.xautoclaim(
                self.stream, self.group, self.consumer, int(CLAIM_IDLE * 1000),
                start_id=self._claim_cursor, count=count,
            )
            entries = [(entry_id, fields) for entry_id, fields in entries if fields]
            finished = cursor in ("0-0", b"0-0")
            self._claim_cursor = "0-0" if finished else cursor
            if finished:
                self._next_claim = time.monotonic() + CLAIM_IDLE
            if entries:
                log.warning(
                    "%s: claimed %d entries idle for %.0f s or more, most likely left by a stopped consumer",
                    self.stream, len(entries), CLAIM_IDLE,
                )
                return entries
            if finished:
                return []

    async def _skip_deleted(self, entries: list[Entry]) -> list[Entry]:
        """Acknowledge pending entries that were deleted and return the others."""
        deleted = [entry_id for entry_id, fields in entries if not fields]
        if deleted:
            await self._redis.xack(self.stream, self.group, *deleted)
        return [(entry_id, fields) for entry_id, fields in entries if fields]
