"""Gateway credentials encrypted in Redis: what Redis holds, a wrong key, key rotation, and a whole run's logs."""

import asyncio
import base64
import json
import logging
import os
import secrets
import subprocess
import sys

import aiohttp
import pytest
import redis.asyncio as redis
import tornado.httpserver
import tornado.netutil

from common import signing
from common.config import ConfigError
from email_client.app import make_app
from email_client.config import load_config
from email_client.credentials import CredentialsCipher, CredentialsUnreadable, load_key
from email_client.keys import Keys
from email_client.settings_store import ENCRYPTED_FIELD
from email_client_peers import fake_gateway, fake_web, start_service  # noqa: F401 (fixtures)
from stack.secrets import ensure_secrets, secret_environment
from tests.conftest import ApiClient, Pages
from tests.processes import REPOSITORY, free_port, start_service as start_process, stop_service
from tests.service_secrets import CREDENTIALS_KEY, SERVICE_SECRET, SignedSession, email_client_secrets

KEYS = Keys("test:")
USERNAME = "gw-user-" + secrets.token_hex(6)
PASSWORD = "gw-pa55word-" + secrets.token_hex(8)
CREDENTIALS = {"from_name": "Postmill News", "from_email": "news@example.com",
               "gateway_username": USERNAME, "gateway_password": PASSWORD}


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def traces(value: str) -> list[str]:
    """Return `value` and the encodings in which it could leak: base64 of it, and of a basic auth pair."""
    forms = [value, base64.b64encode(value.encode()).decode(), base64.urlsafe_b64encode(value.encode()).decode()]
    forms.append(base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode())
    return forms


async def redis_contents(client: redis.Redis) -> str:
    """Return every key and value under the test prefix as one text."""
    parts = []
    async for key in client.scan_iter("test:*"):
        kind = await client.type(key)
        if kind == "hash":
            value = await client.hgetall(key)
        elif kind == "string":
            value = await client.get(key)
        elif kind == "stream":
            value = await client.xrange(key)
        elif kind == "list":
            value = await client.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(await client.smembers(key))
        else:
            value = kind
        parts.append(f"{key} {value}")
    return "\n".join(parts)


@pytest.fixture
async def start_api(redis_url):
    """Return a function that serves email_client's HTTP API with a credentials key; it returns the base URL."""
    servers = []
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    async def start(credentials_key: str = CREDENTIALS_KEY) -> str:
        config = load_config({"REDIS_URL": redis_url, "EMAIL_CLIENT_REDIS_PREFIX": "test:",
                              **email_client_secrets(), "EMAIL_CLIENT_CREDENTIALS_KEY": credentials_key})
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        app = make_app(config, client, signing.service_secret(config, "email_client"),
                       CredentialsCipher(load_key(config)))
        server = tornado.httpserver.HTTPServer(app)
        server.add_sockets(sockets)
        servers.append(server)
        return f"http://127.0.0.1:{sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.stop()
        await server.close_all_connections()
    await client.aclose()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield SignedSession(session)


