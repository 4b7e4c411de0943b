"""HTTP API of email_client: queue chunks of jobs, pause, resume and cancel
campaigns, read and change settings, health check.

Every response is JSON. Every endpoint except the health check takes only
requests that web signed with the service secret (see common.signing). Any
other request gets a 401 with `{"error": ...}` that names the problem. Invalid
input gets a 400 with `{"error": ...}`, plus `field` when one field is at
fault. Pausing or resuming a cancelled campaign gets a 409. An unreachable
Redis gets a 503.
"""

import json
import logging
import time
from http import HTTPStatus
from typing import Any, Callable

import redis.asyncio as redis
import tornado.web

from common import signing
from common.config import Config
from email_client.campaigns import CANCELLED, PAUSED, SENDING, CampaignCancelled, Campaigns
from email_client.chunks import parse_chunk
from email_client.credentials import CredentialsCipher
from email_client.errors import InvalidInput
from email_client.keys import Keys
from email_client.queues import Queues
from email_client.redis_guard import UNAVAILABLE
from email_client.settings_store import SettingsStore, validate_changes

log = logging.getLogger(__name__)


class JsonHandler(tornado.web.RequestHandler):
    #: Whether the handler takes only requests signed with the service secret.
    signed = True

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")

    async def prepare(self) -> None:
        if self.signed:
            await self.check_signature()

    async def check_signature(self) -> bool:
        """Return True for a request signed by web; else respond 401, naming the problem, and return False."""
        request = self.request
        try:
            signed = signing.check(
                self.settings["service_secret"], request.method, request.uri, request.body, request.headers
            )
            if not await remember_nonce(self.settings["redis"], self.settings["keys"], signed):
                raise signing.SignatureError(signing.REPLAYED)
        except signing.SignatureError as error:
            log.warning("%s %s rejected with 401: %s", request.method, request.path, error)
            self.send_json(401, {"error": str(error)})
            return False
        return True

    def json_body(self) -> Any:
        """Return the decoded request body; raise InvalidInput if it is not JSON."""
        try:
            return json.loads(self.request.body or b"null")
        except (UnicodeDecodeError, ValueError) as error:
            raise InvalidInput(f"the request body is not valid JSON: {error}") from None

    def send_json(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.finish(json.dumps(body, ensure_ascii=False))

    def reject(self, error: InvalidInput) -> None:
        log.info("%s %s rejected: %s", self.request.method, self.request.path, error.message)
        self.send_json(400, error.as_json())

    def log_exception(self, typ, value, tb) -> None:
        # An unavailable Redis is an outage, not a bug: one line without a traceback.
        if isinstance(value, UNAVAILABLE):
            log.warning(
                "%s %s: Redis is unavailable: %s; responded 503", self.request.method, self.request.path, value
            )
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        if isinstance(error, UNAVAILABLE):
            self.send_json(503, {"error": f"Redis is unavailable: {error}; try again later"})
            return
        if isinstance(error, tornado.web.HTTPError) and status_code < 500:
            message = HTTPStatus(status_code).phrase
        else:
            message = "internal error; see the email_client log"
        self.send_json(status_code, {"error": message})


class JobsHandler(JsonHandler):
    def initialize(self, queues: Queues, on_jobs_queued: Callable[[], None]) -> None:
        self.queues = queues
        self.on_jobs_queued = on_jobs_queued

    async def post(self, campaign_id: str) -> None:
        """Queue a chunk of jobs; respond 202 with how many were queued and ignored, and the backlog."""
        try:
            chunk = parse_chunk(int(campaign_id), self.json_body())
        except InvalidInput as error:
            self.reject(error)
            return
        outcome = await self.queues.queue_chunk(chunk)
        if outcome.queued:
            self.on_jobs_queued()
        ignored = len(chunk.jobs) - outcome.queued
        log.info(
            "campaign %d round %d: queued %d jobs, ignored %d queued before or cancelled; backlog %d",
            chunk.campaign_id, chunk.round, outcome.queued, ignored, outcome.backlog,
        )
        self.send_json(202, {"queued": outcome.queued, "ignored": ignored, "backlog": outcome.backlog})


class CampaignActionHandler(JsonHandler):
    """POST /api/v1/campaigns/{id}/pause, /resume or /cancel; each may be repeated."""

    def initialize(self, campaigns: Campaigns, on_campaign_stopped: Callable[[int], None]) -> None:
        self.campaigns = campaigns
        self.on_campaign_stopped = on_campaign_stopped

    async def post(self, campaign_id: str, action: str) -> None:
        number = int(campaign_id)
        if number < 1:
            self.reject(InvalidInput(f"campaign id must be a positive integer, got {campaign_id}"))
            return
        try:
            if action == "pause":
                await self.campaigns.pause(number, "paused by a user")
                body = {"status": PAUSED}
            elif action == "resume":
                await self.campaigns.resume(number)
                body = {"status": SENDING}
            else:
                body = {"status": CANCELLED, "dropped": await self.campaigns.cancel(number)}
        except CampaignCancelled as error:
            log.info("%s %s rejected: %s", self.request.method, self.request.path, error)
            self.send_json(409, {"error": str(error), "status": CANCELLED})
            return
        if action != "resume":
            self.on_campaign_stopped(number)
        self.send_json(200, body)


class SettingsHandler(JsonHandler):
    def initialize(self, settings: SettingsStore) -> None:
        self.settings_store = settings

    async def get(self) -> None:
        settings = await self.settings_store.get()
        self.send_json(200, settings.public())

    async def put(self) -> None:
        """Change the settings in the body; an empty string or null clears one."""
        try:
            changes = validate_changes(self.json_body())
        except InvalidInput as error:
            self.reject(error)
            return
        settings = await self.settings_store.update(changes)
        log.info("settings changed: %s", ", ".join(sorted(changes)) or "none")
        self.send_json(200, settings.public())


class HealthHandler(JsonHandler):
    signed = False

    def initialize(self, client: redis.Redis) -> None:
        self.redis = client

    async def get(self) -> None:
        await self.redis.ping()
        self.send_json(200, {"status": "ok"})


class NotFoundHandler(JsonHandler):
    async def prepare(self) -> None:
        if await self.check_signature():
            self.send_json(404, {"error": f"no such endpoint: {self.request.method} {self.request.path}"})


async def remember_nonce(client: redis.Redis, keys: Keys, signed: signing.SignedRequest) -> bool:
    """Store the request's nonce until its timestamp leaves the window; return False if it was stored already."""
    seconds_left = max(1, signed.nonce_expires_at - int(time.time()) + 1)
    return bool(await client.set(keys.request_nonce(signed.nonce), "1", nx=True, ex=seconds_left))


def make_app(config: Config, client: redis.Redis, service_secret: bytes, cipher: CredentialsCipher,
             on_jobs_queued: Callable[[], None] = lambda: None,
             on_campaign_stopped: Callable[[int], None] = lambda campaign_id: None) -> tornado.web.Application:
    """Build the HTTP application on `client`, with keys under `config.redis_prefix`.

    Requests must be signed with `service_secret`; `cipher` encrypts the stored gateway credentials.
    The callbacks tell this process's worker at once what it would otherwise find out later in
    Redis: `on_jobs_queued` after a chunk added jobs, `on_campaign_stopped` after a pause or cancel.
    """
    keys = Keys(config.redis_prefix)
    jobs = {"queues": Queues(client, keys), "on_jobs_queued": on_jobs_queued}
    actions = {"campaigns": Campaigns(client, keys), "on_campaign_stopped": on_campaign_stopped}
    return tornado.web.Application(
        [
            (r"/api/v1/campaigns/([0-9]+)/jobs", JobsHandler, jobs),
            (
                r"/api/v1/campaigns/([0-9]+)/(pause|resume|cancel)",
                CampaignActionHandler,
                actions,
            ),
            (r"/api/v1/settings", SettingsHandler, {"settings": SettingsStore(client, keys, cipher)}),
            (r"/healthz", HealthHandler, {"client": client}),
        ],
        default_handler_class=NotFoundHandler,
        service_secret=service_secret,
        redis=client,
        keys=keys,
    )
