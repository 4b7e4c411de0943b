"""email_client in-process with a fake gateway and a fake web: every job ends in one result."""

import logging

import redis.asyncio as redis

from email_client.keys import JOB_GROUP, Keys
from email_client_peers import (  # noqa: F401 (fixtures)
    Answer,
    ChunkBuilder,
    fake_gateway,
    fake_web,
    http,
    start_service,
    wait_until,
)

KEYS = Keys("test:")
SETTINGS = {
    "from_name": "Postmill News",
    "from_email": "news@example.com",
    "gateway_username": "postmill",
    "gateway_password": "gateway-pa55word",
}


async def configure(http, service, **changes):
    async with http.put(f"{service.url}/api/v1/settings", json={**SETTINGS, **changes}) as response:
        assert response.status == 200


async def queue(http, service, body):
    campaign_id = body["campaign"]["id"]
    async with http.post(f"{service.url}/api/v1/campaigns/{campaign_id}/jobs", json=body) as response:
        assert response.status == 202, await response.text()
        return await response.json()


async def test_every_job_gets_one_result(start_service, fake_gateway, fake_web, http, redis_url):
    service = await start_service()
    await configure(http, service)
    answer = await queue(http, service, ChunkBuilder().chunk(range(1, 21)))
    assert answer["queued"] == 20
    assert answer["ignored"] == 0

    await wait_until(lambda: len(fake_web.final_results()) == 20, "20 final results")

    assert sorted(result["job_id"] for result in fake_web.final_results()) == list(range(1, 21))
    assert {result["status"] for result in fake_web.results} == {"sent"}
    assert sorted(fake_gateway.keys()) == sorted(f"postmill-7-{job_id}" for job_id in range(1, 21))
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert await client.xlen(KEYS.job_stream(7)) == 0
    assert (await client.xpending(KEYS.job_stream(7), JOB_GROUP))["pending"] == 0
    await wait_until(lambda: _is_empty(client, KEYS.result_stream), "an empty result stream")
    await client.aclose()


async def _is_empty(client, stream):
    return await client.xlen(stream) == 0


async def test_message_rendered_for_contact(start_service, fake_gateway, fake_web, http):
    service = await start_service()
    await configure(http, service)
    builder = ChunkBuilder(attributes={"city": "Oslo & Bergen"})
    await queue(http, service, builder.chunk([1]))
    await wait_until(lambda: fake_web.final_results(), "a final result")

    request = fake_gateway.requests[0]
    assert request.username == "postmill"
    assert request.password == "gateway-pa55word"
    assert request.body["from"] == {"name": "Postmill News", "email": "news@example.com"}
    assert request.body["to"] == {"name": "Contact 1", "email": "contact1@example.com"}
    assert request.body["subject"] == "Hello First1"
    assert request.body["html"] == "<p>Hi First1 from Oslo &amp; Bergen</p>"
    assert request.body["text"] == "Hi First1"
    result = fake_web.final_results()[0]
    assert result["message_id"] == fake_gateway.accepted["postmill-7-1"]
    assert result["attempt"] == 1


