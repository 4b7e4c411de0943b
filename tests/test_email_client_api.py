"""The email_client HTTP API in-process, without workers: chunks, settings, health."""

import json

import pytest
import redis.asyncio as redis
import tornado.httpserver
import tornado.netutil

from common import signing
from email_client.app import make_app
from email_client.config import load_config
from email_client.credentials import CredentialsCipher, load_key
from email_client.gateway import Address, Credentials, OutgoingMessage
from email_client.keys import JOB_GROUP, Keys
from email_client.settings_store import SenderSettings
from email_client_peers import ChunkBuilder, http  # noqa: F401 (fixture)
from tests.service_secrets import email_client_secrets

KEYS = Keys("test:")


@pytest.fixture
async def api(redis_url):
    """Base URL of the app on a free port and a Redis client on its database."""
    config = load_config({"REDIS_URL": redis_url, "EMAIL_CLIENT_REDIS_PREFIX": "test:", **email_client_secrets()})
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    app = make_app(config, client, signing.service_secret(config, "email_client"), CredentialsCipher(load_key(config)))
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}", client
    server.stop()
    await server.close_all_connections()
    await client.aclose()


async def post_chunk(http, base_url, body, campaign_id=7):
    async with http.post(f"{base_url}/api/v1/campaigns/{campaign_id}/jobs", json=body) as response:
        return response.status, await response.json()


async def test_chunk_queues_jobs_in_id_order(api, http):
    base_url, client = api
    status, answer = await post_chunk(http, base_url, ChunkBuilder().chunk([3, 1, 2]))
    assert status == 202
    assert answer == {"queued": 3, "ignored": 0, "backlog": 3}

    entries = await client.xrange(KEYS.job_stream(7))
    assert [fields["job_id"] for _, fields in entries] == ["1", "2", "3"]
    assert all(fields["campaign_id"] == "7" for _, fields in entries)
    assert json.loads(entries[0][1]["contact"])["email"] == "contact1@example.com"
    campaign = await client.hgetall(KEYS.campaign(7))
    assert campaign["subject"] == "Hello {{ first_name }}"
    assert campaign["highest_job_id:0"] == "3"
    assert await client.smembers(KEYS.active_campaigns) == {"7"}


async def test_repeated_chunk_is_ignored(api, http):
    base_url, client = api
    builder = ChunkBuilder()
    await post_chunk(http, base_url, builder.chunk([1, 2, 3]))

    status, answer = await post_chunk(http, base_url, builder.chunk([1, 2, 3]))
    assert status == 202
    assert answer == {"queued": 0, "ignored": 3, "backlog": 3}

    status, answer = await post_chunk(http, base_url, builder.chunk([2, 3, 4, 5]))
    assert answer == {"queued": 2, "ignored": 2, "backlog": 5}
    entries = await client.xrange(KEYS.job_stream(7))
    assert [fields["job_id"] for _, fields in entries] == ["1", "2", "3", "4", "5"]


async def test_highest_job_id_compares_large_ids(api, http):
    base_url, client = api
    builder = ChunkBuilder()
    await post_chunk(http, base_url, builder.chunk([9, 2**62]))
    status, answer = await post_chunk(http, base_url, builder.chunk([2**62 - 1, 2**62 + 1]))
    assert answer["queued"] == 1
    assert answer["ignored"] == 1
    assert await client.hget(KEYS.campaign(7), "highest_job_id:0") == str(2**62 + 1)


async def test_new_round_queues_jobs_again(api, http):
    base_url, client = api
    builder = ChunkBuilder()
    await post_chunk(http, base_url, builder.chunk([1, 2, 3]))

    status, answer = await post_chunk(http, base_url, {**builder.chunk([2, 3]), "round": 1})
    assert status == 202
    assert answer["queued"] == 2
    status, answer = await post_chunk(http, base_url, {**builder.chunk([2, 3]), "round": 1})
    assert answer["queued"] == 0
    status, answer = await post_chunk(http, base_url, {**builder.chunk([3]), "round": 0})
    assert answer["queued"] == 0

    entries = await client.xrange(KEYS.job_stream(7))
    assert [fields["job_id"] for _, fields in entries] == ["1", "2", "3", "2", "3"]
    assert answer["backlog"] == 5


