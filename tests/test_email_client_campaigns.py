"""Pause, resume and cancel over HTTP, with email_client in-process and a gateway that can hold sends."""

import json

import redis.asyncio as redis

from email_client.campaigns import Campaigns
from email_client.chunks import parse_chunk
from email_client.keys import JOB_GROUP, Keys
from email_client.queues import Queues
from email_client.streams import GroupReader
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


async def configure(http, service):
    async with http.put(f"{service.url}/api/v1/settings", json={"from_email": "news@example.com"}) as response:
        assert response.status == 200


async def queue(http, service, body):
    campaign_id = body["campaign"]["id"]
    async with http.post(f"{service.url}/api/v1/campaigns/{campaign_id}/jobs", json=body) as response:
        assert response.status == 202, await response.text()
        return await response.json()


async def act(http, service, campaign_id, action):
    async with http.post(f"{service.url}/api/v1/campaigns/{campaign_id}/{action}") as response:
        return response.status, await response.json()


def gateway_job_ids(gateway, campaign_id):
    prefix = f"postmill-{campaign_id}-"
    return sorted(int(key[len(prefix):]) for key in gateway.keys() if key.startswith(prefix))


async def has_pending(client, count):
    """Return whether `count` jobs of campaign 7 are delivered to a worker and not finished."""
    return (await client.xpending(KEYS.job_stream(7), JOB_GROUP))["pending"] == count


async def send_other_campaign(http, service, web):
    """Send campaign 8 to the end: the workers kept reading while campaign 7 stood still."""
    await queue(http, service, ChunkBuilder(campaign_id=8).chunk(range(101, 104)))
    await wait_until(lambda: len(web.final_job_ids(8)) == 3, "campaign 8 sent")


async def test_paused_jobs_wait_for_resume(start_service, fake_gateway, fake_web, http):
    fake_gateway.released.clear()
    service = await start_service(concurrency=2)
    await configure(http, service)
    await queue(http, service, ChunkBuilder().chunk(range(1, 11)))
    await wait_until(lambda: fake_gateway.in_flight == 2, "2 sends in flight")

    assert await act(http, service, 7, "pause") == (200, {"status": "paused"})
    assert await act(http, service, 7, "pause") == (200, {"status": "paused"})
    fake_gateway.released.set()
    await wait_until(lambda: len(fake_web.final_job_ids(7)) == 2, "the 2 sends in flight to finish")
    await send_other_campaign(http, service, fake_web)
    assert len(gateway_job_ids(fake_gateway, 7)) == 2
    answer = await queue(http, service, ChunkBuilder().chunk([11]))
    assert answer["queued"] == 1
    assert answer["backlog"] == 9

    assert await act(http, service, 7, "resume") == (200, {"status": "sending"})
    await wait_until(lambda: len(fake_web.final_job_ids(7)) == 11, "11 final results")
    assert gateway_job_ids(fake_gateway, 7) == list(range(1, 12))
    assert {result["status"] for result in fake_web.final_results()} == {"sent"}


async def test_cancel_drops_queued_jobs(start_service, fake_gateway, fake_web, http):
    fake_gateway.released.clear()
    service = await start_service(concurrency=2)
    await configure(http, service)
    await queue(http, service, ChunkBuilder().chunk(range(1, 11)))
    await wait_until(lambda: fake_gateway.in_flight == 2, "2 sends in flight")

    assert await act(http, service, 7, "cancel") == (200, {"status": "cancelled", "dropped": 8})
    assert await act(http, service, 7, "cancel") == (200, {"status": "cancelled", "dropped": 0})
    fake_gateway.released.set()
    await wait_until(lambda: len(fake_web.final_job_ids(7)) == 2, "the 2 sends in flight to finish")
    await send_other_campaign(http, service, fake_web)

    assert len(gateway_job_ids(fake_gateway, 7)) == 2
    assert len([result for result in fake_web.results if result["campaign_id"] == 7]) == 2
    answer = await queue(http, service, ChunkBuilder().chunk([11, 12]))
    assert answer == {"queued": 0, "ignored": 2, "backlog": 0}


async def test_jobs_read_ahead_are_set_aside(start_service, fake_gateway, fake_web, http, redis_url):
    """With concurrency 10 two jobs are read ahead: delivered, so cancel cannot drop them, and never sent."""
    fake_gateway.released.clear()
    service = await start_service(concurrency=10)
    await configure(http, service)
    await queue(http, service, ChunkBuilder().chunk(range(1, 21)))
    await wait_until(lambda: fake_gateway.in_flight == 10, "10 sends in flight")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    await wait_until(lambda: has_pending(client, 12), "12 jobs delivered")

    assert await act(http, service, 7, "cancel") == (200, {"status": "cancelled", "dropped": 8})
    fake_gateway.released.set()
    await wait_until(lambda: len(fake_web.final_job_ids(7)) == 10, "the 10 sends in flight to finish")
    await wait_until(lambda: has_pending(client, 0), "the jobs read ahead to be dropped")
    await send_other_campaign(http, service, fake_web)
    assert len(gateway_job_ids(fake_gateway, 7)) == 10
    assert await client.xlen(KEYS.job_stream(7)) == 0
    await client.aclose()


