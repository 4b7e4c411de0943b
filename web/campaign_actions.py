"""What a user can do to a campaign once it exists: send, pause, resume, cancel, retry failed jobs.

The JSON API and the pages call these, so both behave the same. Pause,
resume and cancel tell email_client first: when it cannot be reached, the
action is refused with ServiceUnavailable and nothing changes in web.
"""

import logging

from web.errors import Conflict
from web.repositories import campaigns

log = logging.getLogger(__name__)


async def send(db, dispatcher, campaign_id: int) -> dict:
    """Create the campaign's jobs and start handing them to email_client."""
    async with db.transaction() as transaction:
        jobs = await campaigns.start_sending(transaction, campaign_id)
    log.info("campaign %d: sending to %d contacts", campaign_id, jobs)
    dispatcher.wake()
    return await campaigns.get(db, campaign_id)


async def _require_status(db, campaign_id: int, allowed: tuple[str, ...], action: str) -> None:
    campaign = await campaigns.get(db, campaign_id)
    if campaign["status"] not in allowed:
        raise Conflict(f"campaign {campaign_id} is {campaign['status']}; only a {' or '.join(allowed)} campaign"
                       f" can be {action}")


async def pause(db, email_client, campaign_id: int) -> dict:
    await _require_status(db, campaign_id, ("sending",), "paused")
    await email_client.pause(campaign_id)
    async with db.transaction() as transaction:
        await campaigns.pause(transaction, campaign_id, "paused by a user")
    log.info("campaign %d: paused by a user", campaign_id)
    return await campaigns.get(db, campaign_id)


async def resume(db, email_client, dispatcher, campaign_id: int) -> dict:
    await _require_status(db, campaign_id, ("paused",), "resumed")
    await email_client.resume(campaign_id)
    async with db.transaction() as transaction:
        await campaigns.resume(transaction, campaign_id)
    log.info("campaign %d: resumed", campaign_id)
    dispatcher.wake()
    return await campaigns.get(db, campaign_id)


async def cancel(db, email_client, campaign_id: int) -> dict:
    await _require_status(db, campaign_id, ("sending", "paused"), "cancelled")
    await email_client.cancel(campaign_id)
    async with db.transaction() as transaction:
        cancelled = await campaigns.cancel(transaction, campaign_id)
    log.info("campaign %d: cancelled, %d unsent jobs cancelled", campaign_id, cancelled)
    return await campaigns.get(db, campaign_id)


async def retry_failed(db, dispatcher, campaign_id: int) -> dict:
    async with db.transaction() as transaction:
        retried = await campaigns.retry_failed(transaction, campaign_id)
    log.info("campaign %d: retrying %d failed jobs", campaign_id, retried)
    dispatcher.wake()
    return await campaigns.get(db, campaign_id)
