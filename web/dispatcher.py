"""Hands the jobs of sending campaigns to email_client, a chunk at a time.

Every web process runs a dispatcher. A PostgreSQL advisory lock per campaign
makes sure that one process at most hands a campaign over at any moment, and
the campaign's `dispatch_cursor` (the last job id email_client acknowledged)
lets any process take over where another stopped. A chunk may be offered
twice after a crash; email_client ignores the jobs it has queued already.
"""

import asyncio
import logging

from web.errors import ServiceUnavailable
from web.repositories import dispatch
from web.unsubscribe import UnsubscribeLinks

log = logging.getLogger(__name__)

CONTACT_DELETED = "the contact was deleted before the email was handed to the email service"
CONTACT_UNSUBSCRIBED = "the contact unsubscribed before the email was handed to the email service"


class Dispatcher:
    def __init__(self, db, email_client, links: UnsubscribeLinks, chunk_size: int, backlog_limit: int,
                 poll_interval: float = 1.0, retry_interval: float = 5.0):
        self._db = db
        self._email_client = email_client
        self._links = links
        self._chunk_size = chunk_size
        self._backlog_limit = backlog_limit
        self._poll_interval = poll_interval
        self._retry_interval = retry_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dispatcher")

    async def stop(self) -> None:
        """Stop the dispatch loop, waiting for it to end.

        aiopg runs queries under `asyncio.wait_for`, which on Python 3.11 can
        swallow a cancellation that lands while a query completes, so the
        task is cancelled until it has really ended.
        """
        if self._task is None:
            return
        while not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task], timeout=0.5)
        if not self._task.cancelled() and self._task.exception() is not None:
            log.error("the dispatch loop had failed: %r", self._task.exception())

    def wake(self) -> None:
        """Start dispatching now instead of at the next poll, e.g. right after a campaign is sent."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            delay = self._poll_interval
            try:
                if not await self.dispatch_all():
                    delay = self._retry_interval
                await dispatch.finish_done_campaigns(self._db)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatch round failed; trying again in %.0f s", self._retry_interval)
                delay = self._retry_interval
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass

    async def dispatch_all(self) -> bool:
        """Hand over the pending chunks of every sending campaign; False if email_client was unreachable."""
        reachable = True
        for campaign_id in await dispatch.campaigns_to_dispatch(self._db):
            async with self._db.connection() as connection:
                if not await dispatch.try_lock(connection, campaign_id):
                    continue  # another web process is dispatching it
                try:
                    await self._dispatch_campaign(campaign_id)
                except ServiceUnavailable as error:
                    log.warning("campaign %d: cannot hand jobs over: %s", campaign_id, error.message)
                    await dispatch.set_dispatch_error(self._db, campaign_id, error.message)
                    reachable = False
                finally:
                    await dispatch.unlock(connection, campaign_id)
        return reachable

    async def _dispatch_campaign(self, campaign_id: int) -> None:
        """Hand over the campaign's pending jobs until none is left or email_client's backlog is full."""
        campaign = await dispatch.campaign_for_dispatch(self._db, campaign_id)
        if campaign is None:
            return
        dispatch_round = campaign["dispatch_round"]
        cursor = campaign["dispatch_cursor"]
        payload_campaign = {
            "id": campaign_id, "subject": campaign["subject"], "html": campaign["html"], "text": campaign["text"],
        }
        while True:
            rows = await dispatch.next_chunk(self._db, campaign_id, cursor, self._chunk_size)
            if not rows:
                return
            orphans = [row["id"] for row in rows if row["contact_id"] is None]
            if orphans:
                await dispatch.fail_jobs(self._db, orphans, CONTACT_DELETED)
            unsubscribed = [row["id"] for row in rows if row["unsubscribed_at"] is not None]
            if unsubscribed:
                await dispatch.fail_jobs(self._db, unsubscribed, CONTACT_UNSUBSCRIBED)
            jobs = [self._job(row) for row in rows if row["contact_id"] is not None and row["unsubscribed_at"] is None]
            answer = {}
            if jobs:
                answer = await self._email_client.queue_jobs(payload_campaign, jobs, dispatch_round)
                log.debug("campaign %d: handed over jobs %d-%d: %s", campaign_id, rows[0]["id"], rows[-1]["id"], answer)
            cursor = rows[-1]["id"]
            await dispatch.advance_cursor(self._db, campaign_id, dispatch_round, cursor)
            if answer.get("backlog", 0) >= self._backlog_limit:
                return  # the next round goes on where this one stopped, once email_client caught up

    def _job(self, row: dict) -> dict:
        return {"id": row["id"], "contact": {
            "id": row["contact_id"], "email": row["email"], "name": row["name"],
            "first_name": row["first_name"], "last_name": row["last_name"], "attributes": row["attributes"],
            "unsubscribe_url": self._links.url(row["contact_id"]),
        }}
