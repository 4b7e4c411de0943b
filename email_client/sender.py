"""Sending one job: render the campaign's template for the contact and hand it to the gateway.

Temporary gateway failures are retried with exponential backoff and jitter;
every other failure ends the job at once.
"""

import asyncio
import logging
import random
from collections import OrderedDict

from common.templating import CompiledTemplate, TemplateError, TemplateRenderError, compile_template, render_message
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
from email_client.queues import JobEntry, JobResult, Queues
from email_client.settings_store import SettingsStore

log = logging.getLogger(__name__)

# Campaigns whose compiled template is kept; a process rarely sends more at once.
TEMPLATE_CACHE_SIZE = 32


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


class JobSender:
    """Turns a job entry into its final result, retrying temporary gateway failures."""

    def __init__(
        self,
        queues: Queues,
        settings: SettingsStore,
        gateway: Gateway,
        max_attempts: int,
        retry_base_delay: float,
        retry_max_delay: float,
    ):
        self._queues = queues
        self._settings = settings
        self._gateway = gateway
        self._templates = TemplateCache(queues)
        self._max_attempts = max_attempts
        self._retry_base_delay = retry_base_delay
        self._retry_max_delay = retry_max_delay

    async def send(self, job: JobEntry) -> JobResult:
        """Send `job` and return its final result, `sent` or `failed`.

        Appends a `retrying` result to the result stream after each temporary
        failure that is followed by another attempt.
        """
        try:
            message = await self._build_message(job)
        except JobFailed as error:
            log.error("campaign %d job %d failed before sending: %s", job.campaign_id, job.job_id, error.reason)
            return JobResult(job.job_id, job.campaign_id, "failed", attempt=1, error=error.reason)

        for attempt in range(1, self._max_attempts + 1):
            try:
                message_id = await self._gateway.send(message)
            except CredentialsRejected as error:
                # NOTE: wrong credentials fail every job until the settings are
                # fixed; pausing the sending instead would spare the campaign.
                log.error("campaign %d job %d failed: %s", job.campaign_id, job.job_id, error.reason)
                return JobResult(job.job_id, job.campaign_id, "failed", attempt, error=error.reason)
            except PermanentGatewayError as error:
                log.error("campaign %d job %d failed: %s", job.campaign_id, job.job_id, error.reason)
                return JobResult(job.job_id, job.campaign_id, "failed", attempt, error=error.reason)
            except TemporaryGatewayError as error:
                if attempt == self._max_attempts:
                    reason = f"{error.reason}; gave up after {attempt} attempts"
                    log.error("campaign %d job %d failed: %s", job.campaign_id, job.job_id, reason)
                    return JobResult(job.job_id, job.campaign_id, "failed", attempt, error=reason)
                delay = retry_delay(attempt, self._retry_base_delay, self._retry_max_delay)
                log.warning(
                    "campaign %d job %d: attempt %d of %d failed: %s; retrying in %.2f s",
                    job.campaign_id, job.job_id, attempt, self._max_attempts, error.reason, delay,
                )
                await self._queues.add_result(
                    JobResult(job.job_id, job.campaign_id, "retrying", attempt, error=error.reason)
                )
                await asyncio.sleep(delay)
            else:
                log.debug("campaign %d job %d sent as %s, attempt %d", job.campaign_id, job.job_id, message_id, attempt)
                return JobResult(job.job_id, job.campaign_id, "sent", attempt, message_id=message_id)
        raise AssertionError("max_attempts must be at least 1")

    async def _build_message(self, job: JobEntry) -> OutgoingMessage:
        """Render the job's email; raise JobFailed if the template or the settings do not allow it."""
        template = await self._templates.get(job.campaign_id)
        try:
            rendered = render_message(template, job.contact)
        except TemplateRenderError as error:
            raise JobFailed(str(error)) from None

        settings = await self._settings.get()
        if not settings.from_email:
            raise JobFailed("the sender address is not set; set from_email with PUT /api/v1/settings")
        credentials = None
        if settings.gateway_username or settings.gateway_password:
            credentials = Credentials(settings.gateway_username or "", settings.gateway_password or "")

        return OutgoingMessage(
            idempotency_key=idempotency_key(job.campaign_id, job.job_id),
            sender=Address(email=settings.from_email, name=settings.from_name or ""),
            recipient=Address(email=job.contact["email"], name=job.contact.get("name") or ""),
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            credentials=credentials,
        )
