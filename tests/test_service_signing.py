"""Signed requests between web and email_client: what each side rejects, and that signed requests pass.

Spoofed requests are built by hand: unsigned, signed with another key, too
old, replayed or changed after signing. Each must get a 401 and change
nothing.
"""

import json
import os
import re
import subprocess
import sys
import time

import aiohttp
import pytest
import redis.asyncio as redis
import tornado.httpserver
import tornado.netutil
from yarl import URL

from common import signing
from common.config import ConfigError
from email_client.app import make_app
from email_client.config import load_config as load_email_client_config
from email_client.credentials import CredentialsCipher, load_key
from email_client.keys import Keys
from email_client_peers import ChunkBuilder, fake_gateway, fake_web, start_service, wait_until  # noqa: F401 (fixtures)
from tests.conftest import COOKIE_SECRET, ApiClient, create_api_token
from tests.processes import REPOSITORY, free_port
from tests.service_secrets import SERVICE_SECRET, SignedSession, email_client_secrets, signed_headers, web_secrets
from web.app import WebService
from web.config import load_config as load_web_config
from web.repositories import nonces

KEYS = Keys("test:")
OTHER_SECRET = "another-service-secret-of-43-characters-xyz"
RESULTS_PATH = "/api/v1/internal/job-results"
# A hex string as long as an HMAC-SHA256: no error message may contain one.
HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")


# The signing module

def test_signed_request_passes_check():
    secret = SERVICE_SECRET.encode()
    headers = signing.sign(secret, "POST", "/api/v1/campaigns/7/jobs?x=1", b'{"jobs": []}')
    signed = signing.check(secret, "POST", "/api/v1/campaigns/7/jobs?x=1", b'{"jobs": []}', headers)
    assert signed.nonce == headers[signing.NONCE_HEADER]
    assert signed.nonce_expires_at == int(headers[signing.TIMESTAMP_HEADER]) + signing.MAX_AGE_SECONDS


def test_each_signature_has_new_nonce():
    first = signing.sign(b"k" * 32, "GET", "/api/v1/settings")
    second = signing.sign(b"k" * 32, "GET", "/api/v1/settings")
    assert first[signing.NONCE_HEADER] != second[signing.NONCE_HEADER]


@pytest.mark.parametrize("change, words", [
    ({"secret": OTHER_SECRET.encode()}, "does not match"),
    ({"method": "PUT"}, "does not match"),
    ({"target": "/api/v1/campaigns/8/jobs"}, "does not match"),
    ({"body": b'{"jobs": [1]}'}, "does not match"),
    ({"clock_offset": signing.MAX_AGE_SECONDS + 5}, "ago"),
    ({"clock_offset": -signing.MAX_AGE_SECONDS - 5}, "in the future"),
])
def test_check_rejects_changed_request(change, words):
    secret = SERVICE_SECRET.encode()
    signed_at = time.time()
    headers = signing.sign(secret, "POST", "/api/v1/campaigns/7/jobs", b'{"jobs": []}', now=signed_at)
    request = {"secret": secret, "method": "POST", "target": "/api/v1/campaigns/7/jobs", "body": b'{"jobs": []}',
               "clock_offset": 0, **change}
    with pytest.raises(signing.SignatureError, match=words) as raised:
        signing.check(request["secret"], request["method"], request["target"], request["body"], headers,
                      now=signed_at + request["clock_offset"])
    assert not HEX_SIGNATURE.search(str(raised.value))


@pytest.mark.parametrize("headers, words", [
    ({}, "not signed"),
    ({signing.TIMESTAMP_HEADER: "1", signing.NONCE_HEADER: "n" * 20}, "X-Postmill-Signature missing"),
    ({signing.TIMESTAMP_HEADER: "soon", signing.NONCE_HEADER: "n" * 20, signing.SIGNATURE_HEADER: "0" * 64},
     "Unix time"),
    ({signing.TIMESTAMP_HEADER: "1", signing.NONCE_HEADER: "short", signing.SIGNATURE_HEADER: "0" * 64}, "16 to 128"),
    ({signing.TIMESTAMP_HEADER: "1", signing.NONCE_HEADER: "n" * 20, signing.SIGNATURE_HEADER: "zz"}, "64 lowercase"),
])
def test_check_rejects_missing_or_malformed_headers(headers, words):
    with pytest.raises(signing.SignatureError, match=words):
        signing.check(b"k" * 32, "GET", "/", b"", headers)