async def test_backlog_counts_jobs_not_taken(api, http):
    base_url, client = api
    await post_chunk(http, base_url, ChunkBuilder().chunk([1, 2, 3, 4]))
    # A worker takes two jobs; they no longer count.
    await client.xreadgroup(JOB_GROUP, "worker", {KEYS.job_stream(7): ">"}, count=2)

    status, answer = await post_chunk(http, base_url, ChunkBuilder().chunk([5]))
    assert status == 202
    assert answer == {"queued": 1, "ignored": 0, "backlog": 3}
    _, other = await post_chunk(http, base_url, ChunkBuilder(campaign_id=8).chunk([6]), campaign_id=8)
    assert other["backlog"] == 1


def _chunk_with(**changes):
    body = ChunkBuilder().chunk([1, 2])
    for path, value in changes.items():
        target = body
        *parents, last = path.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return body


_DELETE = object()

MALFORMED_CHUNKS = [
    ("jobs missing", _chunk_with(jobs=_DELETE), "jobs"),
    ("jobs not a list", _chunk_with(jobs={"id": 1}), "jobs"),
    ("too many jobs", ChunkBuilder().chunk(range(1, 5002)), "jobs"),
    ("id zero", _chunk_with(jobs__0__id=0), "jobs[0].id"),
    ("id a string", _chunk_with(jobs__1__id="2"), "jobs[1].id"),
    ("id a boolean", _chunk_with(jobs__0__id=True), "jobs[0].id"),
    ("id repeated", _chunk_with(jobs__1__id=1), "jobs"),
    ("email missing", _chunk_with(jobs__1__contact__email=_DELETE), "jobs[1].contact.email"),
    ("email empty", _chunk_with(jobs__0__contact__email=" "), "jobs[0].contact.email"),
    ("contact missing", _chunk_with(jobs__0__contact=_DELETE), "jobs[0].contact"),
    ("attributes a list", _chunk_with(jobs__0__contact__attributes=[1]), "jobs[0].contact.attributes"),
    ("campaign missing", _chunk_with(campaign=_DELETE), "campaign"),
    ("round negative", _chunk_with(round=-1), "round"),
    ("round a string", _chunk_with(round="1"), "round"),
    ("round a boolean", _chunk_with(round=True), "round"),
    ("campaign id of another", _chunk_with(campaign__id=8), "campaign.id"),
    ("subject missing", _chunk_with(campaign__subject=_DELETE), "campaign.subject"),
    ("html not a string", _chunk_with(campaign__html=5), "campaign.html"),
    ("html does not compile", _chunk_with(campaign__html="<p>{{ name </p>"), "campaign.html"),
]


@pytest.mark.parametrize(
    "body, field", [case[1:] for case in MALFORMED_CHUNKS], ids=[case[0] for case in MALFORMED_CHUNKS]
)
async def test_malformed_chunk_rejected(api, http, body, field):
    base_url, client = api
    status, answer = await post_chunk(http, base_url, body)
    assert status == 400
    assert answer["field"] == field
    assert answer["error"]
    assert await client.xlen(KEYS.job_stream(7)) == 0


async def test_chunk_not_json_rejected(api, http):
    base_url, _ = api
    async with http.post(f"{base_url}/api/v1/campaigns/7/jobs", data=b"{jobs") as response:
        assert response.status == 400
        assert "not valid JSON" in (await response.json())["error"]


async def test_chunk_campaign_zero_rejected(api, http):
    base_url, _ = api
    status, answer = await post_chunk(http, base_url, ChunkBuilder(campaign_id=0).chunk([1]), campaign_id=0)
    assert status == 400
    assert "positive integer" in answer["error"]


