"""JSON API: campaigns, sending them, and their jobs."""

from web import campaign_actions, inputs, validation
from web.errors import InvalidInput
from web.handlers.base import ApiHandler
from web.repositories import campaigns


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


class CampaignActionHandler(ApiHandler):
    """`POST /api/v1/campaigns/{id}/{action}`: send, pause, resume, cancel or retry-failed."""

    async def post(self, campaign_id, action):
        campaign_id = validation.positive_id(campaign_id, "id")
        if action == "send":
            campaign = await campaign_actions.send(self.db, self.dispatcher, campaign_id)
        elif action == "pause":
            campaign = await campaign_actions.pause(self.db, self.email_client, campaign_id)
        elif action == "resume":
            campaign = await campaign_actions.resume(self.db, self.email_client, self.dispatcher, campaign_id)
        elif action == "cancel":
            campaign = await campaign_actions.cancel(self.db, self.email_client, campaign_id)
        else:
            campaign = await campaign_actions.retry_failed(self.db, self.dispatcher, campaign_id)
        self.write_json(campaign, status=202 if action in ("send", "retry-failed") else 200)


class CampaignJobsHandler(ApiHandler):
    async def get(self, campaign_id):
        campaign_id = validation.positive_id(campaign_id, "id")
        await campaigns.get(self.db, campaign_id)
        limit, after = validation.page(self.get_argument("limit", None), self.get_argument("after", None))
        status = self.get_argument("status", "") or None
        if status is not None and status not in campaigns.JOB_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(campaigns.JOB_STATUSES)}", field="status")
        self.write_json(await campaigns.list_jobs(self.db, campaign_id, status=status, limit=limit, after=after))
