"""Peers and helpers for the email_client tests.

`FakeGateway` and `FakeWeb` are small Tornado apps on 127.0.0.1 that play the
gateway and web with scripted responses and record what they receive. Like
web, `FakeWeb` takes only results signed with the test service secret. Test
modules import the fixtures at the end of this file to use them.
"""

import asyncio
import base64
import inspect
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from common import signing
from email_client.config import load_config
from email_client.service import Service
from tests.service_secrets import SERVICE_SECRET, SignedSession, email_client_secrets


@dataclass
class Answer:
    """A scripted gateway response, sent after `delay` seconds."""

    status: int
    body: dict[str, Any] | None = None
    delay: float = 0.0


@dataclass
class GatewayRequest:
    idempotency_key: str
    username: str | None
    password: str | None
    body: dict[str, Any]


class _Peer:
    """An HTTP server on 127.0.0.1 serving `routes`."""

    def __init__(self, routes: list):
        self._app = tornado.web.Application(routes)
        self._server: tornado.httpserver.HTTPServer | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on a free port, or on the port used before after a `stop`."""
        sockets = tornado.netutil.bind_sockets(self.port or 0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._server = tornado.httpserver.HTTPServer(self._app)
        self._server.add_sockets(sockets)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None


class _MessagesHandler(tornado.web.RequestHandler):
    def initialize(self, gateway: "FakeGateway") -> None:
        self.gateway = gateway

    async def post(self) -> None:
        self.gateway.in_flight += 1
        self.gateway.max_in_flight = max(self.gateway.max_in_flight, self.gateway.in_flight)
        try:
            await self._answer()
        finally:
            self.gateway.in_flight -= 1

    async def _answer(self) -> None:
        gateway = self.gateway
        body = json.loads(self.request.body)
        username = password = None
        authorization = self.request.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            username, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        key = self.request.headers.get("Idempotency-Key", "")
        gateway.requests.append(GatewayRequest(key, username, password, body))

        await gateway.released.wait()
        script = gateway.scripts.get(body["to"]["email"])
        answer = script.pop(0) if script else Answer(202)
        await asyncio.sleep(answer.delay)
        self.set_status(answer.status)
        if answer.body is not None:
            self.finish(answer.body)
        elif answer.status == 202:
            message_id = gateway.accepted.setdefault(key, f"msg_{next(gateway.message_numbers)}")
            self.finish({"message_id": message_id})
        else:
            self.finish({"error": f"scripted answer {answer.status}"})


class FakeGateway(_Peer):
    """The gateway API of docs/architecture.md, responding 202 unless scripted otherwise."""

    def __init__(self):
        super().__init__([(r"/v1/messages", _MessagesHandler, {"gateway": self})])
        self.requests: list[GatewayRequest] = []
        self.scripts: dict[str, list[Answer]] = {}
        self.accepted: dict[str, str] = {}
        self.message_numbers = itertools.count(1)
        self.in_flight = 0
        self.max_in_flight = 0
        # Cleared to hold every request until it is set again.
        self.released = asyncio.Event()
        self.released.set()

    def script(self, email: str, *answers: Answer) -> None:
        """Respond to the next requests for recipient `email` with `answers`, in order."""
        self.scripts[email] = list(answers)

    def keys(self) -> list[str]:
        return [request.idempotency_key for request in self.requests]


class _ResultsHandler(tornado.web.RequestHandler):
    def initialize(self, web: "FakeWeb") -> None:
        self.web = web

    async def post(self) -> None:
        try:
            signed = signing.check(SERVICE_SECRET.encode(), self.request.method, self.request.uri,
                                   self.request.body, self.request.headers)
            if signed.nonce in self.web.nonces:
                raise signing.SignatureError(signing.REPLAYED)
        except signing.SignatureError as error:
            self.web.rejected.append(str(error))
            self.set_status(401)
            self.finish({"error": str(error)})
            return
        self.web.nonces.add(signed.nonce)
        self.web.posts += 1
        body = json.loads(self.request.body)
        self.web.batch_sizes.append(len(body["results"]))
        if self.web.unavailable_posts > 0:
            self.web.unavailable_posts -= 1
            self.set_status(503)
            self.finish({"error": "scripted outage"})
            return
        # Recorded before the delay, as web commits a batch before it responds.
        self.web.results.extend(body["results"])
        self.web.events.extend(body.get("events", []))
        self.web.posts_in_progress += 1
        try:
            await asyncio.sleep(self.web.response_delay)
        finally:
            self.web.posts_in_progress -= 1
        self.finish({"updated": len(body["results"])})


class FakeWeb(_Peer):
    """web's job-results endpoint, recording every result and event it takes, and every post it rejects."""

    def __init__(self):
        super().__init__([(r"/api/v1/internal/job-results", _ResultsHandler, {"web": self})])
        self.results: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.posts = 0
        self.batch_sizes: list[int] = []
        # Nonces of the signed posts taken, and the errors of the posts rejected for their signature.
        self.nonces: set[str] = set()
        self.rejected: list[str] = []
        # Number of posts that still get a 503 response.
        self.unavailable_posts = 0
        # Seconds between taking a batch and responding, and the posts taken
        # and not yet responded to.
        self.response_delay = 0.0
        self.posts_in_progress = 0

    def final_results(self) -> list[dict[str, Any]]:
        return [result for result in self.results if result["status"] in ("sent", "failed")]

    def final_job_ids(self, campaign_id: int | None = None) -> set[int]:
        """Return the ids of the jobs with a final result, of one campaign or of all."""
        return {
            result["job_id"] for result in self.final_results()
            if campaign_id is None or result["campaign_id"] == campaign_id
        }

    def results_of(self, job_id: int) -> list[dict[str, Any]]:
        return [result for result in self.results if result["job_id"] == job_id]


