"""The send loop: reads jobs of every active campaign and sends up to `concurrency` at once.

Each job ends with its final result appended to the result stream in the same
atomic step that acknowledges and deletes its entry. A crash before that step
leaves the job pending, to be sent again. The gateway's idempotency key turns
that second send into a 409 with the first message id. A crash after it
leaves nothing to redo.

Jobs are read from the streams of all active campaigns at once, a share of
the free slots per campaign, so that a campaign sent second does not wait
for the first to finish.
"""

import asyncio
import logging
from collections import defaultdict, deque

import redis.asyncio as redis
from redis.exceptions import RedisError

from email_client.keys import JOB_GROUP, Keys
from email_client.queues import JobEntry, JobResult, Queues
from email_client.redis_guard import UNAVAILABLE, RedisGuard
from email_client.sender import JobSender
from email_client.streams import Entry, GroupReader

log = logging.getLogger(__name__)

# How long one read waits for new jobs, in milliseconds. It bounds how long a
# stop request waits for the read to return and how long a newly active
# campaign waits to be read.
READ_BLOCK_MS = 1000
# Delays after a failed read, in seconds.
FIRST_RETRY_DELAY = 0.1
MAX_RETRY_DELAY = 5.0


class Worker:
    """Sends jobs as consumer `consumer` of the job group until `stop` is called."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        sender: JobSender,
        guard: RedisGuard,
        *,
        concurrency: int,
        consumer: str,
        claim_idle: float,
    ):
        self._keys = keys
        self._queues = Queues(client, keys)
        self._reader = GroupReader(client, JOB_GROUP, consumer, claim_idle)
        self._sender = sender
        self._guard = guard
        self._concurrency = concurrency
        # Entries read and not started yet: the reader may return a few more
        # entries than there are free slots.
        self._waiting: deque[Entry] = deque()
        self._in_flight: dict[tuple[str, str], asyncio.Task] = {}
        # Entries are touched three times per claim_idle so that one late
        # touch does not let another consumer claim them.
        self._touch_interval = claim_idle / 3
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def start(self) -> None:
        """Start reading jobs and touching the entries in flight, each in a task."""
        for loop in (self._read_loop(), self._touch_loop()):
            task = asyncio.create_task(loop)
            task.add_done_callback(_log_crash)
            self._tasks.append(task)

    async def stop(self, grace: float) -> None:
        """Stop reading jobs, wait up to `grace` seconds for sends in flight, then cancel them.

        A cancelled job, like a job read and not started, stays pending in its
        group and is sent again later.
        """
        self._stopping.set()
        if self._tasks:
            _, unfinished_loops = await asyncio.wait(self._tasks, timeout=2 * READ_BLOCK_MS / 1000)
            for task in unfinished_loops:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if not self._in_flight:
            return
        log.info("waiting up to %.0f s for %d sends in flight", grace, len(self._in_flight))
        _, unfinished = await asyncio.wait(self._in_flight.values(), timeout=grace)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        if unfinished:
            log.warning("stopped with %d jobs unfinished; they stay pending and will be sent again", len(unfinished))

    async def _read_loop(self) -> None:
        """Read and start jobs until `stop` is called, never more in flight than `concurrency`."""
        delay = FIRST_RETRY_DELAY
        while not self._stopping.is_set():
            free = self._concurrency - len(self._in_flight)
            if free <= 0:
                await asyncio.wait(
                    self._in_flight.values(), timeout=READ_BLOCK_MS / 1000, return_when=asyncio.FIRST_COMPLETED
                )
                continue
            if not self._waiting:
                try:
                    entries = await self._read(free)
                except UNAVAILABLE as error:
                    self._guard.failed(error, "reading jobs")
                    await self._sleep(delay)
                    delay = min(MAX_RETRY_DELAY, delay * 2)
                    continue
                except Exception:
                    # A loop that stops would leave every job unsent, so any
                    # other error is logged and reading goes on.
                    log.exception("reading jobs failed; retrying in %.1f s", MAX_RETRY_DELAY)
                    await self._sleep(MAX_RETRY_DELAY)
                    continue
                self._guard.succeeded()
                delay = FIRST_RETRY_DELAY
                # A claimed entry may be one this process is still sending;
                # the buffer is empty here, because reads wait until it is.
                self._waiting.extend(entry for entry in entries if entry[:2] not in self._in_flight)
            while self._waiting and len(self._in_flight) < self._concurrency:
                self._start(*self._waiting.popleft())

    async def _read(self, count: int) -> list[Entry]:
        campaign_ids = await self._queues.active_campaign_ids()
        if not campaign_ids:
            await self._sleep(READ_BLOCK_MS / 1000)
            return []
        streams = [self._keys.job_stream(campaign_id) for campaign_id in campaign_ids]
        return await self._reader.read(streams, count, READ_BLOCK_MS)

    async def _touch_loop(self) -> None:
        """Keep the entries of this process from looking idle to other consumers."""
        while not self._stopping.is_set():
            await self._sleep(self._touch_interval)
            by_stream: dict[str, list[str]] = defaultdict(list)
            for stream, entry_id in [*self._in_flight, *(entry[:2] for entry in self._waiting)]:
                by_stream[stream].append(entry_id)
            try:
                for stream, entry_ids in by_stream.items():
                    await self._reader.touch(stream, entry_ids)
            except RedisError as error:
                # The read loop reports outages; an entry claimed meanwhile
                # is finished once, by whichever consumer gets there first.
                log.debug("touching %d streams of entries in flight failed: %s", len(by_stream), error)

    def _start(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        key = (stream, entry_id)
        task = asyncio.create_task(self._process(stream, entry_id, fields))
        self._in_flight[key] = task
        task.add_done_callback(lambda _: self._in_flight.pop(key, None))

    async def _process(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        try:
            job = JobEntry.from_fields(entry_id, fields)
        except (KeyError, ValueError) as error:
            # Only this service writes job entries, so this is a bug; the
            # entry is dropped so that it does not block the group forever.
            log.error(
                "%s: job entry %s is malformed and is dropped: %s: %s; fields %r",
                stream, entry_id, type(error).__name__, error, fields,
            )
            await self._guard.call("dropping a malformed job", lambda: self._reader.acknowledge(stream, [entry_id]))
            return

        try:
            result = await self._sender.send(job)
            if result is not None:
                await self._finish(job, result)
        except RedisError as error:
            log.error(
                "campaign %d job %d: Redis failed: %s; the job stays pending and will be sent again",
                job.campaign_id, job.job_id, error,
            )
        except Exception:
            log.exception("campaign %d job %d: unexpected error; the job stays pending", job.campaign_id, job.job_id)

    async def _finish(self, job: JobEntry, result: JobResult) -> None:
        if await self._guard.call("recording a job result", lambda: self._queues.finish_job(job, result)):
            return
        log.warning(
            "campaign %d job %d was finished by another consumer; its %s result is dropped",
            job.campaign_id, job.job_id, result.status,
        )

    async def _sleep(self, seconds: float) -> None:
        """Sleep for `seconds`, or less if `stop` is called."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass


def _log_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a loop of the worker stopped on an unexpected error", exc_info=task.exception())
