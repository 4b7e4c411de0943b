"""The mock gateway as a real process, spoken to over HTTP as email_client would."""

import asyncio
import json
import os
import signal
import subprocess
import sys

import aiohttp
import pytest

from mock_gateway.config import load_config
from tests.processes import REPOSITORY, free_port, start_service, stop_service

AUTH = aiohttp.encode_basic_auth("postmill", "secret")
REJECTION_CODES = (400, 401, 403, 429, 500, 502, 503)


@pytest.fixture
def start_gateway(tmp_path):
    """Return a function that starts a mock gateway with MOCK_GATEWAY_* settings and returns its URL."""
    processes = []

    def start(**settings) -> str:
        port = free_port()
        env = {"MOCK_GATEWAY_HOST": "127.0.0.1", "MOCK_GATEWAY_PORT": str(port), "MOCK_GATEWAY_LOG_LEVEL": "DEBUG"}
        for name, value in settings.items():
            env[f"MOCK_GATEWAY_{name.upper()}"] = json.dumps(value) if isinstance(value, dict) else str(value)
        process = start_service("mock_gateway", env, port, tmp_path / f"mock_gateway-{port}.log")
        processes.append(process)
        return f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        stop_service(process)


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def make_message(**overrides) -> dict:
    message = {
        "from": {"name": "Postmill", "email": "news@example.com"},
        "to": {"name": "Zoë Ng", "email": "zoe@example.com"},
        "subject": "Hello",
        "text": "Hello Zoë",
        "html": "<p>Hello Zoë</p>",
        "headers": {"List-Unsubscribe": "<mailto:unsubscribe@example.com>"},
    }
    message.update(overrides)
    return message


