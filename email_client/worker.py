"""The send loop: reads jobs of every active campaign and sends up to `concurrency` at once.

Each job ends with its final result appended to the result stream in the same
atomic step that acknowledges and deletes its entry. A crash before that step
leaves the job pending, to be sent again. The gateway's idempotency key turns
that second send into a 409 with the first message id. A crash after it
leaves nothing to redo.

Jobs are read from the streams of all active campaigns at once, a share of
the free slots per campaign, so that a campaign sent second does not wait
for the first to finish.

A few jobs more than there are free slots are read ahead, so that a send
that ends starts the next job at once rather than after a read from Redis.
The results that arrive while one write is in progress are written together
by the next one, and a send frees its slot as soon as it hands its result
over.
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
# Jobs read ahead, as a share of the concurrency, rounded down. Reading
# starts again when half of them are left, so that each read takes several.
READ_AHEAD_SHARE = 0.2
# Maximum number of results written in one Redis call.
MAX_WRITE_BATCH = 500
# Seconds that stopping waits for the results of finished sends to be written.
WRITE_GRACE = 5.0


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
        self._read_ahead = int(concurrency * READ_AHEAD_SHARE)
        # Entries read and not started yet. A read may also return a few
        # more entries than were asked for.
        self._waiting: deque[Entry] = deque()
        self._in_flight: dict[tuple[str, str], asyncio.Task] = {}
        self._slot_freed = asyncio.Event()
        # Final results handed over by finished sends, and those being written.
        self._unwritten: list[tuple[JobEntry, JobResult]] = []
        self._writing: list[tuple[JobEntry, JobResult]] = []
        self._result_arrived = asyncio.Event()
        self._sends_over = False
        self._write_task: asyncio.Task | None = None
        # Entries are touched three times per claim_idle so that one late
        # touch does not let another consumer claim them.
        self._touch_interval = claim_idle / 3
        self._stopping = asyncio.Event()
        self._jobs_queued = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def start(self) -> None:
        """Start reading jobs, writing results and touching the entries in flight, each in a task."""
        for loop in (self._read_loop(), self._touch_loop()):
            task = asyncio.create_task(loop)
            task.add_done_callback(_log_crash)
            self._tasks.append(task)
        self._write_task = asyncio.create_task(self._write_loop())
        self._write_task.add_done_callback(_log_crash)

    def wake(self) -> None:
        """Look for jobs now if no campaign was active at the last look, rather than up to READ_BLOCK_MS later."""
        self._jobs_queued.set()

    async def stop(self, grace: float) -> None:
        """Stop reading jobs, wait up to `grace` seconds for sends in flight, then cancel them.

        The results of finished sends are written before it returns, unless
        Redis stays unavailable for WRITE_GRACE seconds. A cancelled job, a
        job read and not started, and a job whose result was not written stay
        pending in their group and are sent again later.
        """
        self._stopping.set()
        self._slot_freed.set()
        if self._tasks:
            _, unfinished_loops = await asyncio.wait(self._tasks, timeout=2 * READ_BLOCK_MS / 1000)
            for task in unfinished_loops:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._in_flight:
            log.info("waiting up to %.0f s for %d sends in flight", grace, len(self._in_flight))
            _, unfinished = await asyncio.wait(self._in_flight.values(), timeout=grace)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
            if unfinished:
                log.warning("stopped with %d jobs unfinished; they stay pending and will be sent again",
                            len(unfinished))
        await self._stop_writing()

    async def _stop_writing(self) -> None:
        if self._write_task is None:
            return
        self._sends_over = True
        self._result_arrived.set()
        _, unfinished = await asyncio.wait([self._write_task], timeout=WRITE_GRACE)
        if unfinished:
            self._write_task.cancel()
            log.warning(
                "stopped with %d job results unwritten, because Redis is unavailable; "
                "their jobs stay pending and will be sent again",
                len(self._unwritten) + len(self._writing),
            )
        await asyncio.gather(self._write_task, return_exceptions=True)

    async def _read_loop(self) -> None:
        """Read jobs until `stop` is called, to fill the free slots and keep a few jobs read ahead."""
        delay = FIRST_RETRY_DELAY
        while not self._stopping.is_set():
            room = self._concurrency + self._read_ahead - len(self._in_flight) - len(self._waiting)
            if room <= 0 or len(self._waiting) > self._read_ahead // 2:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                entries = await self._read(room)
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
            # A claimed entry may be one that this process has still in hand.
            in_hand = set(self._entries_in_hand())
            self._waiting.extend(entry for entry in entries if entry[:2] not in in_hand)
            self._start_waiting()

    async def _read(self, count: int) -> list[Entry]:
        self._jobs_queued.clear()
        campaign_ids = await self._queues.active_campaign_ids()
        if not campaign_ids:
            await self._sleep(READ_BLOCK_MS / 1000, self._jobs_queued)
            return []
        streams = [self._keys.job_stream(campaign_id) for campaign_id in campaign_ids]
        return await self._reader.read(streams, count, READ_BLOCK_MS)

    async def _touch_loop(self) -> None:
        """Keep the entries of this process from looking idle to other consumers."""
        while not self._stopping.is_set():
            await self._sleep(self._touch_interval)
            by_stream: dict[str, list[str]] = defaultdict(list)
            for stream, entry_id in self._entries_in_hand():
                by_stream[stream].append(entry_id)
            try:
                for stream, entry_ids in by_stream.items():
                    await self._reader.touch(stream, entry_ids)
            except RedisError as error:
                # The read loop reports outages; an entry claimed meanwhile
                # is finished once, by whichever consumer gets there first.
                log.debug("touching %d streams of entries in flight failed: %s", len(by_stream), error)

    def _entries_in_hand(self) -> list[tuple[str, str]]:
        """Return the stream and id of each entry this process has read and not finished."""
        finished = self._unwritten + self._writing
        unwritten = [(self._keys.job_stream(job.campaign_id), job.entry_id) for job, _ in finished]
        return [*self._in_flight, *(entry[:2] for entry in self._waiting), *unwritten]

    def _start_waiting(self) -> None:
        """Start waiting jobs while there are free slots."""
        while self._waiting and len(self._in_flight) < self._concurrency and not self._stopping.is_set():
            self._start(*self._waiting.popleft())

    def _start(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        key = (stream, entry_id)
        task = asyncio.create_task(self._process(stream, entry_id, fields))
        self._in_flight[key] = task
        task.add_done_callback(lambda _: self._free_slot(key))

    def _free_slot(self, key: tuple[str, str]) -> None:
        self._in_flight.pop(key, None)
        self._start_waiting()
        self._slot_freed.set()

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
        except RedisError as error:
            log.error(
                "campaign %d job %d: Redis failed: %s; the job stays pending and will be sent again",
                job.campaign_id, job.job_id, error,
            )
            return
        except Exception:
            log.exception("campaign %d job %d: unexpected error; the job stays pending", job.campaign_id, job.job_id)
            return
        if result is not None:
            self._unwritten.append((job, result))
            self._result_arrived.set()

    async def _write_loop(self) -> None:
        """Write the handed-over results until `stop` is called and they are all written."""
        while True:
            await self._result_arrived.wait()
            self._result_arrived.clear()
            while self._unwritten:
                self._writing = self._unwritten[:MAX_WRITE_BATCH]
                del self._unwritten[:MAX_WRITE_BATCH]
                try:
                    await self._write(self._writing)
                except Exception:
                    # The jobs stay pending; once idle for claim_idle seconds
                    # they are claimed and sent again, and the gateway
                    # returns their first message ids.
                    log.exception("writing %d job results failed; their jobs stay pending", len(self._writing))
                self._writing = []
            if self._sends_over:
                return

    async def _write(self, finished: list[tuple[JobEntry, JobResult]]) -> None:
        written = await self._guard.call("recording job results", lambda: self._queues.finish_jobs(finished))
        for (job, result), was_written in zip(finished, written):
            if not was_written:
                log.warning(
                    "campaign %d job %d was finished by another consumer; its %s result is dropped",
                    job.campaign_id, job.job_id, result.status,
                )

    async def _sleep(self, seconds: float, wake_up: asyncio.Event | None = None) -> None:
        """Sleep for `seconds`, or less if `stop` is called or `wake_up` is set."""
        waits = [asyncio.ensure_future(self._stopping.wait())]
        if wake_up is not None:
            waits.append(asyncio.ensure_future(wake_up.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()


def _log_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a loop of the worker stopped on an unexpected error", exc_info=task.exception())
