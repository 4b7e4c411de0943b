"""HTTP routes of the mock gateway.

`POST /v1/messages` is the gateway API that email_client sends to. The other
routes let tests and demos look inside: `GET /messages`, `GET /messages/{id}`,
`GET /stats`, `POST /reset`, `GET /` (an HTML page) and `GET /healthz`.
Every error response is JSON, `{"error": "..."}`.
"""

import base64
import binascii
import json
import logging
from pathlib import Path
from typing import Any

import jinja2
import tornado.web
from tornado import httputil

from common.config import Config
from mock_gateway.gateway import Gateway
from mock_gateway.outcomes import OutcomeDraw, parse_outcomes
from mock_gateway.store import MessageStore
from mock_gateway.validation import InvalidMessage, parse_message

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

_pages = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


class ApiError(tornado.web.HTTPError):
    """An error response: `status`, `headers` and the body `{"error": message, **extra}`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(status)
        self.message = message
        self.headers = headers or {}
        self.extra = extra


class BaseHandler(tornado.web.RequestHandler):
    def initialize(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def write_json(self, status: int, body: dict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, ApiError):
            # Tornado clears the headers before write_error, so they are set here.
            for name, value in error.headers.items():
                self.set_header(name, value)
            body = {"error": error.message, **error.extra}
        elif status_code >= 500:
            # The traceback is already logged by Tornado; the client gets no detail.
            body = {"error": "internal error of the mock gateway; see its log"}
        else:
            body = {"error": httputil.responses.get(status_code, "request failed").lower()}
        self.write_json(status_code, body)

    def int_argument(self, name: str, default: int, minimum: int, maximum: int) -> int:
        """Return query argument `name` as an int, or raise ApiError(400) saying what is allowed."""
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not minimum <= value <= maximum:
            raise ApiError(400, f"{name} must be an integer from {minimum} to {maximum}, got {raw!r}")
        return value


class SendHandler(BaseHandler):
    """POST /v1/messages: accept or reject one message."""

    async def post(self) -> None:
        self._check_basic_auth()
        idempotency_key = self.request.headers.get("Idempotency-Key", "").strip()
        if not idempotency_key:
            raise ApiError(400, "Idempotency-Key header is missing; send a unique key per message")
        try:
            message = parse_message(self.request.body)
        except InvalidMessage as error:
            extra = {"field": error.field} if error.field else {}
            raise ApiError(400, str(error), **extra) from None

        result = await self.gateway.send(idempotency_key, message)
        self.write_json(result.status, result.body)

    def _check_basic_auth(self) -> None:
        """Raise ApiError(401) unless the request carries basic auth; any credentials pass."""
        scheme, _, encoded = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                credentials = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                credentials = ""
            if ":" in credentials:
                return
        raise ApiError(
            401,
            "authentication required: send HTTP basic auth with a username and password",
            headers={"WWW-Authenticate": 'Basic realm="mock_gateway"'},
        )


class MessageListHandler(BaseHandler):
    """GET /messages: stored messages, newest first."""

    def get(self) -> None:
        limit = self.int_argument("limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        offset = self.int_argument("offset", 0, 0, 2**31)
        store = self.gateway.store
        items = [stored.summary() for stored in store.latest(limit, offset)]
        self.write_json(200, {"items": items, "total": len(store)})


class MessageHandler(BaseHandler):
    """GET /messages/{message_id}: one stored message with its bodies."""

    def get(self, message_id: str) -> None:
        stored = self.gateway.store.get(message_id)
        if stored is None:
            raise ApiError(404, f"message {message_id} not found; it was never accepted or was dropped or reset")
        self.write_json(200, stored.detail())


class PageHandler(BaseHandler):
    """GET /: the latest messages and the counts, as HTML."""

    def get(self) -> None:
        store = self.gateway.store
        page = _pages.get_template("index.html").render(
            messages=store.latest(DEFAULT_PAGE_SIZE),
            stored=len(store),
            stats=store.stats(),
        )
        self.set_header("Content-Type", "text/html; charset=utf-8")
        # The page has no script, and this keeps any that slips into a message from running.
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.finish(page)


class StatsHandler(BaseHandler):
    def get(self) -> None:
        self.write_json(200, self.gateway.store.stats())


class ResetHandler(BaseHandler):
    """POST /reset: forget every message, idempotency key and count."""

    def post(self) -> None:
        self.gateway.store.reset()
        log.info("store reset")
        self.write_json(200, {"status": "ok"})


class HealthHandler(BaseHandler):
    def get(self) -> None:
        self.write_json(200, {"status": "ok"})


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        raise ApiError(404, f"no route {self.request.path}; see docs/architecture.md for the gateway API")


def _log_request(handler: tornado.web.RequestHandler) -> None:
    # Simulated rejections are the point of this service, so every request is
    # logged at debug; unexpected errors are logged by Tornado with a traceback.
    log.debug(
        "%d %s %s %.1fms",
        handler.get_status(),
        handler.request.method,
        handler.request.path,
        1000 * handler.request.request_time(),
    )


def make_app(config: Config) -> tornado.web.Application:
    """Build the application for checked settings (see mock_gateway.config)."""
    store = MessageStore(config.max_stored_messages)
    draw = OutcomeDraw(parse_outcomes(config.outcomes), config.seed)
    dependencies = {"gateway": Gateway(store, draw, config.latency_ms)}
    routes = [
        (r"/v1/messages", SendHandler),
        (r"/messages", MessageListHandler),
        (r"/messages/([^/]+)", MessageHandler),
        (r"/stats", StatsHandler),
        (r"/reset", ResetHandler),
        (r"/healthz", HealthHandler),
        (r"/", PageHandler),
    ]
    return tornado.web.Application(
        [(pattern, handler, dependencies) for pattern, handler in routes],
        default_handler_class=NotFoundHandler,
        default_handler_args=dependencies,
        log_function=_log_request,
    )
