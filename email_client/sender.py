"""Sending one job: render the campaign's template for the contact and hand it to the gateway.

Temporary gateway failures and credential refusals are retried with
exponential backoff and jitter; every other failure ends the job at once.
When the credential refusals in a row, counted across all processes, reach
`pause_after_refusals`, the job's campaign is paused and the job set aside.
A job whose campaign is paused or cancelled is set aside before it is sent,
after a wait for a rate limit slot, and before each retry. A campaign seen
`sending` in Redis less than STATUS_MAX_AGE seconds ago is not checked again,
unless this process paused or cancelled it since. The checks of the jobs
that start while one check is in progress go to Redis together.
"""

import asyncio
import logging
import random
from collections import OrderedDict, defaultdict

from common.templating import CompiledTemplate, TemplateError, TemplateRenderError, compile_template, render_message
from email_client.campaigns import PAUSED, SENDING, CampaignCancelled, Campaigns
from email_client.gateway import (
    Address,
    CredentialsRejected,
    Credentials,
    Gateway,
    OutgoingMessage,
    PermanentGatewayError,
    TemporaryGatewayError,
    idempotency_key,
)
from email_client.limiter import RateLimiter
from email_client.queues import JobEntry, JobResult, Queues
from email_client.redis_guard import RedisGuard
from email_client.settings_store import SettingsStore

log = logging.getLogger(__name__)

# Campaigns whose compiled template is kept; a process rarely sends more at once.
TEMPLATE_CACHE_SIZE = 32
# Seconds a campaign seen `sending` is taken to be still sending. A pause or
# cancel made through another process stops this one's sends within this time.
STATUS_MAX_AGE = 0.1
# Seconds a read of the settings is reused. A change reaches the sends of
# every process within this time, and the sends save a Redis call each.
SETTINGS_TTL = 1.0


class JobFailed(Exception):
    """A job cannot be sent; `reason` is reported to web."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def retry_delay(attempt: int, base_delay: float, max_delay: float) -> float:
    """Return the seconds to wait after failed attempt number `attempt` (1 for the first)."""
    return min(max_delay, base_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)


class TemplateCache:
    """Compiled templates of the campaigns sent most recently, loaded from Redis when missing."""

    def __init__(self, queues: Queues, size: int = TEMPLATE_CACHE_SIZE):
        self._queues = queues
        self._size = size
        self._templates: OrderedDict[int, CompiledTemplate] = OrderedDict()

    async def get(self, campaign_id: int) -> CompiledTemplate:
        """Return the campaign's compiled template; raise JobFailed if none is stored or it does not compile."""
        template = self._templates.get(campaign_id)
        if template is not None:
            self._templates.move_to_end(campaign_id)
            return template
        parts = await self._queues.load_template(campaign_id)
        if parts is None:
            raise JobFailed(f"campaign {campaign_id} has no stored template; queue its jobs again")
        try:
            template = compile_template(*parts)
        except TemplateError as error:
            raise JobFailed(f"the campaign template is invalid: {error}") from None
        self._templates[campaign_id] = template
        if len(self._templates) > self._size:
            self._templates.popitem(last=False)
        return template