async def test_unsubscribe_link_in_body_and_headers(start_service, fake_gateway, fake_web, http):
    service = await start_service()
    await configure(http, service)
    builder = ChunkBuilder(html='<p>Hi</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>')
    url = "https://news.example.com/unsubscribe/1001-abc"
    await queue(http, service, builder.chunk([1], {1: {**builder.contact(1), "unsubscribe_url": url}}))
    await wait_until(lambda: fake_web.final_results(), "a final result")

    request = fake_gateway.requests[0]
    assert request.body["html"] == f'<p>Hi</p><a href="{url}">Unsubscribe</a>'
    assert request.body["headers"] == {
        "List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


async def test_repeated_chunk_sends_nothing_twice(start_service, fake_gateway, fake_web, http):
    service = await start_service()
    await configure(http, service)
    builder = ChunkBuilder()
    await queue(http, service, builder.chunk(range(1, 6)))
    await wait_until(lambda: len(fake_web.final_results()) == 5, "5 final results")

    repeated = await queue(http, service, builder.chunk(range(1, 6)))
    assert (repeated["queued"], repeated["ignored"]) == (0, 5)
    overlapping = await queue(http, service, builder.chunk(range(4, 9)))
    assert (overlapping["queued"], overlapping["ignored"]) == (3, 2)
    await wait_until(lambda: len(fake_web.final_results()) == 8, "8 final results")

    keys = fake_gateway.keys()
    assert len(keys) == 8
    assert len(set(keys)) == 8
    assert sorted(result["job_id"] for result in fake_web.final_results()) == list(range(1, 9))


async def test_missing_variable_fails_only_that_job(start_service, fake_gateway, fake_web, http):
    service = await start_service()
    await configure(http, service)
    builder = ChunkBuilder(html="<p>Hi {{ first_name }}</p>")
    contact = builder.contact(2)
    del contact["first_name"]
    await queue(http, service, builder.chunk([1, 2, 3], contacts={2: contact}))
    await wait_until(lambda: len(fake_web.final_results()) == 3, "3 final results")

    failed = fake_web.results_of(2)
    assert len(failed) == 1
    assert failed[0]["status"] == "failed"
    assert "first_name" in failed[0]["error"]
    assert [result["status"] for result in fake_web.results_of(1)] == ["sent"]
    assert [result["status"] for result in fake_web.results_of(3)] == ["sent"]
    assert "postmill-7-2" not in fake_gateway.keys()


async def test_server_error_then_accepted(start_service, fake_gateway, fake_web, http):
    service = await start_service()
    await configure(http, service)
    fake_gateway.script("contact1@example.com", Answer(500), Answer(202))
    await queue(http, service, ChunkBuilder().chunk([1]))
    await wait_until(lambda: fake_web.final_results(), "a final result")

    results = fake_web.results_of(1)
    assert [(result["status"], result["attempt"]) for result in results] == [("retrying", 1), ("sent", 2)]
    assert "500" in results[0]["error"]
    assert results[1]["message_id"]
    assert fake_gateway.keys() == ["postmill-7-1", "postmill-7-1"]


async def test_timeout_is_retried(start_service, fake_gateway, fake_web, http):
    service = await start_service(gateway_timeout=0.2)
    await configure(http, service)
    fake_gateway.script("contact1@example.com", Answer(202, delay=3.0), Answer(202))
    await queue(http, service, ChunkBuilder().chunk([1]))
    await wait_until(lambda: fake_web.final_results(), "a final result")

    results = fake_web.results_of(1)
    assert [result["status"] for result in results] == ["retrying", "sent"]
    assert "timed out" in results[0]["error"]


async def test_bad_request_fails_at_once(start_service, fake_gateway, fake_web, http):
    service = await start_service()
    await configure(http, service)
    fake_gateway.script("contact1@example.com", Answer(400, {"error": "subject too long"}))
    await queue(http, service, ChunkBuilder().chunk([1]))
    await wait_until(lambda: fake_web.final_results(), "a final result")

    assert [result["status"] for result in fake_web.results_of(1)] == ["failed"]
    assert "subject too long" in fake_web.results_of(1)[0]["error"]
    assert len(fake_gateway.requests) == 1


async def test_lone_credential_refusal_retried(start_service, fake_gateway, fake_web, http, caplog):
    caplog.set_level(logging.DEBUG)
    service = await start_service()
    await configure(http, service)
    fake_gateway.script("contact1@example.com", Answer(401, {"error": "bad credentials"}))
    await queue(http, service, ChunkBuilder().chunk([1]))
    await wait_until(lambda: fake_web.final_results(), "a final result")

    results = fake_web.results_of(1)
    assert [result["status"] for result in results] == ["retrying", "sent"]
    assert "credentials (401)" in results[0]["error"]
    assert len(fake_gateway.requests) == 2
    assert "gateway-pa55word" not in caplog.text
    assert "gateway-pa55word" not in str(fake_web.results)


async def test_conflict_counts_as_sent(start_service, fake_gateway, fake_web, http):
    service = await start_service()
    await configure(http, service)
    fake_gateway.script("contact1@example.com", Answer(409, {"error": "seen before", "message_id": "msg_earlier"}))
    await queue(http, service, ChunkBuilder().chunk([1]))
    await wait_until(lambda: fake_web.final_results(), "a final result")

    result = fake_web.results_of(1)[0]
    assert result["status"] == "sent"
    assert result["message_id"] == "msg_earlier"


async def test_retries_exhausted_fail(start_service, fake_gateway, fake_web, http):
    service = await start_service(max_attempts=3)
    await configure(http, service)
    fake_gateway.script("contact1@example.com", Answer(503), Answer(429), Answer(502), Answer(202))
    await queue(http, service, ChunkBuilder().chunk([1]))
    await wait_until(lambda: fake_web.final_results(), "a final result")

    results = fake_web.results_of(1)
    assert [(result["status"], result["attempt"]) for result in results] == [
        ("retrying", 1), ("retrying", 2), ("failed", 3),
    ]
    assert "gave up after 3 attempts" in results[-1]["error"]
    assert len(fake_gateway.requests) == 3


async def test_unreachable_gateway_is_retried(start_service, fake_gateway, fake_web, http):
    await fake_gateway.stop()
    service = await start_service(max_attempts=2)
    await configure(http, service)
    await queue(http, service, ChunkBuilder().chunk([1]))
    await wait_until(lambda: fake_web.final_results(), "a final result")

    results = fake_web.results_of(1)
    assert [result["status"] for result in results] == ["retrying", "failed"]
    assert "connection failed" in results[-1]["error"]


async def test_missing_sender_fails_job(start_service, fake_gateway, fake_web, http):
    service = await start_service()
    await queue(http, service, ChunkBuilder().chunk([1]))
    await wait_until(lambda: fake_web.final_results(), "a final result")

    result = fake_web.results_of(1)[0]
    assert result["status"] == "failed"
    assert "from_email" in result["error"]
    assert fake_gateway.requests == []


async def test_sends_in_flight_limited(start_service, fake_gateway, fake_web, http, redis_url):
    fake_gateway.released.clear()
    service = await start_service(concurrency=3)
    await configure(http, service)
    await queue(http, service, ChunkBuilder().chunk(range(1, 11)))
    await wait_until(lambda: fake_gateway.in_flight == 3, "3 sends in flight")

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    pending = await client.xpending(KEYS.job_stream(7), JOB_GROUP)
    assert pending["pending"] == 3
    await client.aclose()

    fake_gateway.released.set()
    await wait_until(lambda: len(fake_web.final_results()) == 10, "10 final results")
    assert fake_gateway.max_in_flight == 3


async def test_gateway_url_credentials_used(start_service, fake_gateway, fake_web, http):
    url = f"http://urluser:urlpass@127.0.0.1:{fake_gateway.port}"
    service = await start_service(gateway_url=url)
    async with http.put(f"{service.url}/api/v1/settings", json={"from_email": "news@example.com"}) as response:
        assert response.status == 200
    await queue(http, service, ChunkBuilder().chunk([1]))
    await wait_until(lambda: fake_web.final_results(), "a final result")

    assert fake_gateway.requests[0].username == "urluser"
    assert fake_gateway.requests[0].password == "urlpass"
    assert "urlpass" not in repr(service.gateway)