@pytest.fixture
async def client(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    await connection.aclose()


async def get_settings(http, base_url: str) -> dict:
    async with http.get(f"{base_url}/api/v1/settings") as response:
        assert response.status == 200
        return await response.json()


async def put_settings(http, base_url: str, changes: dict) -> dict:
    async with http.put(f"{base_url}/api/v1/settings", json=changes) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_redis_holds_no_trace_of_credentials(start_api, http, client):
    base_url = await start_api()
    saved = await put_settings(http, base_url, CREDENTIALS)

    assert saved == {"from_name": "Postmill News", "from_email": "news@example.com",
                     "gateway_username": USERNAME, "gateway_password_set": True}
    stored = await client.hgetall(KEYS.settings)
    assert sorted(stored) == ["credentials", "from_email", "from_name"]
    assert stored[ENCRYPTED_FIELD].startswith("v1.")
    contents = await redis_contents(client)
    for secret in (USERNAME, PASSWORD):
        for trace in traces(secret):
            assert trace not in contents
    assert await get_settings(http, base_url) == saved


async def test_password_change_keeps_username(start_api, http, client):
    base_url = await start_api()
    await put_settings(http, base_url, CREDENTIALS)
    before = await client.hget(KEYS.settings, ENCRYPTED_FIELD)

    await put_settings(http, base_url, {"gateway_password": "a-new-pa55word"})

    after = await client.hget(KEYS.settings, ENCRYPTED_FIELD)
    assert after != before
    assert CredentialsCipher(load_key(load_config({"EMAIL_CLIENT_CREDENTIALS_KEY": CREDENTIALS_KEY}))).decrypt(
        after) == {"gateway_username": USERNAME, "gateway_password": "a-new-pa55word"}
    cleared = await put_settings(http, base_url, {"gateway_username": "", "gateway_password": ""})
    assert cleared["gateway_username"] is None
    assert cleared["gateway_password_set"] is False
    assert ENCRYPTED_FIELD not in await client.hgetall(KEYS.settings)


async def test_wrong_key_answers_password_unset(start_api, http, client, caplog):
    await put_settings(http, await start_api(), CREDENTIALS)
    other = await start_api(new_key())

    with caplog.at_level(logging.ERROR, logger="email_client.settings_store"):
        first = await get_settings(http, other)
        second = await get_settings(http, other)

    assert first == second == {"from_name": "Postmill News", "from_email": "news@example.com",
                               "gateway_username": None, "gateway_password_set": False}
    errors = [record for record in caplog.records if record.name == "email_client.settings_store"]
    assert len(errors) == 1
    assert "cannot be decrypted with the configured credentials key" in errors[0].getMessage()
    assert PASSWORD not in caplog.text
    assert await client.hget(KEYS.settings, ENCRYPTED_FIELD) is not None

    saved = await put_settings(http, other, {"gateway_username": "fresh", "gateway_password": "fresh-pa55word"})
    assert saved["gateway_username"] == "fresh"
    assert saved["gateway_password_set"] is True


def rotate(redis_url: str, current_key: str, new_key_file) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("EMAIL_CLIENT_")}
    return subprocess.run(
        [sys.executable, "-m", "email_client", "rotate-credentials-key", "--new-key-file", str(new_key_file)],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=60,
        env={**environment, "REDIS_URL": redis_url, "EMAIL_CLIENT_REDIS_PREFIX": "test:",
             "EMAIL_CLIENT_CREDENTIALS_KEY": current_key},
    )


async def test_rotation_re_encrypts_with_new_key(start_api, http, client, redis_url, tmp_path):
    await put_settings(http, await start_api(), CREDENTIALS)
    before = await client.hget(KEYS.settings, ENCRYPTED_FIELD)
    key = new_key()
    key_file = tmp_path / "new-key"
    key_file.write_text(key + "\n")

    rotated = await asyncio.to_thread(rotate, redis_url, CREDENTIALS_KEY, key_file)

    assert rotated.returncode == 0, rotated.stderr
    assert "Re-encrypted the gateway credentials" in rotated.stdout
    assert key not in rotated.stdout + rotated.stderr
    after = await client.hget(KEYS.settings, ENCRYPTED_FIELD)
    assert after != before
    with pytest.raises(CredentialsUnreadable):
        CredentialsCipher(base64.urlsafe_b64decode(CREDENTIALS_KEY)).decrypt(after)
    assert CredentialsCipher(base64.urlsafe_b64decode(key)).decrypt(after) == {
        "gateway_username": USERNAME, "gateway_password": PASSWORD}
    assert (await get_settings(http, await start_api(key)))["gateway_password_set"] is True
    assert (await get_settings(http, await start_api(CREDENTIALS_KEY)))["gateway_password_set"] is False
    assert (await client.hgetall(KEYS.settings))["from_email"] == "news@example.com"


async def test_rotation_with_wrong_current_key_changes_nothing(start_api, http, client, redis_url, tmp_path):
    await put_settings(http, await start_api(), CREDENTIALS)
    before = await client.hget(KEYS.settings, ENCRYPTED_FIELD)
    key_file = tmp_path / "new-key"
    key_file.write_text(new_key())

    rotated = await asyncio.to_thread(rotate, redis_url, new_key(), key_file)

    assert rotated.returncode == 1
    assert "cannot decrypt the stored gateway credentials" in rotated.stderr
    assert "nothing was changed" in rotated.stderr
    assert await client.hget(KEYS.settings, ENCRYPTED_FIELD) == before