class StatusChecks:
    """Campaign status checks of jobs: skipped while a recent check saw the campaign sending, else batched."""

    def __init__(self, campaigns: Campaigns, guard: RedisGuard):
        self._campaigns = campaigns
        self._guard = guard
        # Per campaign: the entry ids to check and the futures of their statuses.
        self._requested: dict[int, list[tuple[str, asyncio.Future]]] = defaultdict(list)
        self._checking: asyncio.Task | None = None
        # Per campaign, in event loop time: when a check last saw it sending,
        # and when `forget` was last called.
        self._seen_sending: dict[int, float] = {}
        self._forgotten: dict[int, float] = {}

    def forget(self, campaign_id: int) -> None:
        """Check the campaign in Redis for the next job, such as after pausing or cancelling it."""
        self._seen_sending.pop(campaign_id, None)
        self._forgotten[campaign_id] = asyncio.get_running_loop().time()

    async def check(self, job: JobEntry) -> str:
        """Return the status of the job's campaign; unless it is `sending`, park or drop the job first."""
        seen = self._seen_sending.get(job.campaign_id)
        if seen is not None and asyncio.get_running_loop().time() - seen < STATUS_MAX_AGE:
            return SENDING
        status = asyncio.get_running_loop().create_future()
        self._requested[job.campaign_id].append((job.entry_id, status))
        if self._checking is None:
            self._checking = asyncio.create_task(self._check_all())
        return await status

    async def stop(self) -> None:
        """Cancel the check in progress, if any; call it once no job waits for a check."""
        if self._checking is not None:
            self._checking.cancel()
            await asyncio.gather(self._checking, return_exceptions=True)

    async def _check_all(self) -> None:
        try:
            while self._requested:
                requested, self._requested = self._requested, defaultdict(list)
                for campaign_id, waiting in requested.items():
                    await self._check_campaign(campaign_id, waiting)
        finally:
            self._checking = None

    async def _check_campaign(self, campaign_id: int, waiting: list[tuple[str, asyncio.Future]]) -> None:
        entry_ids = [entry_id for entry_id, _ in waiting]
        started_at = asyncio.get_running_loop().time()
        try:
            status = await self._guard.call(
                "checking the campaign status",
                lambda: self._campaigns.set_aside_unless_sending(campaign_id, entry_ids),
            )
        except Exception as error:
            for _, future in waiting:
                if not future.done():
                    future.set_exception(error)
            return
        if status == SENDING:
            # A check that started before `forget` may have read the status from before the pause.
            forgotten = self._forgotten.get(campaign_id)
            if forgotten is None or started_at > forgotten:
                self._seen_sending[campaign_id] = started_at
        else:
            self._seen_sending.pop(campaign_id, None)
        for _, future in waiting:
            # A job cancelled meanwhile, such as by a stop, no longer waits.
            if not future.done():
                future.set_result(status)


