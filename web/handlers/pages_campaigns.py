"""Pages: campaigns, their form, sending one, and its jobs."""

from web import campaign_actions, inputs
from web.errors import Conflict, DomainError, InvalidInput, NotFound
from web.handlers.pages_base import PageHandler, count_of, id_from_path, page_url, split_error
from web.repositories import campaigns, segments, templates

FIELDS = ("name", "segment_id", "template_id", "subject")


class CampaignsPage(PageHandler):
    async def get(self):
        limit, after = self.page_size()
        page = await campaigns.list_page(self.db, limit=limit, after=after)
        next_url = page_url("/campaigns", after=page["next"]) if page["next"] is not None else None
        self.render_page("campaign_list.html", campaigns=page["items"], next_url=next_url,
                         first_url="/campaigns" if after else None)


class CampaignFormPage(PageHandler):
    def form_values(self) -> dict:
        return {name: self.get_body_argument(name, "") for name in FIELDS}

    async def render_form(self, values: dict, campaign_id: int | None = None,
                          error: DomainError | None = None) -> None:
        errors, form_error = split_error(error, FIELDS) if error else ({}, None)
        self.render_page("campaign_form.html", status=error.status_code if error else 200,
                         values=values, campaign_id=campaign_id, errors=errors, form_error=form_error,
                         segments=await segments.list_all(self.db), templates=await templates.list_all(self.db))


class NewCampaignPage(CampaignFormPage):
    async def get(self):
        values = dict.fromkeys(FIELDS, "")
        values["segment_id"] = self.get_argument("segment_id", "")
        values["template_id"] = self.get_argument("template_id", "")
        await self.render_form(values)

    async def post(self):
        values = self.form_values()
        try:
            campaign = await campaigns.create(self.db, inputs.campaign(values))
        except DomainError as error:
            await self.render_form(values, error=error)
            return
        self.redirect_with_flash(f"/campaigns/{campaign['id']}",
                                 f"Campaign {campaign['name']} created as a draft.")


class EditCampaignPage(CampaignFormPage):
    """The form of a draft; a campaign that was sent cannot change."""

    async def get(self, campaign_id):
        campaign = await campaigns.get(self.db, id_from_path(campaign_id, "campaign"))
        if campaign["status"] != "draft":
            self.redirect_with_flash(f"/campaigns/{campaign['id']}",
                                     f"Campaign {campaign['name']} is {campaign['status']}; only a draft can be edited.")
            return
        values = {name: "" if campaign[name] is None else str(campaign[name]) for name in FIELDS}
        await self.render_form(values, campaign["id"])

    async def post(self, campaign_id):
        campaign_id = id_from_path(campaign_id, "campaign")
        await campaigns.get(self.db, campaign_id)
        values = self.form_values()
        try:
            campaign = await campaigns.update_draft(self.db, campaign_id, inputs.campaign(values))
        except DomainError as error:
            await self.render_form(values, campaign_id, error)
            return
        self.redirect_with_flash(f"/campaigns/{campaign_id}", f"Campaign {campaign['name']} saved.")


class DeleteCampaignPage(PageHandler):
    def render_confirmation(self, campaign: dict, error: DomainError | None = None) -> None:
        self.render_page("confirm_delete.html", status=error.status_code if error else 200, kind="campaign",
                         label=campaign["name"], action=f"/campaigns/{campaign['id']}/delete",
                         cancel_url=f"/campaigns/{campaign['id']}", consequence="Only a draft can be deleted.",
                         error=error.message if error else None)

    async def get(self, campaign_id):
        self.render_confirmation(await campaigns.get(self.db, id_from_path(campaign_id, "campaign")))

    async def post(self, campaign_id):
        campaign = await campaigns.get(self.db, id_from_path(campaign_id, "campaign"))
        try:
            await campaigns.delete_draft(self.db, campaign["id"])
        except Conflict as error:
            self.render_confirmation(campaign, error)
            return
        self.redirect_with_flash("/campaigns", f"Campaign {campaign['name']} deleted.")