def test_service_secret_from_file(tmp_path):
    path = tmp_path / "service-secret"
    path.write_text("s" * 40 + "\n")
    config = load_web_config({"WEB_SERVICE_SECRET_FILE": str(path)})
    assert signing.service_secret(config, "web") == b"s" * 40
    path.write_text("too short\n")
    with pytest.raises(ConfigError, match="at least 32") as raised:
        signing.service_secret(config, "web")
    assert "too short" not in str(raised.value)
    with pytest.raises(ConfigError, match="set only one"):
        signing.service_secret(load_web_config({"WEB_SERVICE_SECRET_FILE": str(path),
                                                "WEB_SERVICE_SECRET": "t" * 40}), "web")
    with pytest.raises(ConfigError, match="cannot read the service_secret file"):
        signing.service_secret(load_web_config({"WEB_SERVICE_SECRET_FILE": str(tmp_path / "absent")}), "web")
    assert "t" * 40 not in repr(load_web_config({"WEB_SERVICE_SECRET": "t" * 40}))


# Starting without a secret

def environment_without(*prefixes: str) -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}


def test_web_refuses_to_start_without_service_secret(database_url):
    started = subprocess.run(
        [sys.executable, "-m", "web"], cwd=REPOSITORY, capture_output=True, text=True, timeout=60,
        env={**environment_without("WEB_SERVICE_SECRET", "WEB_ADMIN"), "DATABASE_URL": database_url,
             "WEB_PORT": str(free_port()), "WEB_COOKIE_SECRET": COOKIE_SECRET},
    )
    assert started.returncode == 2
    assert "no service secret is set" in started.stderr
    assert "WEB_SERVICE_SECRET_FILE" in started.stderr
    assert "python -m stack" in started.stderr


def test_email_client_refuses_to_start_without_service_secret(redis_url):
    started = subprocess.run(
        [sys.executable, "-m", "email_client"], cwd=REPOSITORY, capture_output=True, text=True, timeout=60,
        env={**environment_without("EMAIL_CLIENT_"), "REDIS_URL": redis_url, "EMAIL_CLIENT_PORT": "0"},
    )
    assert started.returncode == 2
    assert "no service secret is set" in started.stderr
    assert "EMAIL_CLIENT_SERVICE_SECRET_FILE" in started.stderr
    assert "python -m stack" in started.stderr


# web's job-results endpoint

async def sending_campaign(api: ApiClient) -> tuple[int, list[int]]:
    """Create a campaign of two contacts and send it; return its id and its job ids."""
    _, segment = await api.post("/api/v1/segments", json={"name": "Readers"})
    status, report = await api.post(f"/api/v1/contacts/import?segment_id={segment['id']}",
                                    data=b"email\nann@example.com\nbob@example.com\n",
                                    headers={"Content-Type": "text/csv"})
    assert status == 200, report
    _, template = await api.post("/api/v1/templates", json={"name": "Hello", "html": "<p>Hi</p>"})
    _, campaign = await api.post("/api/v1/campaigns", json={
        "name": "Spring", "segment_id": segment["id"], "template_id": template["id"], "subject": "Hi"})
    status, body = await api.post(f"/api/v1/campaigns/{campaign['id']}/send")
    assert status == 202, body
    _, jobs = await api.get(f"/api/v1/campaigns/{campaign['id']}/jobs")
    return campaign["id"], [job["id"] for job in jobs["items"]]