class JobSender:
    """Turns a job entry into its final result, retrying temporary gateway failures."""

    def __init__(
        self,
        queues: Queues,
        campaigns: Campaigns,
        settings: SettingsStore,
        gateway: Gateway,
        limiter: RateLimiter,
        guard: RedisGuard,
        *,
        max_attempts: int,
        retry_base_delay: float,
        retry_max_delay: float,
        pause_after_refusals: int,
    ):
        self._queues = queues
        self._campaigns = campaigns
        self._settings = settings
        self._gateway = gateway
        self._limiter = limiter
        self._guard = guard
        self._templates = TemplateCache(queues)
        self._status_checks = StatusChecks(campaigns, guard)
        self._settings_read: tuple[float, object] | None = None
        self._max_attempts = max_attempts
        self._retry_base_delay = retry_base_delay
        self._retry_max_delay = retry_max_delay
        self._pause_after_refusals = pause_after_refusals

    async def send(self, job: JobEntry) -> JobResult | None:
        """Send `job` and return its final result, `sent` or `failed`.

        Returns None when the job was set aside instead: parked because its
        campaign is paused, or dropped because it is cancelled. Appends a
        `retrying` result to the result stream after each failed attempt that
        is followed by another one. Redis outages are waited out.
        """
        if await self._set_aside_unless_sending(job):
            return None
        try:
            message = await self._guard.call("loading a template and the settings", lambda: self._build_message(job))
        except JobFailed as error:
            log.error("campaign %d job %d failed before sending: %s", job.campaign_id, job.job_id, error.reason)
            return JobResult(job.job_id, job.campaign_id, "failed", attempt=1, error=error.reason)

        for attempt in range(1, self._max_attempts + 1):
            # A job may wait long for a slot, so the campaign may have been paused meanwhile.
            if await self._limiter.acquire() and await self._set_aside_unless_sending(job):
                return None
            try:
                message_id = await self._gateway.send(message)
            except CredentialsRejected as error:
                refusals = await self._guard.call(
                    "counting a credential refusal", self._campaigns.count_credential_refusal
                )
                if refusals >= self._pause_after_refusals:
                    await self._pause_campaign(job, error, refusals)
                    return None
                problem = f"{error.reason} ({refusals} in a row)"
            except PermanentGatewayError as error:
                log.error("campaign %d job %d failed: %s", job.campaign_id, job.job_id, error.reason)
                return JobResult(job.job_id, job.campaign_id, "failed", attempt, error=error.reason)
            except TemporaryGatewayError as error:
                problem = error.reason
            else:
                log.debug("campaign %d job %d sent as %s, attempt %d", job.campaign_id, job.job_id, message_id, attempt)
                return JobResult(job.job_id, job.campaign_id, "sent", attempt, message_id=message_id)

            if attempt == self._max_attempts:
                reason = f"{problem}; gave up after {attempt} attempts"
                log.error("campaign %d job %d failed: %s", job.campaign_id, job.job_id, reason)
                return JobResult(job.job_id, job.campaign_id, "failed", attempt, error=reason)
            delay = retry_delay(attempt, self._retry_base_delay, self._retry_max_delay)
            log.warning(
                "campaign %d job %d: attempt %d of %d failed: %s; retrying in %.2f s",
                job.campaign_id, job.job_id, attempt, self._max_attempts, problem, delay,
            )
            retrying = JobResult(job.job_id, job.campaign_id, "retrying", attempt, error=problem)
            await self._guard.call("recording a retry", lambda: self._queues.add_result(retrying))
            await asyncio.sleep(delay)
            if await self._set_aside_unless_sending(job):
                return None
        raise AssertionError("max_attempts must be at least 1")

    async def _set_aside_unless_sending(self, job: JobEntry) -> bool:
        """Park or drop the job if its campaign is paused or cancelled; return whether it did."""
        status = await self._status_checks.check(job)
        if status == SENDING:
            return False
        action = "set aside until the campaign is resumed" if status == PAUSED else "dropped"
        log.info("campaign %d job %d %s: the campaign is %s", job.campaign_id, job.job_id, action, status)
        return True

    async def stop(self) -> None:
        """Stop the work the sender does in the background; call it after the worker stopped."""
        await self._status_checks.stop()

    def forget_status(self, campaign_id: int) -> None:
        """Check the campaign's status in Redis before the next send, because it was paused or cancelled."""
        self._status_checks.forget(campaign_id)

    async def _pause_campaign(self, job: JobEntry, error: CredentialsRejected, refusals: int) -> None:
        """Pause the job's campaign for credential refusals, set the job aside and tell web."""
        reason = f"the gateway refused the credentials ({error.status}) on {refusals} sends in a row"
        try:
            paused_now = await self._guard.call(
                "pausing a campaign",
                lambda: self._campaigns.pause(job.campaign_id, reason, entry_id=job.entry_id, event=True),
            )
        except CampaignCancelled:
            self.forget_status(job.campaign_id)
            log.info("campaign %d job %d dropped: the campaign is cancelled", job.campaign_id, job.job_id)
            return
        self.forget_status(job.campaign_id)
        if paused_now:
            log.error(
                "campaign %d paused: %s; fix the gateway credentials with PUT /api/v1/settings, then resume it",
                job.campaign_id, reason,
            )
        log.info("campaign %d job %d set aside until the campaign is resumed", job.campaign_id, job.job_id)

    async def _current_settings(self):
        """Return the settings, read from Redis at most once per SETTINGS_TTL seconds."""
        now = asyncio.get_running_loop().time()
        if self._settings_read is None or now - self._settings_read[0] > SETTINGS_TTL:
            self._settings_read = (now, await self._settings.get())
        return self._settings_read[1]

    async def _build_message(self, job: JobEntry) -> OutgoingMessage:
        """Render the job's email; raise JobFailed if the template or the settings do not allow it."""
        template = await self._templates.get(job.campaign_id)
        try:
            rendered = render_message(template, job.contact)
        except TemplateRenderError as error:
            raise JobFailed(str(error)) from None

        settings = await self._current_settings()
        if not settings.from_email:
            raise JobFailed("the sender address is not set; set from_email with PUT /api/v1/settings")
        credentials = None
        if settings.gateway_username or settings.gateway_password:
            credentials = Credentials(settings.gateway_username or "", settings.gateway_password or "")

        headers = {}
        unsubscribe_url = job.contact.get("unsubscribe_url")
        if unsubscribe_url:
            # Lets mail programs offer an unsubscribe button that posts to the link (RFC 8058).
            headers = {
                "List-Unsubscribe": f"<{unsubscribe_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        return OutgoingMessage(
            idempotency_key=idempotency_key(job.campaign_id, job.job_id),
            sender=Address(email=settings.from_email, name=settings.from_name or ""),
            recipient=Address(email=job.contact["email"], name=job.contact.get("name") or ""),
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            credentials=credentials,
            headers=headers,
        )
