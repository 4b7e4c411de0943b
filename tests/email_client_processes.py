"""Real processes for the email_client fault and scale-out tests, and the checks they share.

`MockGateway` runs `python -m mock_gateway` and `EmailClient` runs
`python -m email_client`, both on 127.0.0.1; the `processes` fixture stops
every one of them after the test. `check_every_job_final_once` states the
product's promise for a finished campaign.
"""

import asyncio
import json
import os
import signal
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from email_client_peers import ChunkBuilder, FakeWeb, wait_until
from tests.processes import free_port, start_service, stop_service
from tests.service_secrets import email_client_secrets

PREFIX = "test:"
SETTINGS = {
    "from_name": "Postmill News",
    "from_email": "news@example.com",
    "gateway_username": "postmill",
    "gateway_password": "process-pa55word",
}


class MockGateway:
    """`python -m mock_gateway` on a fixed port, so that it can be replaced by one with other outcomes."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self._log_dir = log_dir
        self._process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, outcomes: dict[str, float] | None = None, latency_ms: int = 0, seed: int = 1) -> None:
        """Start it; `outcomes` None keeps the mix of config/mock_gateway.json."""
        env = {"MOCK_GATEWAY_PORT": str(self.port), "MOCK_GATEWAY_LATENCY_MS": str(latency_ms),
               "MOCK_GATEWAY_SEED": str(seed)}
        if outcomes is not None:
            env["MOCK_GATEWAY_OUTCOMES"] = json.dumps(outcomes)
        log_path = self._log_dir / f"mock_gateway-{self.port}.log"
        self._process = await asyncio.to_thread(start_service, "mock_gateway", env, self.port, log_path)

    async def stop(self) -> None:
        if self._process is not None:
            await asyncio.to_thread(stop_service, self._process)
            self._process = None

    async def stats(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(f"{self.url}/stats") as response:
            return await response.json()

    async def accepted(self, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
        """Return every accepted message, oldest first."""
        messages: list[dict[str, Any]] = []
        while True:
            async with http.get(f"{self.url}/messages", params={"limit": 1000, "offset": len(messages)}) as response:
                page = await response.json()
            messages.extend(page["items"])
            if not page["items"] or len(messages) >= page["total"]:
                return list(reversed(messages))


class EmailClient:
    """`python -m email_client` talking to `gateway` and `web`, with EMAIL_CLIENT_* `settings`."""

    def __init__(self, log_dir: Path, redis_url: str, gateway_url: str, web: FakeWeb, **settings: Any):
        self.port = free_port()
        self.log_path = log_dir / f"email_client-{self.port}.log"
        self._env = {
            "REDIS_URL": redis_url,
            "EMAIL_CLIENT_PORT": str(self.port),
            "EMAIL_CLIENT_WEB_URL": web.url,
            "EMAIL_CLIENT_GATEWAY_URL": gateway_url,
            "EMAIL_CLIENT_REDIS_PREFIX": PREFIX,
            "EMAIL_CLIENT_RETRY_BASE_DELAY": "0.01",
            "EMAIL_CLIENT_RETRY_MAX_DELAY": "0.05",
            "EMAIL_CLIENT_LOG_LEVEL": "DEBUG",
            **email_client_secrets(),
        }
        for name, value in settings.items():
            self._env[f"EMAIL_CLIENT_{name.upper()}"] = str(value)
        self._process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, **settings: Any) -> None:
        """Start it, on the same port as before if it ran already, with `settings` changed."""
        for name, value in settings.items():
            self._env[f"EMAIL_CLIENT_{name.upper()}"] = str(value)
        self._process = await asyncio.to_thread(start_service, "email_client", self._env, self.port, self.log_path)

    def kill(self) -> None:
        """Kill it with SIGKILL, as a crash would, and wait until it is gone."""
        os.kill(self._process.pid, signal.SIGKILL)
        self._process.wait()

    async def stop(self) -> None:
        if self._process is not None:
            await asyncio.to_thread(stop_service, self._process)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


class Processes:
    """Starts processes for one test and stops them all at its end."""

    def __init__(self, log_dir: Path, redis_url: str):
        self.log_dir = log_dir
        self.redis_url = redis_url
        self._started: list[MockGateway | EmailClient] = []

    async def gateway(self, **options: Any) -> MockGateway:
        gateway = MockGateway(self.log_dir)
        await gateway.start(**options)
        self._started.append(gateway)
        return gateway

    async def email_client(self, gateway_url: str, web: FakeWeb, redis_url: str | None = None,
                           **settings: Any) -> EmailClient:
        client = EmailClient(self.log_dir, redis_url or self.redis_url, gateway_url, web, **settings)
        await client.start()
        self._started.append(client)
        return client

    async def stop_all(self) -> None:
        for process in reversed(self._started):
            await process.stop()


@pytest.fixture
async def processes(tmp_path, redis_url):
    started = Processes(tmp_path, redis_url)
    yield started
    await started.stop_all()


async def configure(http: aiohttp.ClientSession, client: EmailClient, **changes: Any) -> None:
    async with http.put(f"{client.url}/api/v1/settings", json={**SETTINGS, **changes}) as response:
        assert response.status == 200, await response.text()


async def post_chunk(http: aiohttp.ClientSession, base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    campaign_id = body["campaign"]["id"]
    async with http.post(f"{base_url}/api/v1/campaigns/{campaign_id}/jobs", json=body) as response:
        assert response.status == 202, await response.text()
        return await response.json()


async def campaign_action(http: aiohttp.ClientSession, base_url: str, campaign_id: int, action: str):
    """POST pause, resume or cancel; return the status code and the JSON body."""
    async with http.post(f"{base_url}/api/v1/campaigns/{campaign_id}/{action}") as response:
        return response.status, await response.json()


async def queue_jobs(http, base_url: str, job_ids, campaign_id: int = 7, chunk_size: int = 100) -> None:
    builder = ChunkBuilder(campaign_id=campaign_id)
    job_ids = list(job_ids)
    for start in range(0, len(job_ids), chunk_size):
        await post_chunk(http, base_url, builder.chunk(job_ids[start:start + chunk_size]))


async def wait_for_finals(web: FakeWeb, count: int, timeout: float = 60.0, campaign_id: int | None = None) -> None:
    await wait_until(lambda: len(web.final_job_ids(campaign_id)) >= count, f"{count} jobs with a final result",
                     timeout=timeout)


async def check_every_job_final_once(web: FakeWeb, gateway: MockGateway, http, job_ids, campaign_id: int = 7):
    """Check the promise for a finished campaign; return the final results by job id.

    Every job has exactly one final result. A batch that web took but that a
    crash kept from being acknowledged is posted again, so the same result
    may arrive twice, but never a different one. Sent + failed equals the
    jobs, the gateway accepted each sent job once, and each sent result
    carries the message id that the gateway accepted.
    """
    finals: dict[int, set[tuple]] = defaultdict(set)
    for result in web.final_results():
        if result["campaign_id"] == campaign_id:
            finals[result["job_id"]].add((result["status"], result["message_id"], result["attempt"], result["error"]))
    assert sorted(finals) == sorted(job_ids)
    different = {job_id: outcomes for job_id, outcomes in finals.items() if len(outcomes) != 1}
    assert different == {}, "jobs with more than one final result"

    outcome = {job_id: next(iter(outcomes)) for job_id, outcomes in finals.items()}
    sent = {job_id for job_id, (status, *_) in outcome.items() if status == "sent"}
    failed = {job_id for job_id, (status, *_) in outcome.items() if status == "failed"}
    assert len(sent) + len(failed) == len(job_ids)

    accepted = [message for message in await gateway.accepted(http)
                if message["idempotency_key"].startswith(f"postmill-{campaign_id}-")]
    keys = [message["idempotency_key"] for message in accepted]
    recipients = [message["to"]["email"] for message in accepted]
    assert len(set(keys)) == len(keys)
    assert len(set(recipients)) == len(recipients), "an email was accepted twice under different keys"
    assert sorted(keys) == sorted(f"postmill-{campaign_id}-{job_id}" for job_id in sent)
    accepted_ids = {message["idempotency_key"]: message["message_id"] for message in accepted}
    for job_id in sent:
        assert outcome[job_id][1] == accepted_ids[f"postmill-{campaign_id}-{job_id}"]
    return outcome