async def test_settings_round_trip(api, http):
    base_url, _ = api
    async with http.get(f"{base_url}/api/v1/settings") as response:
        assert response.status == 200
        assert await response.json() == {
            "from_name": None, "from_email": None, "gateway_username": None, "gateway_password_set": False,
        }

    changes = {"from_name": "Postmill News", "from_email": "news@example.com",
               "gateway_username": "postmill", "gateway_password": "s3cret-pa55"}
    async with http.put(f"{base_url}/api/v1/settings", json=changes) as response:
        assert response.status == 200
        put_text = await response.text()
    async with http.get(f"{base_url}/api/v1/settings") as response:
        get_text = await response.text()

    expected = {"from_name": "Postmill News", "from_email": "news@example.com",
                "gateway_username": "postmill", "gateway_password_set": True}
    assert json.loads(put_text) == expected
    assert json.loads(get_text) == expected
    assert "s3cret-pa55" not in put_text
    assert "s3cret-pa55" not in get_text


async def test_settings_empty_string_clears(api, http):
    base_url, _ = api
    await http.put(f"{base_url}/api/v1/settings", json={"from_name": "News", "gateway_password": "pw"})
    async with http.put(f"{base_url}/api/v1/settings", json={"from_name": "", "gateway_password": ""}) as response:
        answer = await response.json()
    assert answer["from_name"] is None
    assert answer["gateway_password_set"] is False


async def test_settings_partial_put_keeps_others(api, http):
    base_url, _ = api
    await http.put(f"{base_url}/api/v1/settings", json={"from_name": "News", "from_email": "a@example.com"})
    async with http.put(f"{base_url}/api/v1/settings", json={"from_name": "Other"}) as response:
        answer = await response.json()
    assert answer["from_name"] == "Other"
    assert answer["from_email"] == "a@example.com"


INVALID_SETTINGS = [
    ({"from_email": "not-an-address"}, "from_email"),
    ({"from_email": 42}, "from_email"),
    ({"from_name": "x" * 201}, "from_name"),
    ({"from_name": "News\r\nBcc: someone@example.com"}, "from_name"),
    ({"gateway_username": "a:b"}, "gateway_username"),
    ({"gateway_password": "p" * 1001}, "gateway_password"),
    ({"reply_to": "a@example.com"}, "reply_to"),
]


@pytest.mark.parametrize("body, field", INVALID_SETTINGS)
async def test_invalid_setting_rejected(api, http, body, field):
    base_url, _ = api
    async with http.put(f"{base_url}/api/v1/settings", json={"from_name": "Kept", **body}) as response:
        assert response.status == 400
        answer = await response.json()
    assert answer["field"] == field
    assert field in answer["error"]
    async with http.get(f"{base_url}/api/v1/settings") as response:
        assert (await response.json())["from_name"] is None


async def test_settings_body_not_object_rejected(api, http):
    base_url, _ = api
    async with http.put(f"{base_url}/api/v1/settings", json=["from_name"]) as response:
        assert response.status == 400
        assert "JSON object" in (await response.json())["error"]


async def test_healthz_ok(api, http):
    base_url, _ = api
    async with http.get(f"{base_url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_unknown_endpoint_is_json_404(api, http):
    base_url, _ = api
    async with http.get(f"{base_url}/api/v1/nothing") as response:
        assert response.status == 404
        assert "no such endpoint" in (await response.json())["error"]


async def test_wrong_method_is_json_405(api, http):
    base_url, _ = api
    async with http.delete(f"{base_url}/api/v1/settings") as response:
        assert response.status == 405
        assert (await response.json())["error"] == "Method Not Allowed"


def test_repr_hides_password():
    settings = SenderSettings(from_email="a@example.com", gateway_username="user", gateway_password="pa55word")
    credentials = Credentials("user", "pa55word")
    assert "pa55word" not in repr(settings)
    assert "pa55word" not in repr(credentials)
    assert "pa55word" not in repr(OutgoingMessage(
        "key", Address("a@example.com"), Address("b@example.com"), "subject", "html", "text", credentials,
    ))