async def test_cancel_drops_paused_jobs(start_service, fake_gateway, fake_web, http):
    service = await start_service()
    await configure(http, service)
    await act(http, service, 7, "pause")
    await queue(http, service, ChunkBuilder().chunk(range(1, 6)))

    status, answer = await act(http, service, 7, "cancel")
    assert (status, answer) == (200, {"status": "cancelled", "dropped": 5})
    await send_other_campaign(http, service, fake_web)
    assert gateway_job_ids(fake_gateway, 7) == []
    assert fake_web.final_job_ids(7) == set()


async def test_cancelled_campaign_not_resumed(start_service, fake_web, http):
    service = await start_service()
    await act(http, service, 7, "cancel")

    for action in ("resume", "pause"):
        status, answer = await act(http, service, 7, action)
        assert status == 409
        assert answer["status"] == "cancelled"
        assert "cancelled" in answer["error"]


async def test_unknown_campaign_actions_succeed(start_service, http):
    service = await start_service()
    assert await act(http, service, 99, "pause") == (200, {"status": "paused"})
    assert await act(http, service, 98, "resume") == (200, {"status": "sending"})
    assert await act(http, service, 97, "cancel") == (200, {"status": "cancelled", "dropped": 0})


async def test_campaign_zero_rejected(start_service, http):
    service = await start_service()
    status, answer = await act(http, service, 0, "pause")
    assert status == 400
    assert "positive integer" in answer["error"]
    async with http.get(f"{service.url}/api/v1/campaigns/7/pause") as response:
        assert response.status == 405


async def test_render_failure_fails_only_its_job(start_service, fake_gateway, fake_web, http):
    service = await start_service()
    await configure(http, service)
    builder = ChunkBuilder(html="<p>Hi {{ first_name }}</p>")
    contact = builder.contact(3)
    del contact["first_name"]
    await act(http, service, 7, "pause")
    await queue(http, service, builder.chunk(range(1, 6), contacts={3: contact}))
    await act(http, service, 7, "resume")
    await wait_until(lambda: len(fake_web.final_job_ids(7)) == 5, "5 final results")

    statuses = {result["job_id"]: result["status"] for result in fake_web.final_results()}
    assert statuses == {1: "sent", 2: "sent", 3: "failed", 4: "sent", 5: "sent"}
    assert "first_name" in fake_web.results_of(3)[0]["error"]
    assert gateway_job_ids(fake_gateway, 7) == [1, 2, 4, 5]


async def test_refusals_pause_in_process(start_service, fake_gateway, fake_web, http):
    service = await start_service(concurrency=1, max_attempts=2, pause_after_refusals=2)
    await configure(http, service)
    fake_gateway.script("contact1@example.com", Answer(403), Answer(403))
    await queue(http, service, ChunkBuilder().chunk([1, 2]))

    await wait_until(lambda: fake_web.events, "a pause event")
    assert fake_web.events == [{
        "campaign_id": 7, "event": "paused",
        "reason": "the gateway refused the credentials (403) on 2 sends in a row",
    }]
    assert await service.redis.get(KEYS.credential_refusals) == "2"
    await configure(http, service)
    assert await service.redis.get(KEYS.credential_refusals) is None
    await send_other_campaign(http, service, fake_web)
    assert fake_web.final_job_ids(7) == set()

    # One more refusal after the resume is retried like a temporary error.
    fake_gateway.script("contact1@example.com", Answer(403))
    await act(http, service, 7, "resume")
    await wait_until(lambda: len(fake_web.final_job_ids(7)) == 2, "2 final results")
    assert {result["status"] for result in fake_web.final_results()} == {"sent"}
    assert len(fake_web.events) == 1


async def test_taken_job_parked_then_queued_again(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    await Queues(client, KEYS).queue_chunk(parse_chunk(7, ChunkBuilder().chunk([1, 2])))
    reader = GroupReader(client, JOB_GROUP, "worker", claim_idle=60.0)
    [(_, entry_id, _)] = await reader.read([KEYS.job_stream(7)], 1, block_ms=100)
    campaigns = Campaigns(client, KEYS)

    await campaigns.pause(7)
    assert await campaigns.set_aside_unless_sending(7, [entry_id]) == "paused"
    assert await campaigns.set_aside_unless_sending(7, [entry_id]) == "paused"
    [parked] = await client.lrange(KEYS.parked_jobs(7), 0, -1)
    assert json.loads(parked)["job_id"] == "1"
    assert (await client.xpending(KEYS.job_stream(7), JOB_GROUP))["pending"] == 0
    assert await client.smembers(KEYS.active_campaigns) == set()

    assert await campaigns.resume(7) == 1
    entries = await client.xrange(KEYS.job_stream(7))
    assert sorted(fields["job_id"] for _, fields in entries) == ["1", "2"]
    assert json.loads(entries[-1][1]["contact"])["email"] == "contact1@example.com"
    assert await client.smembers(KEYS.active_campaigns) == {"7"}
    assert await client.llen(KEYS.parked_jobs(7)) == 0
    await client.aclose()
