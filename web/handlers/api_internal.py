"""JSON API used by email_client: the job results and campaign events it reports.

email_client signs each request with the service secret (see common.signing).
A request that is unsigned, wrongly signed, too old or replayed gets a 401 and
changes nothing.
"""

import logging

from common import signing
from web import validation
from web.errors import InvalidInput, Unauthenticated
from web.handlers.base import Access, ApiHandler
from web.repositories import dispatch, nonces

log = logging.getLogger(__name__)

RESULT_STATUSES = {"sent", "failed", "retrying"}
MAX_RESULTS_PER_BATCH = 10_000
MAX_ERROR_LENGTH = 2000


def _result(item, position: int) -> dict:
    if not isinstance(item, dict):
        raise InvalidInput(f"results[{position}] must be an object", field="results")
    status = item.get("status")
    if status not in RESULT_STATUSES:
        raise InvalidInput(f"results[{position}].status must be one of sent, failed, retrying", field="results")
    attempt = item.get("attempt", 1)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise InvalidInput(f"results[{position}].attempt must be a non-negative integer", field="results")
    error = item.get("error")
    message_id = item.get("message_id")
    if error is not None and not isinstance(error, str) or message_id is not None and not isinstance(message_id, str):
        raise InvalidInput(f"results[{position}]: error and message_id must be strings or null", field="results")
    return {
        "job_id": validation.positive_id(item.get("job_id"), f"results[{position}].job_id"),
        "campaign_id": validation.positive_id(item.get("campaign_id"), f"results[{position}].campaign_id"),
        "status": status,
        "attempt": attempt,
        "message_id": message_id[:200] if message_id else None,
        "error": error[:MAX_ERROR_LENGTH] if error else None,
    }


def latest_per_job(results: list[dict]) -> list[dict]:
    """Keep one result per job: a final one (sent or failed) over `retrying`, else the last."""
    chosen: dict[int, dict] = {}
    for result in results:
        current = chosen.get(result["job_id"])
        if current is None or current["status"] == "retrying":
            chosen[result["job_id"]] = result
    return list(chosen.values())


def _event(item, position: int) -> dict:
    if not isinstance(item, dict) or item.get("event") != "paused":
        raise InvalidInput(f'events[{position}] must be an object with "event": "paused"', field="events")
    reason = item.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput(f"events[{position}].reason must be a non-empty string", field="events")
    return {
        "campaign_id": validation.positive_id(item.get("campaign_id"), f"events[{position}].campaign_id"),
        "reason": reason.strip()[:MAX_ERROR_LENGTH],
    }


def _list(data: dict, name: str) -> list:
    items = data.get(name, [])
    if not isinstance(items, list):
        raise InvalidInput(f"{name} must be a list", field=name)
    if len(items) > MAX_RESULTS_PER_BATCH:
        raise InvalidInput(f"send at most {MAX_RESULTS_PER_BATCH} {name} per batch", field=name)
    return items


class JobResultsHandler(ApiHandler):
    """Takes a batch of job outcomes, and campaign events such as a pause, from email_client."""

    # The one endpoint open without a user or a CSRF token, because email_client has neither.
    # Instead, `prepare` lets only requests signed with the service secret through.
    access = Access.INTERNAL

    async def prepare(self):
        await super().prepare()
        await self.check_signature()

    async def check_signature(self) -> None:
        """Raise Unauthenticated unless the request is signed with the service secret and its nonce is new."""
        request = self.request
        try:
            signed = signing.check(self.application.settings["service_secret"], request.method, request.uri,
                                   request.body, request.headers)
        except signing.SignatureError as error:
            raise Unauthenticated(str(error)) from None
        if not await nonces.remember(self.db, signed.nonce, signed.nonce_expires_at):
            raise Unauthenticated(signing.REPLAYED)

    async def post(self):
        data = validation.parse_json_object(self.request.body)
        if "results" not in data:
            raise InvalidInput("results must be a list", field="results")
        results = latest_per_job([_result(item, position) for position, item in enumerate(_list(data, "results"))])
        events = [_event(item, position) for position, item in enumerate(_list(data, "events"))]

        updated, campaign_ids = await dispatch.record_results(self.db, results)
        for event in events:
            if await dispatch.pause_by_email_client(self.db, event["campaign_id"], event["reason"]):
                log.warning("campaign %d: paused by email_client: %s", event["campaign_id"], event["reason"])
        finished = await dispatch.finish_done_campaigns(self.db, campaign_ids)
        for campaign_id in finished:
            log.info("campaign %d: finished", campaign_id)
        self.write_json({"updated": updated})
