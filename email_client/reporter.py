"""The reporter: posts job results and campaign events from the result stream to web in batches.

A batch is acknowledged and deleted from the stream only after web responds
with 2xx. Until then the reporter posts the same batch again with a capped
backoff, so results survive web being down, and a batch left by a stopped
process stays pending in the group to be posted by the next reader. A batch
that web took but that a crash kept from being acknowledged is posted again,
which web ignores for jobs that already have their final result.
"""

import asyncio
import json
import logging
from typing import Any

import aiohttp
import redis.asyncio as redis
from redis.exceptions import RedisError
from yarl import URL

from common import signing
from email_client.keys import RESULT_GROUP, Keys
from email_client.redis_guard import UNAVAILABLE, RedisGuard
from email_client.streams import Entry, GroupReader

log = logging.getLogger(__name__)

# How long one read waits for new results, in milliseconds.
READ_BLOCK_MS = 1000
# Delays between two posts of a batch that web did not take, in seconds.
FIRST_RETRY_DELAY = 0.1
MAX_RETRY_DELAY = 5.0
# Time limit of one post to web, in seconds.
POST_TIMEOUT = 30.0
# While web is down, one warning is logged per this many failed posts.
WARN_EVERY = 10


class Reporter:
    """Posts results to `{web_url}/api/v1/internal/job-results` as consumer `consumer`, signed with `service_secret`."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        guard: RedisGuard,
        *,
        web_url: str,
        service_secret: bytes,
        batch_size: int,
        consumer: str,
        claim_idle: float,
    ):
        self._stream = keys.result_stream
        self._reader = GroupReader(client, RESULT_GROUP, consumer, claim_idle)
        self._guard = guard
        self._url = URL(web_url.rstrip("/") + "/api/v1/internal/job-results")
        # Shown in log lines, without a password the URL may contain.
        self._shown_url = str(self._url.with_user(None))
        self._service_secret = service_secret
        self._batch_size = batch_size
        self._session: aiohttp.ClientSession | None = None
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task | None = None

    async def start(self) -> None:
        """Create the result group unless it exists and start posting in a task."""
        await self._reader.create_group(self._stream)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT))
        self._loop_task = asyncio.create_task(self._report_loop())

    async def stop(self) -> None:
        """Stop after the post in progress, if any; unposted results stay in Redis."""
        self._stopping.set()
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _report_loop(self) -> None:
        delay = FIRST_RETRY_DELAY
        while not self._stopping.is_set():
            try:
                entries = await self._reader.read([self._stream], self._batch_size, READ_BLOCK_MS)
                self._guard.succeeded()
                delay = FIRST_RETRY_DELAY
                if not entries:
                    continue
                entry_ids = [entry_id for _, entry_id, _ in entries]
                if await self._post_until_taken(entry_ids, batch_body(entries)):
                    await self._guard.call(
                        "acknowledging posted job results", lambda: self._reader.acknowledge(self._stream, entry_ids)
                    )
            except UNAVAILABLE as error:
                self._guard.failed(error, "reading job results")
                await self._sleep(delay)
                delay = min(MAX_RETRY_DELAY, delay * 2)
            except Exception:
                # A loop that stops would keep every result from web, so any
                # other error is logged and reporting goes on.
                log.exception("reporting job results failed; retrying in %.0f s", MAX_RETRY_DELAY)
                await self._sleep(MAX_RETRY_DELAY)

    async def _post_until_taken(self, entry_ids: list[str], body: dict[str, list[dict[str, Any]]]) -> bool:
        """Post `body`, made of entries `entry_ids`, until web responds with 2xx; return False if stopped first."""
        results = body["results"]
        delay = FIRST_RETRY_DELAY
        failures = 0
        while not self._stopping.is_set():
            problem, level = await self._post(body)
            if problem is None:
                if failures:
                    log.info("web took %d job results after %d failed posts", len(results), failures)
                return True
            failures += 1
            if failures % WARN_EVERY == 1:
                log.log(
                    level, "posting %d job results to %s failed (%d times so far): %s; retrying",
                    len(results), self._shown_url, failures, problem,
                )
            await self._sleep(delay)
            delay = min(MAX_RETRY_DELAY, delay * 2)
            try:
                # Keeps another process from claiming the batch while web is down.
                await self._reader.touch(self._stream, entry_ids)
            except RedisError as error:
                log.debug("touching %d job results failed: %s", len(entry_ids), error)
        return False

    async def _post(self, body: dict[str, list[dict[str, Any]]]) -> tuple[str | None, int]:
        """Post one batch; return None when web took it, else what went wrong and its log level."""
        assert self._session is not None
        results = body["results"]
        # Signed right before each post, so that a batch posted again gets a fresh timestamp and nonce.
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            **signing.sign(self._service_secret, "POST", self._url.raw_path_qs, data),
        }
        try:
            async with self._session.post(self._url, data=data, headers=headers) as response:
                response_text = await response.text(errors="replace")
        except asyncio.TimeoutError:
            return f"timed out after {POST_TIMEOUT:.0f} s", logging.WARNING
        except aiohttp.ClientError as error:
            return f"{type(error).__name__}: {error}", logging.WARNING
        if 200 <= response.status < 300:
            log.debug("web took %d job results: %s", len(results), response_text[:200])
            return None, logging.DEBUG
        problem = f"web responded {response.status}: {response_text[:300]}"
        if 400 <= response.status < 500 and response.status not in (408, 429):
            # NOTE: web rejecting a batch is a bug on one side or the other.
            # The batch is posted again rather than dropped, which blocks this
            # reporter until the bug is fixed.
            return problem, logging.ERROR
        return problem, logging.WARNING

    async def _sleep(self, seconds: float) -> None:
        """Sleep for `seconds`, or less if `stop` is called."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass


def batch_body(entries: list[Entry]) -> dict[str, list[dict[str, Any]]]:
    """Build the body of one post from result stream entries: `results`, and `events` when there are any."""
    body: dict[str, list[dict[str, Any]]] = {"results": []}
    for _, _, fields in entries:
        if "result" in fields:
            body["results"].append(json.loads(fields["result"]))
        else:
            body.setdefault("events", []).append(json.loads(fields["event"]))
    return body