async def send(http, base, key="postmill-1-1", message=None, auth=AUTH, data=None):
    """POST /v1/messages and return the status and JSON body."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    if auth is not None:
        headers["Authorization"] = auth
    body = data if data is not None else json.dumps(message or make_message())
    async with http.post(f"{base}/v1/messages", data=body, headers=headers) as response:
        return response.status, await response.json()


async def get_json(http, url):
    async with http.get(url) as response:
        return response.status, await response.json()


async def test_accepted_message_is_stored(start_gateway, http):
    base = start_gateway(outcomes={"202": 1})

    status, body = await send(http, base)

    assert status == 202
    assert body["message_id"].startswith("msg_")
    status, stored = await get_json(http, f"{base}/messages/{body['message_id']}")
    assert status == 200
    assert stored["idempotency_key"] == "postmill-1-1"
    assert stored["to"] == {"name": "Zoë Ng", "email": "zoe@example.com"}
    assert stored["text"] == "Hello Zoë"
    assert stored["html"] == "<p>Hello Zoë</p>"
    assert stored["headers"] == {"List-Unsubscribe": "<mailto:unsubscribe@example.com>"}
    _, stats = await get_json(http, f"{base}/stats")
    assert stats == {"accepted": 1, "rejected": 0, "duplicates": 0, "rejected_by_status": {}}


@pytest.mark.parametrize("code", REJECTION_CODES)
async def test_forced_rejection(start_gateway, http, code):
    base = start_gateway(outcomes={str(code): 1})

    status, body = await send(http, base)

    assert status == code
    assert isinstance(body["error"], str)
    assert body["error"]
    _, stats = await get_json(http, f"{base}/stats")
    assert stats["rejected"] == 1
    assert stats["rejected_by_status"] == {str(code): 1}
    _, listing = await get_json(http, f"{base}/messages")
    assert listing["total"] == 0


@pytest.mark.parametrize("auth", [None, "Bearer abc", "Basic not-base64!", "Basic bm8tY29sb24="])
async def test_missing_auth_is_401(start_gateway, http, auth):
    base = start_gateway(outcomes={"202": 1})
    headers = {"Idempotency-Key": "postmill-1-1"}
    if auth is not None:
        headers["Authorization"] = auth

    async with http.post(f"{base}/v1/messages", json=make_message(), headers=headers) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert "basic auth" in (await response.json())["error"]


async def test_missing_idempotency_key_is_400(start_gateway, http):
    base = start_gateway(outcomes={"202": 1})

    status, body = await send(http, base, key=None)

    assert status == 400
    assert "Idempotency-Key" in body["error"]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"from": None}, "from"),
        ({"from": "news@example.com"}, "from"),
        ({"from": {"name": "Postmill"}}, "from.email"),
        ({"to": {"email": "not an address"}}, "to.email"),
        ({"to": {"email": 42}}, "to.email"),
        ({"subject": ""}, "subject"),
        ({"subject": ["Hello"]}, "subject"),
        ({"text": None, "html": None}, "text"),
        ({"html": {"body": "x"}}, "html"),
        ({"headers": ["X-Campaign: 7"]}, "headers"),
        ({"headers": {"X-Campaign": "7\r\nBcc: all@example.com"}}, "headers.X-Campaign"),
    ],
)
async def test_invalid_body_names_field(start_gateway, http, changes, field):
    base = start_gateway(outcomes={"202": 1})

    status, body = await send(http, base, message=make_message(**changes))

    assert status == 400
    assert body["field"] == field
    assert field in body["error"]
    _, stats = await get_json(http, f"{base}/stats")
    assert stats["accepted"] == 0
    assert stats["rejected"] == 0


@pytest.mark.parametrize("data", ["{", "[1, 2]", "\xff"])
async def test_malformed_json_is_400(start_gateway, http, data):
    base = start_gateway(outcomes={"202": 1})

    status, body = await send(http, base, data=data.encode("latin-1"))

    assert status == 400
    assert "JSON" in body["error"]


async def test_duplicate_key_is_409(start_gateway, http):
    base = start_gateway(outcomes={"202": 1})
    _, first = await send(http, base, key="postmill-7-1201")

    status, body = await send(http, base, key="postmill-7-1201")

    assert status == 409
    assert body["error"] == "duplicate idempotency key"
    assert body["message_id"] == first["message_id"]
    _, stats = await get_json(http, f"{base}/stats")
    assert stats["accepted"] == 1
    assert stats["duplicates"] == 1


async def test_concurrent_duplicates_accepted_once(start_gateway, http):
    base = start_gateway(outcomes={"202": 1}, latency_ms=200)

    results = await asyncio.gather(*(send(http, base, key="postmill-7-1") for _ in range(5)))

    statuses = sorted(status for status, _ in results)
    assert statuses == [202, 409, 409, 409, 409]
    assert len({body["message_id"] for _, body in results}) == 1


async def test_rejected_key_can_be_sent_again(start_gateway, http):
    base = start_gateway(outcomes={"202": 1, "500": 1}, seed=5)

    statuses = []
    while 202 not in statuses and len(statuses) < 100:
        status, _ = await send(http, base, key="postmill-7-1")
        statuses.append(status)
    status, _ = await send(http, base, key="postmill-7-1")

    assert set(statuses) == {500, 202}, "seed 5 should draw a 500 before the first 202"
    assert status == 409


async def test_default_mix_gives_every_code(start_gateway, http):
    base = start_gateway(seed=7)
    limit = asyncio.Semaphore(20)

    async def send_one(number):
        async with limit:
            status, _ = await send(http, base, key=f"postmill-1-{number}")
            return status

    statuses = await asyncio.gather(*(send_one(number) for number in range(1000)))

    counts = {code: statuses.count(code) for code in set(statuses)}
    assert 600 <= counts[202] <= 800
    for code in (400, 401, 403, 500, 502):
        assert counts.get(code, 0) > 0, f"no {code} in {counts}"
    assert set(counts) == {202, 400, 401, 403, 500, 502}
    _, stats = await get_json(http, f"{base}/stats")
    assert stats["accepted"] == counts[202]
    assert stats["rejected"] == 1000 - counts[202]
    assert stats["rejected_by_status"] == {str(code): count for code, count in counts.items() if code != 202}


async def test_same_seed_repeats_outcomes(start_gateway, http):
    runs = []
    for _ in range(2):
        base = start_gateway(seed=3)
        runs.append([(await send(http, base, key=f"postmill-1-{number}"))[0] for number in range(40)])

    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 1


async def test_store_drops_oldest_but_keeps_keys(start_gateway, http):
    base = start_gateway(outcomes={"202": 1}, max_stored_messages=2)
    ids = [(await send(http, base, key=f"postmill-1-{number}"))[1]["message_id"] for number in range(3)]

    _, listing = await get_json(http, f"{base}/messages")
    status, _ = await get_json(http, f"{base}/messages/{ids[0]}")
    duplicate_status, duplicate = await send(http, base, key="postmill-1-0")

    assert listing["total"] == 2
    assert [item["message_id"] for item in listing["items"]] == [ids[2], ids[1]]
    assert status == 404
    assert duplicate_status == 409
    assert duplicate["message_id"] == ids[0]


async def test_messages_limit_and_offset(start_gateway, http):
    base = start_gateway(outcomes={"202": 1})
    ids = [(await send(http, base, key=f"postmill-1-{number}"))[1]["message_id"] for number in range(3)]

    _, page = await get_json(http, f"{base}/messages?limit=1&offset=1")
    bad_status, bad = await get_json(http, f"{base}/messages?limit=zero")

    assert page["total"] == 3
    assert [item["message_id"] for item in page["items"]] == [ids[1]]
    assert bad_status == 400
    assert "limit" in bad["error"]


async def test_special_subject_escaped_on_page(start_gateway, http):
    base = start_gateway(outcomes={"202": 1})
    subject = '<script>alert("hi")</script> & <b>Co</b>'
    _, accepted = await send(http, base, message=make_message(subject=subject))

    _, listing = await get_json(http, f"{base}/messages")
    async with http.get(f"{base}/") as response:
        page = await response.text()
        content_type = response.headers["Content-Type"]

    assert listing["items"][0]["subject"] == subject
    assert listing["items"][0]["message_id"] == accepted["message_id"]
    assert content_type.startswith("text/html")
    assert "&lt;script&gt;alert(&#34;hi&#34;)&lt;/script&gt; &amp; &lt;b&gt;Co&lt;/b&gt;" in page
    assert "<script" not in page
    assert accepted["message_id"] in page
    assert 'id="accepted">1<' in page


async def test_reset_clears_everything(start_gateway, http):
    base = start_gateway(outcomes={"202": 1})
    await send(http, base, key="postmill-1-1")
    await send(http, base, key="postmill-1-1")

    async with http.post(f"{base}/reset") as response:
        assert response.status == 200
    _, stats = await get_json(http, f"{base}/stats")
    _, listing = await get_json(http, f"{base}/messages")
    status, _ = await send(http, base, key="postmill-1-1")

    assert stats == {"accepted": 0, "rejected": 0, "duplicates": 0, "rejected_by_status": {}}
    assert listing == {"items": [], "total": 0}
    assert status == 202


async def test_unknown_route_is_json_404(start_gateway, http):
    base = start_gateway()

    status, body = await get_json(http, f"{base}/v2/messages")

    assert status == 404
    assert "/v2/messages" in body["error"]


@pytest.mark.parametrize(
    "outcomes",
    ['{"418": 1}', '{"202": -1}', '{"202": 0, "500": 0}', '{"202": "most"}', "not json", '["202"]'],
)
def test_invalid_outcomes_exit_nonzero(outcomes):
    env = {"MOCK_GATEWAY_PORT": str(free_port()), "MOCK_GATEWAY_OUTCOMES": outcomes}

    result = subprocess.run(
        [sys.executable, "-m", "mock_gateway"],
        cwd=REPOSITORY,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "outcomes" in result.stderr
    assert "MOCK_GATEWAY_OUTCOMES" in result.stderr


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_signal(tmp_path, signal_number):
    port = free_port()
    log_path = tmp_path / "mock_gateway.log"
    process = start_service("mock_gateway", {"MOCK_GATEWAY_PORT": str(port)}, port, log_path)
    try:
        process.send_signal(signal_number)
        status = process.wait(60)
    finally:
        stop_service(process)

    log = log_path.read_text()
    assert status == 0
    assert f"listening on http://127.0.0.1:{port}" in log
    assert "stopped" in log


def test_seed_from_file_or_environment():
    assert load_config({}).seed is None
    assert load_config({"MOCK_GATEWAY_SEED": "42"}).seed == 42
