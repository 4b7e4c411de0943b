"""Validation of a chunk of jobs that web offers with `POST /api/v1/campaigns/{id}/jobs`."""

from dataclasses import dataclass
from typing import Any

from common.templating import TemplateError, compile_template
from email_client.errors import InvalidInput

MAX_JOBS_PER_CHUNK = 5000


@dataclass(frozen=True)
class Job:
    id: int
    contact: dict[str, Any]


@dataclass(frozen=True)
class Chunk:
    """A validated chunk: the campaign's template and its jobs in ascending id order.

    `round` counts how often web handed the campaign's failed jobs over again;
    the highest queued job id is kept per round.
    """

    campaign_id: int
    subject: str
    html: str
    text: str
    jobs: list[Job]
    round: int = 0


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _parse_campaign(campaign_id: int, campaign: Any) -> tuple[str, str, str]:
    """Return the campaign's subject, html and text after checking that they compile."""
    if not isinstance(campaign, dict):
        raise InvalidInput("campaign must be an object with id, subject, html and text", "campaign")
    if campaign.get("id") != campaign_id:
        raise InvalidInput(
            f"campaign.id {campaign.get('id')!r} does not match campaign {campaign_id} of the URL", "campaign.id"
        )
    for part in ("subject", "html"):
        if not isinstance(campaign.get(part), str) or not campaign[part]:
            raise InvalidInput(f"campaign.{part} is missing; it must be a non-empty string", f"campaign.{part}")
    text = campaign.get("text")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InvalidInput("campaign.text must be a string or null", "campaign.text")
    try:
        compile_template(campaign["subject"], campaign["html"], text)
    except TemplateError as error:
        raise InvalidInput(f"campaign template is invalid: {error}", f"campaign.{error.part}") from None
    return campaign["subject"], campaign["html"], text


def _parse_round(body: dict[str, Any]) -> int:
    value = body.get("round", 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"round must be an integer of 0 or more, got {value!r}", "round")
    return value


def _parse_job(index: int, job: Any) -> Job:
    where = f"jobs[{index}]"
    if not isinstance(job, dict):
        raise InvalidInput(f"{where} must be an object with id and contact", where)
    if not _is_positive_int(job.get("id")):
        raise InvalidInput(f"{where}.id must be a positive integer, got {job.get('id')!r}", f"{where}.id")
    contact = job.get("contact")
    if not isinstance(contact, dict):
        raise InvalidInput(f"{where}.contact must be an object with at least an email", f"{where}.contact")
    email = contact.get("email")
    if not isinstance(email, str) or not email.strip():
        raise InvalidInput(
            f"{where}.contact.email is missing; every job needs the contact's address", f"{where}.contact.email"
        )
    attributes = contact.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise InvalidInput(f"{where}.contact.attributes must be an object or null", f"{where}.contact.attributes")
    return Job(id=job["id"], contact=contact)


def parse_chunk(campaign_id: int, body: Any) -> Chunk:
    """Validate a chunk for campaign `campaign_id` of the URL.

    Raises InvalidInput naming the first invalid field. These are invalid: a
    campaign that does not match the URL, a template that does not compile
    and a round that is not an integer of 0 or more. So are more than
    MAX_JOBS_PER_CHUNK jobs, a job id that is not a positive integer or
    occurs twice, and a contact without an email address.
    """
    if not _is_positive_int(campaign_id):
        raise InvalidInput(f"campaign id must be a positive integer, got {campaign_id}")
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object with campaign and jobs")
    subject, html, text = _parse_campaign(campaign_id, body.get("campaign"))
    dispatch_round = _parse_round(body)

    jobs = body.get("jobs")
    if not isinstance(jobs, list):
        raise InvalidInput("jobs must be a list of jobs", "jobs")
    if len(jobs) > MAX_JOBS_PER_CHUNK:
        raise InvalidInput(
            f"too many jobs: {len(jobs)}; a chunk may contain at most {MAX_JOBS_PER_CHUNK}, so send smaller chunks",
            "jobs",
        )
    parsed = [_parse_job(index, job) for index, job in enumerate(jobs)]

    # Queueing drops every job at or below the highest id queued so far in
    # the round, so the jobs must be queued in ascending id order.
    parsed.sort(key=lambda job: job.id)
    for previous, job in zip(parsed, parsed[1:]):
        if previous.id == job.id:
            raise InvalidInput(f"job id {job.id} occurs twice in the chunk", "jobs")
    return Chunk(campaign_id=campaign_id, subject=subject, html=html, text=text, jobs=parsed, round=dispatch_round)