class CampaignPage(PageHandler):
    """A campaign with its counts and jobs; static/campaign.js updates them while it is sending."""

    async def get(self, campaign_id):
        campaign = await campaigns.get(self.db, id_from_path(campaign_id, "campaign"))
        await self.render_campaign(campaign)

    async def render_campaign(self, campaign: dict, status: int = 200, send_error: str | None = None) -> None:
        limit, after = self.page_size()
        job_status = self.get_argument("status", "") or None
        if job_status is not None and job_status not in campaigns.JOB_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(campaigns.JOB_STATUSES)}", field="status")
        path = f"/campaigns/{campaign['id']}"
        limit_argument = self.get_argument("limit", "")
        jobs = await campaigns.list_jobs(self.db, campaign["id"], status=job_status, limit=limit, after=after)
        previous_url = next_url = None
        if after:
            previous = await campaigns.previous_jobs_cursor(self.db, campaign["id"], status=job_status,
                                                            limit=limit, after=after)
            previous_url = page_url(path, status=job_status, after=previous, limit=limit_argument)
        if jobs["next"] is not None:
            next_url = page_url(path, status=job_status, after=jobs["next"], limit=limit_argument)
        failures = await campaigns.recent_failures(self.db, campaign["id"]) if campaign["counts"]["failed"] else []
        self.render_page("campaign.html", status=status, campaign=campaign, jobs=jobs["items"],
                         job_status=job_status, job_statuses=campaigns.JOB_STATUSES, after=after, limit=limit,
                         next_url=next_url, previous_url=previous_url, send_error=send_error, failures=failures)


class CampaignActionPage(CampaignPage):
    """The buttons of a campaign: the same actions as `POST /api/v1/campaigns/{id}/{action}`."""

    MESSAGES = {
        "send": "Campaign {name} is sending to {contacts}.",
        "pause": "Campaign {name} is paused.",
        "resume": "Campaign {name} is sending again.",
        "cancel": "Campaign {name} is cancelled; its unsent jobs are cancelled.",
        "retry-failed": "The failed jobs of campaign {name} are being sent again.",
    }

    async def get(self, campaign_id, action):
        """Ask to confirm the send of a draft; the other actions, and a sent campaign, go back to the campaign."""
        campaign = await campaigns.get(self.db, id_from_path(campaign_id, "campaign"))
        if action != "send" or campaign["status"] != "draft":
            self.redirect(f"/campaigns/{campaign['id']}")
            return
        segment = None
        recipients = 0
        if campaign["segment_id"] is not None:
            try:
                segment = await segments.get(self.db, campaign["segment_id"])
                recipients = await campaigns.recipient_count(self.db, segment["id"])
            except NotFound:
                pass  # deleted since the campaign was read
        template = None
        if campaign["template_id"] is not None:
            try:
                template = await templates.get(self.db, campaign["template_id"])
            except NotFound:
                pass  # deleted since the campaign was read; the send reports it
        has_unsubscribe_link = template is None or "unsubscribe_url" in template["html"]
        self.render_page("confirm_send.html", campaign=campaign, segment=segment, recipients=recipients,
                         has_unsubscribe_link=has_unsubscribe_link)

    async def post(self, campaign_id, action):
        campaign_id = id_from_path(campaign_id, "campaign")
        try:
            campaign = await self.run_action(campaign_id, action)
        except NotFound:
            raise
        except DomainError as error:
            await self.render_campaign(await campaigns.get(self.db, campaign_id), error.status_code, error.message)
            return
        message = self.MESSAGES[action].format(**campaign, contacts=count_of(campaign["jobs_total"], "contact"))
        self.redirect_with_flash(f"/campaigns/{campaign_id}", message)

    async def run_action(self, campaign_id: int, action: str) -> dict:
        if action == "send":
            return await campaign_actions.send(self.db, self.dispatcher, campaign_id)
        if action == "pause":
            return await campaign_actions.pause(self.db, self.email_client, campaign_id)
        if action == "resume":
            return await campaign_actions.resume(self.db, self.email_client, self.dispatcher, campaign_id)
        if action == "cancel":
            return await campaign_actions.cancel(self.db, self.email_client, campaign_id)
        return await campaign_actions.retry_failed(self.db, self.dispatcher, campaign_id)


def routes(id_pattern: str) -> list:
    return [
        (r"/campaigns", CampaignsPage),
        (r"/campaigns/new", NewCampaignPage),
        (rf"/campaigns/{id_pattern}", CampaignPage),
        (rf"/campaigns/{id_pattern}/edit", EditCampaignPage),
        (rf"/campaigns/{id_pattern}/delete", DeleteCampaignPage),
        (rf"/campaigns/{id_pattern}/(send|pause|resume|cancel|retry-failed)", CampaignActionPage),
    ]