async def test_rotation_rejects_invalid_new_key(start_api, http, client, redis_url, tmp_path):
    await put_settings(http, await start_api(), CREDENTIALS)
    before = await client.hget(KEYS.settings, ENCRYPTED_FIELD)
    key_file = tmp_path / "new-key"
    key_file.write_text("c2hvcnQta2V5")

    rotated = await asyncio.to_thread(rotate, redis_url, CREDENTIALS_KEY, key_file)

    assert rotated.returncode == 2
    assert "decodes to 9 bytes, but a key must be exactly 32" in rotated.stderr
    assert "c2hvcnQta2V5" not in rotated.stderr
    assert await client.hget(KEYS.settings, ENCRYPTED_FIELD) == before


async def test_rotation_without_credentials(redis_url, tmp_path):
    key_file = tmp_path / "new-key"
    key_file.write_text(new_key())
    rotated = await asyncio.to_thread(rotate, redis_url, CREDENTIALS_KEY, key_file)
    assert rotated.returncode == 0, rotated.stderr
    assert "No gateway credentials are stored" in rotated.stdout


@pytest.mark.parametrize("value, words", [
    ("not base64!", "is not URL-safe base64"),
    (base64.urlsafe_b64encode(b"k" * 16).decode(), "decodes to 16 bytes, but a key must be exactly 32"),
])
def test_invalid_credentials_key_rejected(value, words):
    with pytest.raises(ConfigError, match=words) as raised:
        load_key(load_config({"EMAIL_CLIENT_CREDENTIALS_KEY": value}))
    assert value not in str(raised.value)


def test_email_client_refuses_to_start_without_credentials_key(redis_url):
    environment = {name: value for name, value in os.environ.items() if not name.startswith("EMAIL_CLIENT_")}
    started = subprocess.run(
        [sys.executable, "-m", "email_client"], cwd=REPOSITORY, capture_output=True, text=True, timeout=60,
        env={**environment, "REDIS_URL": redis_url, "EMAIL_CLIENT_SERVICE_SECRET": SERVICE_SECRET},
    )
    assert started.returncode == 2
    assert "no credentials key is set" in started.stderr
    assert "EMAIL_CLIENT_CREDENTIALS_KEY_FILE" in started.stderr
    assert "python -m stack" in started.stderr


async def test_plaintext_credentials_encrypted_at_start(start_service, http, client):
    await client.hset(KEYS.settings, mapping={"from_email": "news@example.com",
                                              "gateway_username": USERNAME, "gateway_password": PASSWORD})

    service = await start_service()

    assert (await get_settings(http, service.url))["gateway_username"] == USERNAME
    assert sorted(await client.hgetall(KEYS.settings)) == ["credentials", "from_email"]
    assert PASSWORD not in await redis_contents(client)


# A whole campaign across real processes, then every log line and response searched for secrets

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-pa55word-" + secrets.token_hex(4)


