"""JSON API: campaigns, sending them, and their jobs."""

import logging

from web import inputs, validation
from web.errors import InvalidInput
from web.handlers.base import ApiHandler
from web.repositories import campaigns

log = logging.getLogger(__name__)


async def send_campaign(db, dispatcher, campaign_id: int) -> dict:
    """Create the campaign's jobs and start handing them to email_client."""
    async with db.transaction() as transaction:
        jobs = await campaigns.start_sending(transaction, campaign_id)
    log.info("campaign %d: sending to %d contacts", campaign_id, jobs)
    dispatcher.wake()
    return await campaigns.get(db, campaign_id)


class CampaignsHandler(ApiHandler):
    async def get(self):
        limit, after = validation.page(self.get_argument("limit", None), self.get_argument("after", None))
        self.write_json(await campaigns.list_page(self.db, limit=limit, after=after))

    async def post(self):
        campaign = inputs.campaign(validation.parse_json_object(self.request.body))
        self.write_json(await campaigns.create(self.db, campaign), status=201)


class CampaignHandler(ApiHandler):
    async def get(self, campaign_id):
        self.write_json(await campaigns.get(self.db, validation.positive_id(campaign_id, "id")))

    async def put(self, campaign_id):
        campaign = inputs.campaign(validation.parse_json_object(self.request.body))
        self.write_json(await campaigns.update_draft(self.db, validation.positive_id(campaign_id, "id"), campaign))

    async def delete(self, campaign_id):
        await campaigns.delete_draft(self.db, validation.positive_id(campaign_id, "id"))
        self.set_status(204)
        self.finish()


class CampaignSendHandler(ApiHandler):
    async def post(self, campaign_id):
        campaign_id = validation.positive_id(campaign_id, "id")
        self.write_json(await send_campaign(self.db, self.dispatcher, campaign_id), status=202)


class CampaignJobsHandler(ApiHandler):
    async def get(self, campaign_id):
        campaign_id = validation.positive_id(campaign_id, "id")
        await campaigns.get(self.db, campaign_id)
        limit, after = validation.page(self.get_argument("limit", None), self.get_argument("after", None))
        status = self.get_argument("status", "") or None
        if status is not None and status not in campaigns.JOB_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(campaigns.JOB_STATUSES)}", field="status")
        self.write_json(await campaigns.list_jobs(self.db, campaign_id, status=status, limit=limit, after=after))
