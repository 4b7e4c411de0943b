"""The send loop: reads jobs from the job stream and sends up to `concurrency` at once.

Each job ends with its final result appended to the result stream in the same
atomic step that acknowledges and deletes its entry. A crash before that step
leaves the job pending, to be sent again. The gateway's idempotency key turns
that second send into a 409 with the first message id. A crash after it
leaves nothing to redo.
"""

import asyncio
import logging

import redis.asyncio as redis
from redis.exceptions import RedisError

from email_client.keys import JOB_GROUP, Keys
from email_client.queues import JobEntry, JobResult, Queues
from email_client.sender import JobSender
from email_client.streams import GroupReader

log = logging.getLogger(__name__)

# How long one read waits for new jobs, in milliseconds; it bounds how long
# a stop request waits for the read to return.
READ_BLOCK_MS = 1000
# Seconds to wait after Redis failed before reading again.
REDIS_RETRY_DELAY = 1.0
# While Redis fails, one warning is logged per this many failed reads.
WARN_EVERY = 30


class Worker:
    """Sends jobs as consumer `consumer` of the job group until `stop` is called."""

    def __init__(self, client: redis.Redis, keys: Keys, sender: JobSender, concurrency: int, consumer: str):
        self._queues = Queues(client, keys)
        self._reader = GroupReader(client, keys.job_stream, JOB_GROUP, consumer)
        self._sender = sender
        self._concurrency = concurrency
        self._in_flight: dict[str, asyncio.Task] = {}
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task | None = None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def start(self) -> None:
        """Create the job group unless it exists and start reading jobs in a task."""
        await self._reader.create_group()
        self._loop_task = asyncio.create_task(self._read_loop())
        self._loop_task.add_done_callback(_log_crash)

    async def _read_loop(self) -> None:
        """Read and start jobs until `stop` is called, never more jobs than free slots."""
        failures = 0
        while not self._stopping.is_set():
            free = self._concurrency - len(self._in_flight)
            if free <= 0:
                await asyncio.wait(
                    self._in_flight.values(), timeout=READ_BLOCK_MS / 1000, return_when=asyncio.FIRST_COMPLETED
                )
                continue
            try:
                entries = await self._reader.read(free, READ_BLOCK_MS)
            except RedisError as error:
                failures += 1
                if failures % WARN_EVERY == 1:
                    log.warning(
                        "reading the job stream failed (%d times in a row): %s; retrying every %.0f s",
                        failures, error, REDIS_RETRY_DELAY,
                    )
                await asyncio.sleep(REDIS_RETRY_DELAY)
                continue
            if failures:
                log.info("reading the job stream works again after %d failures", failures)
                failures = 0
            for entry_id, fields in entries:
                # A claimed entry may be one this process is still sending.
                if entry_id not in self._in_flight:
                    self._start(entry_id, fields)

    async def stop(self, grace: float) -> None:
        """Stop reading jobs, wait up to `grace` seconds for sends in flight, then cancel them.

        A cancelled job stays pending in the group and is sent again later.
        """
        self._stopping.set()
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if not self._in_flight:
            return
        log.info("waiting up to %.0f s for %d sends in flight", grace, len(self._in_flight))
        _, unfinished = await asyncio.wait(self._in_flight.values(), timeout=grace)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        if unfinished:
            log.warning("stopped with %d jobs unfinished; they stay pending and will be sent again", len(unfinished))

    def _start(self, entry_id: str, fields: dict[str, str]) -> None:
        task = asyncio.create_task(self._process(entry_id, fields))
        self._in_flight[entry_id] = task
        task.add_done_callback(lambda _: self._in_flight.pop(entry_id, None))

    async def _process(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            job = JobEntry.from_fields(entry_id, fields)
        except (KeyError, ValueError) as error:
            # Only this service writes job entries, so this is a bug; the
            # entry is dropped so that it does not block the group forever.
            log.error(
                "job entry %s is malformed and is dropped: %s: %s; fields %r",
                entry_id, type(error).__name__, error, fields,
            )
            await self._reader.acknowledge([entry_id])
            return

        try:
            result = await self._sender.send(job)
            await self._finish(job, result)
        except RedisError as error:
            log.error(
                "campaign %d job %d: Redis failed: %s; the job stays pending and will be sent again",
                job.campaign_id, job.job_id, error,
            )
        except Exception:
            log.exception("campaign %d job %d: unexpected error; the job stays pending", job.campaign_id, job.job_id)

    async def _finish(self, job: JobEntry, result: JobResult) -> None:
        if await self._queues.finish_job(job.entry_id, result):
            return
        log.warning(
            "campaign %d job %d was finished by another consumer; its %s result is dropped",
            job.campaign_id, job.job_id, result.status,
        )


def _log_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the send loop stopped on an unexpected error", exc_info=task.exception())