async def jobs_of(api: ApiClient, campaign_id: int) -> dict[int, tuple]:
    _, jobs = await api.get(f"/api/v1/campaigns/{campaign_id}/jobs")
    return {job["id"]: (job["status"], job["error"]) for job in jobs["items"]}


async def post_results(base_url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    """Post to web's job-results endpoint as email_client does: no user, no cookie, no token."""
    async with aiohttp.ClientSession() as session:
        async with session.post(base_url + RESULTS_PATH, data=body,
                                headers={"Content-Type": "application/json", **headers}) as response:
            return response.status, await response.json(content_type=None)


def results_body(campaign_id: int, job_id: int, status: str = "sent", **extra) -> bytes:
    result = {"job_id": job_id, "campaign_id": campaign_id, "status": status, "attempt": 1, **extra}
    return json.dumps({"results": [result]}).encode()


def spoofed(case: str, method: str, url: str, body: bytes) -> dict[str, str]:
    """Return the headers of a request with `body`, spoofed in the way that `case` names."""
    if case == "unsigned":
        return {}
    if case == "other key":
        return signed_headers(method, url, body, secret=OTHER_SECRET)
    if case == "stale":
        return signing.sign(SERVICE_SECRET.encode(), method, URL(url).raw_path_qs, body, now=time.time() - 600)
    if case == "tampered body":
        # Signed for a harmless body, sent with another.
        return signed_headers(method, url, b"{}")
    raise ValueError(case)


SPOOFS = [("unsigned", "not signed"), ("other key", "does not match"), ("stale", "ago"),
          ("tampered body", "does not match")]


@pytest.mark.parametrize("case, words", SPOOFS)
async def test_spoofed_results_rejected(web_service, api, case, words):
    campaign_id, job_ids = await sending_campaign(api)
    before = await jobs_of(api, campaign_id)

    body = results_body(campaign_id, job_ids[0], message_id="spoofed")
    headers = spoofed(case, "POST", web_service.base_url + RESULTS_PATH, body)
    status, answer = await post_results(web_service.base_url, body, headers)

    assert status == 401
    assert words in answer["error"]
    assert not HEX_SIGNATURE.search(answer["error"])
    assert await jobs_of(api, campaign_id) == before
    assert set(status for status, _ in before.values()) == {"pending"}


async def test_replayed_results_rejected(web_service, api):
    campaign_id, job_ids = await sending_campaign(api)
    url = web_service.base_url + RESULTS_PATH
    first = results_body(campaign_id, job_ids[0], "retrying", error="first attempt failed")
    first_headers = signed_headers("POST", url, first)
    assert (await post_results(web_service.base_url, first, first_headers))[0] == 200
    second = results_body(campaign_id, job_ids[0], "retrying", error="second attempt failed")
    assert (await post_results(web_service.base_url, second, signed_headers("POST", url, second)))[0] == 200

    status, answer = await post_results(web_service.base_url, first, first_headers)

    assert status == 401
    assert "used before" in answer["error"]
    assert (await jobs_of(api, campaign_id))[job_ids[0]] == ("retrying", "second attempt failed")


async def test_signed_results_accepted(web_service, api):
    campaign_id, job_ids = await sending_campaign(api)
    url = web_service.base_url + RESULTS_PATH
    body = results_body(campaign_id, job_ids[0], message_id="msg-1")

    status, answer = await post_results(web_service.base_url, body, signed_headers("POST", url, body))

    assert status == 200
    assert answer == {"updated": 1}
    assert (await jobs_of(api, campaign_id))[job_ids[0]] == ("sent", None)


async def test_bearer_token_does_not_replace_signature(web_service, api):
    campaign_id, job_ids = await sending_campaign(api)
    token = await create_api_token(web_service, "not email_client")
    body = results_body(campaign_id, job_ids[0])
    status, answer = await post_results(web_service.base_url, body, {"Authorization": f"Bearer {token}"})
    assert status == 401
    assert "not signed" in answer["error"]


async def test_expired_nonces_deleted(web_service, monkeypatch):
    # No cleanup in `remember`, so that the one below counts every expired row.
    monkeypatch.setattr(nonces, "_next_cleanup", float("inf"))
    now = int(time.time())
    assert await nonces.remember(web_service.db, "n" * 24, now + 300)
    assert not await nonces.remember(web_service.db, "n" * 24, now + 300)
    assert await nonces.remember(web_service.db, "old" * 8, now - 1)
    # An expired nonce may be stored again: its request is rejected for its age anyway.
    assert await nonces.remember(web_service.db, "old" * 8, now - 1)

    assert await nonces.delete_expired(web_service.db) == 1
    assert await web_service.db.fetch_value("SELECT count(*) FROM request_nonces") == 1


# email_client's endpoints

@pytest.fixture
async def email_client_api(redis_url):
    """email_client's HTTP API on a free port, without workers; yields its base URL and a Redis client."""
    config = load_email_client_config({"REDIS_URL": redis_url, "EMAIL_CLIENT_REDIS_PREFIX": "test:",
                                       **email_client_secrets()})
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    app = make_app(config, client, signing.service_secret(config, "email_client"), CredentialsCipher(load_key(config)))
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}", client
    server.stop()
    await server.close_all_connections()
    await client.aclose()


