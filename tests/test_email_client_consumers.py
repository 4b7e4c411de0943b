"""Several email_client processes on one Redis, and jobs left behind by a stopped one."""

import json

import redis.asyncio as redis

from email_client.chunks import parse_chunk
from email_client.keys import JOB_GROUP, Keys
from email_client.queues import JobEntry, JobResult, Queues
from email_client.streams import GroupReader
from email_client_peers import (  # noqa: F401 (fixtures)
    ChunkBuilder,
    fake_gateway,
    fake_web,
    http,
    start_service,
    wait_until,
)

KEYS = Keys("test:")


async def queue_directly(client, job_ids):
    """Queue jobs of campaign 7 as the API does, with no email_client running."""
    await Queues(client, KEYS).queue_chunk(parse_chunk(7, ChunkBuilder().chunk(job_ids)))
    await client.hset(KEYS.settings, mapping={"from_email": "news@example.com"})


async def read_as(client, consumer, count):
    """Read `count` jobs as `consumer` without finishing them, as a process that then died."""
    reader = GroupReader(client, JOB_GROUP, consumer, claim_idle=60.0)
    return await reader.read([KEYS.job_stream(7)], count, block_ms=100)


def final_job_ids(web):
    return sorted(result["job_id"] for result in web.final_results())


async def test_two_consumers_share_jobs(start_service, fake_gateway, fake_web, http, redis_url):
    fake_gateway.released.clear()
    first = await start_service(concurrency=2, consumer_name="first")
    second = await start_service(concurrency=2, consumer_name="second")
    async with http.put(f"{first.url}/api/v1/settings", json={"from_email": "news@example.com"}) as response:
        assert response.status == 200
    async with http.post(f"{first.url}/api/v1/campaigns/7/jobs", json=ChunkBuilder().chunk(range(1, 11))) as response:
        assert response.status == 202

    # Each process sends at most 2 at once, so 4 in flight means both take part.
    await wait_until(lambda: fake_gateway.in_flight == 4, "4 sends in flight")
    assert first.worker.in_flight == 2
    assert second.worker.in_flight == 2

    fake_gateway.released.set()
    await wait_until(lambda: len(fake_web.final_results()) == 10, "10 final results")
    assert final_job_ids(fake_web) == list(range(1, 11))
    assert len(fake_gateway.keys()) == 10


async def test_restart_sends_own_pending_jobs(start_service, fake_gateway, fake_web, redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    await queue_directly(client, [1, 2, 3])
    assert len(await read_as(client, "test-consumer", 2)) == 2

    await start_service(consumer_name="test-consumer")
    await wait_until(lambda: len(fake_web.final_results()) == 3, "3 final results")
    assert final_job_ids(fake_web) == [1, 2, 3]
    assert sorted(fake_gateway.keys()) == ["postmill-7-1", "postmill-7-2", "postmill-7-3"]
    await client.aclose()


async def test_jobs_of_stopped_consumer_claimed(start_service, fake_gateway, fake_web, redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    await queue_directly(client, [1, 2, 3])
    assert len(await read_as(client, "stopped-consumer", 3)) == 3

    await start_service(consumer_name="test-consumer", claim_idle_seconds=0.2)
    await wait_until(lambda: len(fake_web.final_results()) == 3, "3 final results")
    assert final_job_ids(fake_web) == [1, 2, 3]
    pending = await client.xpending(KEYS.job_stream(7), JOB_GROUP)
    assert pending["pending"] == 0
    await client.aclose()


async def test_stop_leaves_unfinished_jobs_pending(start_service, fake_gateway, fake_web, http, redis_url):
    fake_gateway.released.clear()
    service = await start_service()
    async with http.put(f"{service.url}/api/v1/settings", json={"from_email": "news@example.com"}) as response:
        assert response.status == 200
    async with http.post(f"{service.url}/api/v1/campaigns/7/jobs", json=ChunkBuilder().chunk([1, 2])) as response:
        assert response.status == 202
    await wait_until(lambda: fake_gateway.in_flight == 2, "2 sends in flight")

    await service.stop(grace=0.1)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert (await client.xpending(KEYS.job_stream(7), JOB_GROUP))["pending"] == 2
    assert fake_web.final_results() == []

    fake_gateway.released.set()
    await start_service()
    await wait_until(lambda: len(fake_web.final_results()) == 2, "2 final results")
    assert final_job_ids(fake_web) == [1, 2]
    await client.aclose()


async def test_finish_job_records_one_outcome(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    await queue_directly(client, [1])
    [(_, entry_id, fields)] = await read_as(client, "test-consumer", 1)
    queues = Queues(client, KEYS)
    job = JobEntry.from_fields(entry_id, fields)
    result = JobResult(job_id=1, campaign_id=7, status="sent", attempt=1, message_id="msg_1")

    assert await queues.finish_jobs([(job, result)]) == [True]
    assert await queues.finish_jobs([(job, result)]) == [False]

    results = await client.xrange(KEYS.result_stream)
    assert [json.loads(fields["result"])["job_id"] for _, fields in results] == [1]
    assert await client.xlen(KEYS.job_stream(7)) == 0
    assert await client.smembers(KEYS.active_campaigns) == set()
    await client.aclose()


async def test_lost_group_created_again(start_service, fake_gateway, fake_web, http, redis_url):
    service = await start_service()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    async with http.put(f"{service.url}/api/v1/settings", json={"from_email": "news@example.com"}) as response:
        assert response.status == 200
    # A stream in the active set without its group, as after a partial restore.
    await client.xadd(KEYS.job_stream(7), {"campaign_id": "7", "job_id": "1", "contact": '{"email": "a@example.com"}'})
    await client.sadd(KEYS.active_campaigns, "7")
    await client.delete(KEYS.job_stream(7))
    await client.xadd(KEYS.job_stream(7), {"campaign_id": "7", "job_id": "1", "contact": '{"email": "a@example.com"}'})
    await client.hset(KEYS.campaign(7), mapping={"subject": "Hello", "html": "<p>Hi</p>", "text": ""})

    await wait_until(lambda: len(fake_web.final_results()) == 1, "1 final result")
    async with http.post(f"{service.url}/api/v1/campaigns/7/jobs", json=ChunkBuilder().chunk([2, 3])) as response:
        assert response.status == 202
    await wait_until(lambda: len(fake_web.final_results()) == 3, "3 final results")
    assert final_job_ids(fake_web) == [1, 2, 3]
    await client.aclose()