@dataclass
class ChunkBuilder:
    """Builds chunk bodies for one campaign."""

    campaign_id: int = 7
    subject: str = "Hello {{ first_name }}"
    html: str = "<p>Hi {{ first_name }} from {{ city | default('nowhere') }}</p>"
    text: str | None = "Hi {{ first_name }}"
    attributes: dict[str, Any] = field(default_factory=dict)

    def contact(self, job_id: int) -> dict[str, Any]:
        return {
            "id": 1000 + job_id,
            "email": f"contact{job_id}@example.com",
            "name": f"Contact {job_id}",
            "first_name": f"First{job_id}",
            "last_name": "Last",
            "attributes": dict(self.attributes),
        }

    def chunk(self, job_ids, contacts: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
        contacts = contacts or {}
        return {
            "campaign": {"id": self.campaign_id, "subject": self.subject, "html": self.html, "text": self.text},
            "jobs": [{"id": job_id, "contact": contacts.get(job_id) or self.contact(job_id)} for job_id in job_ids],
        }


def service_environ(redis_url: str, gateway: FakeGateway, web: FakeWeb, **settings: Any) -> dict[str, str]:
    """Return environment variables for an email_client on a free port talking to the fakes."""
    environ = {
        "REDIS_URL": redis_url,
        "EMAIL_CLIENT_PORT": "0",
        "EMAIL_CLIENT_WEB_URL": web.url,
        "EMAIL_CLIENT_GATEWAY_URL": gateway.url,
        "EMAIL_CLIENT_RETRY_BASE_DELAY": "0.01",
        "EMAIL_CLIENT_RETRY_MAX_DELAY": "0.05",
        "EMAIL_CLIENT_MAX_ATTEMPTS": "3",
        "EMAIL_CLIENT_CONSUMER_NAME": "test-consumer",
        "EMAIL_CLIENT_REDIS_PREFIX": "test:",
        **email_client_secrets(),
    }
    for name, value in settings.items():
        environ[f"EMAIL_CLIENT_{name.upper()}"] = str(value)
    return environ


def service_config(redis_url: str, gateway: FakeGateway, web: FakeWeb, **settings: Any):
    return load_config(service_environ(redis_url, gateway, web, **settings))


async def wait_until(condition: Callable[[], Any], what: str, timeout: float = 15.0) -> None:
    """Poll `condition`, a function or coroutine function, until it returns a true value.

    Fails the test naming `what` after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        outcome = condition()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def fake_gateway():
    gateway = FakeGateway()
    await gateway.start()
    yield gateway
    gateway.released.set()
    await gateway.stop()


@pytest.fixture
async def fake_web():
    web = FakeWeb()
    await web.start()
    yield web
    await web.stop()


@pytest.fixture
async def http():
    """An HTTP client that signs its requests with the test service secret, as web does."""
    async with aiohttp.ClientSession() as session:
        yield SignedSession(session)


@pytest.fixture
async def start_service(redis_url, fake_gateway, fake_web):
    """Return a function that starts an in-process email_client with settings overridden."""
    services: list[Service] = []

    async def start(**settings: Any) -> Service:
        service = Service(service_config(redis_url, fake_gateway, fake_web, **settings))
        await service.start()
        services.append(service)
        return service

    yield start
    fake_gateway.released.set()
    for service in services:
        await service.stop(grace=1.0)