async def send(method: str, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, data=body or None,
                                   headers={"Content-Type": "application/json", **headers}) as response:
            return response.status, await response.json(content_type=None)


@pytest.mark.parametrize("case, words", SPOOFS)
async def test_spoofed_chunk_rejected(email_client_api, case, words):
    base_url, client = email_client_api
    url = f"{base_url}/api/v1/campaigns/7/jobs"
    body = json.dumps(ChunkBuilder().chunk([7, 17])).encode()
    headers = spoofed(case, "POST", url, body)

    status, answer = await send("POST", url, body, headers)

    assert status == 401
    assert words in answer["error"]
    assert not HEX_SIGNATURE.search(answer["error"])
    assert await client.keys("test:*") == []


@pytest.mark.parametrize("case, words", SPOOFS)
async def test_spoofed_settings_rejected(email_client_api, case, words):
    base_url, client = email_client_api
    url = f"{base_url}/api/v1/settings"
    body = json.dumps({"from_email": "spoof@example.com", "gateway_password": "stolen"}).encode()
    headers = spoofed(case, "PUT", url, body)

    status, answer = await send("PUT", url, body, headers)

    assert status == 401
    assert words in answer["error"]
    assert await client.keys("test:*") == []


async def test_replayed_settings_rejected(email_client_api):
    base_url, client = email_client_api
    url = f"{base_url}/api/v1/settings"
    first = json.dumps({"from_name": "First"}).encode()
    first_headers = signed_headers("PUT", url, first)
    assert (await send("PUT", url, first, first_headers))[0] == 200
    second = json.dumps({"from_name": "Second"}).encode()
    assert (await send("PUT", url, second, signed_headers("PUT", url, second)))[0] == 200

    status, answer = await send("PUT", url, first, first_headers)

    assert status == 401
    assert "used before" in answer["error"]
    assert await client.hget(KEYS.settings, "from_name") == "Second"
    assert await client.ttl(KEYS.request_nonce(first_headers[signing.NONCE_HEADER])) > 0


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/v1/settings"),
    ("POST", "/api/v1/campaigns/7/pause"),
    ("POST", "/api/v1/campaigns/7/resume"),
    ("POST", "/api/v1/campaigns/7/cancel"),
    ("GET", "/api/v1/nothing"),
])
async def test_unsigned_requests_rejected(email_client_api, method, path):
    base_url, client = email_client_api
    status, answer = await send(method, base_url + path, b"", {})
    assert status == 401
    assert "not signed" in answer["error"]
    assert await client.keys("test:*") == []