async def wait_for_status(web: ApiClient, campaign_id: int, wanted: str, timeout: float = 120.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, campaign = await web.get(f"/api/v1/campaigns/{campaign_id}")
        assert status == 200, campaign
        if campaign["status"] == wanted:
            return campaign
        assert asyncio.get_running_loop().time() < deadline, f"campaign not {wanted}: {campaign}"
        await asyncio.sleep(0.3)


async def run_campaign(web: ApiClient) -> list[str]:
    """Store the credentials through web and send a campaign of 30 contacts until it finishes.

    Returns web's JSON responses as text.
    """
    answers = []
    status, saved = await web.put("/api/v1/settings", json=CREDENTIALS)
    assert status == 200, saved
    assert saved["gateway_password_set"] is True
    answers.append(saved)

    _, segment = await web.post("/api/v1/segments", json={"name": "Everyone"})
    contacts = "email,first_name\n" + "".join(f"reader{number}@example.com,Reader{number}\n" for number in range(30))
    status, report = await web.post(f"/api/v1/contacts/import?segment_id={segment['id']}", data=contacts.encode(),
                                    headers={"Content-Type": "text/csv"})
    assert status == 200, report
    _, template = await web.post("/api/v1/templates", json={"name": "News", "html": "<p>Hi {{ first_name }}</p>"})
    _, campaign = await web.post("/api/v1/campaigns", json={
        "name": "Spring", "segment_id": segment["id"], "template_id": template["id"], "subject": "Hello"})
    status, sending = await web.post(f"/api/v1/campaigns/{campaign['id']}/send")
    assert status == 202, sending

    finished = await wait_for_status(web, campaign["id"], "finished")
    assert finished["counts"]["sent"] + finished["counts"]["failed"] == 30
    assert finished["counts"]["sent"] > 0
    answers.append(finished)
    answers.append((await web.get(f"/api/v1/campaigns/{campaign['id']}/jobs?limit=100"))[1])
    answers.append((await web.get("/api/v1/settings"))[1])
    return [json.dumps(answer, ensure_ascii=False) for answer in answers]


async def test_campaign_run_leaks_no_secret(tmp_path, database_url, redis_url):
    secret_files = ensure_secrets(tmp_path / "secrets")
    secret_values = [path.read_text().strip() for path in secret_files.values()]
    gateway_port, email_client_port, web_port = free_port(), free_port(), free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    logs = tmp_path / "logs"
    logs.mkdir()
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("WEB_", "EMAIL_CLIENT_", "MOCK_GATEWAY_"))}
    processes = []
    answers: list[str] = []
    try:
        processes.append(await asyncio.to_thread(start_process, "mock_gateway", {
            "MOCK_GATEWAY_PORT": str(gateway_port), "MOCK_GATEWAY_SEED": "3", "MOCK_GATEWAY_LOG_LEVEL": "DEBUG",
            "MOCK_GATEWAY_OUTCOMES": json.dumps({"202": 0.8, "500": 0.2}),
        }, gateway_port, logs / "mock_gateway.log"))
        processes.append(await asyncio.to_thread(start_process, "email_client", {
            "EMAIL_CLIENT_PORT": str(email_client_port), "REDIS_URL": redis_url, "EMAIL_CLIENT_WEB_URL": web_url,
            "EMAIL_CLIENT_GATEWAY_URL": f"http://127.0.0.1:{gateway_port}", "EMAIL_CLIENT_LOG_LEVEL": "DEBUG",
            "EMAIL_CLIENT_RETRY_BASE_DELAY": "0.05", "EMAIL_CLIENT_RETRY_MAX_DELAY": "0.2",
            **secret_environment("email_client", secret_files),
        }, email_client_port, logs / "email_client.log"))
        processes.append(await asyncio.to_thread(start_process, "web", {
            "WEB_PORT": str(web_port), "DATABASE_URL": database_url, "WEB_LOG_LEVEL": "DEBUG",
            "WEB_EMAIL_CLIENT_URL": f"http://127.0.0.1:{email_client_port}",
            "WEB_ADMIN_EMAIL": ADMIN_EMAIL, "WEB_ADMIN_PASSWORD": ADMIN_PASSWORD,
            **secret_environment("web", secret_files),
        }, web_port, logs / "web.log"))
        created = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "web", "create-token", "leak test"], cwd=REPOSITORY,
            env={**environment, "DATABASE_URL": database_url}, capture_output=True, text=True, timeout=60, check=True,
        )
        token = created.stdout.strip()

        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            pages = Pages(session, web_url)
            assert await pages.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD) == (303, "/")
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as api_session:
                web = ApiClient(web_url, api_session)
                answers.extend(await run_campaign(web))
            for page in ("/", "/settings", "/campaigns"):
                status, text = await pages.get(page)
                assert status == 200, page
                answers.append(text)
            assert "A gateway password is set." in answers[-2]
    finally:
        for process in reversed(processes):
            await asyncio.to_thread(stop_service, process)

    log_texts = {path.name: path.read_text(encoding="utf-8", errors="replace") for path in logs.iterdir()}
    assert sorted(log_texts) == ["email_client.log", "mock_gateway.log", "web.log"]
    assert "email_client listening on" in log_texts["email_client.log"]
    for secret in [PASSWORD, *secret_values]:
        for trace in traces(secret):
            for name, text in log_texts.items():
                assert trace not in text, f"a secret is in {name}"
            for answer in answers:
                assert trace not in answer
    async with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        stored = json.dumps(await client.hgetall("postmill:settings"))
    assert PASSWORD not in stored
    assert USERNAME not in stored
