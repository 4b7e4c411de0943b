"""All parts of email_client in one object: HTTP server, send loop and reporter.

`python -m email_client` runs one `Service`; tests and `python -m stack` can
run it in their own event loop the same way.
"""

import asyncio
import logging

import redis.asyncio as redis
import tornado.httpserver
import tornado.netutil

from common import signing
from common.config import Config
from email_client.app import make_app
from email_client.campaigns import Campaigns
from email_client.credentials import CredentialsCipher, load_key
from email_client.gateway import Gateway, HttpGateway
from email_client.keys import Keys
from email_client.limiter import RateLimiter
from email_client.queues import Queues
from email_client.redis_guard import RedisGuard
from email_client.reporter import Reporter
from email_client.sender import JobSender
from email_client.settings_store import SettingsStore
from email_client.worker import Worker

log = logging.getLogger(__name__)

# Seconds that sends in flight get to finish when the service stops.
STOP_GRACE = 10.0


class Service:
    """email_client on one event loop; call `start`, then `stop` once.

    `gateway` replaces the HTTP gateway adapter, such as with an SMTP one.
    Raises ConfigError when the service secret or the credentials key is
    missing or invalid.
    """

    def __init__(self, config: Config, gateway: Gateway | None = None):
        self.config = config
        self._service_secret = signing.service_secret(config, "email_client")
        self._cipher = CredentialsCipher(load_key(config))

        self.redis = redis.Redis.from_url(config.redis_url, decode_responses=True)
        self.gateway = gateway or HttpGateway(config.gateway_url, config.gateway_timeout)
        keys = Keys(config.redis_prefix)
        # One guard for the whole process, so that a Redis outage is logged once.
        guard = RedisGuard()
        self._settings = SettingsStore(self.redis, keys, self._cipher)
        self._sender = JobSender(
            Queues(self.redis, keys),
            Campaigns(self.redis, keys),
            self._settings,
            self.gateway,
            RateLimiter(self.redis, keys, config.rate_limit, guard),
            guard,
            max_attempts=config.max_attempts,
            retry_base_delay=config.retry_base_delay,
            retry_max_delay=config.retry_max_delay,
            pause_after_refusals=config.pause_after_refusals,
        )
        self.worker = Worker(
            self.redis, keys, self._sender, guard,
            concurrency=config.concurrency,
            consumer=config.consumer_name,
            claim_idle=config.claim_idle_seconds,
        )
        self.reporter = Reporter(
            self.redis, keys, guard,
            web_url=config.web_url,
            service_secret=self._service_secret,
            batch_size=config.report_batch_size,
            consumer=config.consumer_name,
            claim_idle=config.claim_idle_seconds,
        )
        self._server: tornado.httpserver.HTTPServer | None = None
        self._stopped = False
        self.port: int | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP API, once started."""
        return f"http://{self.config.host}:{self.port}"

    async def start(self) -> None:
        """Listen on `host`:`port` and start sending and reporting.

        Raises redis.exceptions.RedisError if Redis is unreachable and OSError
        if the address is taken.
        """
        await self.redis.ping()
        if await self._settings.encrypt_plaintext_credentials():
            log.info("encrypted the gateway credentials that an earlier version stored in plain text")
        await self.worker.start()
        await self.reporter.start()
        sockets = tornado.netutil.bind_sockets(self.config.port, self.config.host)
        self.port = sockets[0].getsockname()[1]
        app = make_app(self.config, self.redis, self._service_secret, self._cipher,
                       on_jobs_queued=self.worker.wake, on_campaign_stopped=self._sender.forget_status)
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)
        log.info(
            "email_client listening on %s as consumer %r, up to %d sends in flight, rate limit %s",
            self.url, self.config.consumer_name, self.config.concurrency,
            f"{self.config.rate_limit} per second" if self.config.rate_limit else "none",
        )

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop taking requests and reading jobs, give sends in flight `grace` seconds, close connections.

        Calling it again does nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
        await asyncio.gather(self.worker.stop(grace), self.reporter.stop())
        await self._sender.stop()
        await self.gateway.close()
        await self.redis.aclose()
        log.info("email_client stopped")