async def test_signed_requests_accepted(email_client_api):
    base_url, client = email_client_api
    async with aiohttp.ClientSession() as session:
        http = SignedSession(session)
        async with http.post(f"{base_url}/api/v1/campaigns/7/jobs", json=ChunkBuilder().chunk([1, 2])) as response:
            assert response.status == 202
        async with http.post(f"{base_url}/api/v1/campaigns/7/pause") as response:
            assert response.status == 200
        async with http.get(f"{base_url}/api/v1/settings") as response:
            assert response.status == 200
        async with session.get(f"{base_url}/healthz") as response:
            assert response.status == 200
    assert await client.xlen(KEYS.job_stream(7)) == 2


# The two real services talking to each other

@pytest.fixture
async def start_web(database_url):
    """Return a function that starts web in this process, talking to email_client at `email_client_url`."""
    services = []

    async def start(email_client_url: str) -> ApiClient:
        port = free_port()
        service = WebService(load_web_config({
            "DATABASE_URL": database_url, "WEB_PORT": str(port), "WEB_EMAIL_CLIENT_URL": email_client_url,
            "WEB_COOKIE_SECRET": COOKIE_SECRET, **web_secrets(),
        }))
        await service.start()
        services.append(service)
        token = await create_api_token(service)
        session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
        services.append(session)
        return ApiClient(f"http://127.0.0.1:{port}", session)

    yield start
    for item in reversed(services):
        if isinstance(item, aiohttp.ClientSession):
            await item.close()
        else:
            await item.stop()


async def test_web_signs_requests_to_email_client(start_web, email_client_api):
    base_url, client = email_client_api
    api = await start_web(base_url)

    status, saved = await api.put("/api/v1/settings", json={"from_email": "news@example.com",
                                                            "gateway_username": "postmill"})
    assert status == 200, saved
    assert saved["gateway_username"] == "postmill"
    campaign_id, _ = await sending_campaign(api)
    await wait_until(lambda: _handed_over(client, campaign_id), "the jobs handed to email_client")

    status, paused = await api.post(f"/api/v1/campaigns/{campaign_id}/pause")
    assert status == 200, paused
    assert await client.hget(KEYS.campaign(campaign_id), "status") == "paused"


async def _handed_over(client, campaign_id: int) -> bool:
    return await client.xlen(KEYS.job_stream(campaign_id)) == 2


async def test_web_with_other_secret_rejected(start_web, redis_url):
    config = load_email_client_config({"REDIS_URL": redis_url, "EMAIL_CLIENT_REDIS_PREFIX": "test:",
                                       **email_client_secrets(), "EMAIL_CLIENT_SERVICE_SECRET": OTHER_SECRET})
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(
        make_app(config, client, OTHER_SECRET.encode(), CredentialsCipher(load_key(config))))
    server.add_sockets(sockets)
    try:
        api = await start_web(f"http://127.0.0.1:{sockets[0].getsockname()[1]}")
        status, answer = await api.put("/api/v1/settings", json={"from_email": "news@example.com"})
        assert status == 503
        assert "service secret" in answer["error"]
        assert "does not match" in answer["error"]
        assert await client.keys("test:*") == []
    finally:
        server.stop()
        await server.close_all_connections()
        await client.aclose()


async def test_email_client_with_other_secret_rejected(start_service, fake_web, caplog):
    service = await start_service(service_secret=OTHER_SECRET)
    async with aiohttp.ClientSession() as session:
        http = SignedSession(session, OTHER_SECRET)
        async with http.put(f"{service.url}/api/v1/settings", json={"from_email": "news@example.com"}) as response:
            assert response.status == 200
        async with http.post(f"{service.url}/api/v1/campaigns/7/jobs", json=ChunkBuilder().chunk([1])) as response:
            assert response.status == 202

    await wait_until(lambda: fake_web.rejected, "a rejected post of results")
    assert "does not match" in fake_web.rejected[0]
    assert fake_web.results == []
    await wait_until(lambda: "web responded 401" in caplog.text, "the rejection in email_client's log")
    assert OTHER_SECRET not in caplog.text
