"""The reporter posts every job result to web, in batches, even when web is down for a while."""

import redis.asyncio as redis

from email_client.keys import Keys
from email_client_peers import (  # noqa: F401 (fixtures)
    ChunkBuilder,
    fake_gateway,
    fake_web,
    http,
    start_service,
    wait_until,
)

KEYS = Keys("test:")


async def start_sending(http, service, job_ids):
    async with http.put(f"{service.url}/api/v1/settings", json={"from_email": "news@example.com"}) as response:
        assert response.status == 200
    async with http.post(f"{service.url}/api/v1/campaigns/7/jobs", json=ChunkBuilder().chunk(job_ids)) as response:
        assert response.status == 202


async def test_results_posted_after_web_errors(start_service, fake_web, http, redis_url):
    fake_web.unavailable_posts = 4
    service = await start_service()
    await start_sending(http, service, [1, 2, 3])

    await wait_until(lambda: len(fake_web.final_results()) == 3, "3 final results")
    assert fake_web.posts > 4
    assert sorted(result["job_id"] for result in fake_web.results) == [1, 2, 3]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    await wait_until(lambda: _has_length(client, KEYS.result_stream, 0), "an empty result stream")
    await client.aclose()


async def test_results_posted_after_web_returns(start_service, fake_web, http, redis_url):
    await fake_web.stop()
    service = await start_service()
    await start_sending(http, service, [1, 2, 3])
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    await wait_until(lambda: _has_length(client, KEYS.job_stream(7), 0), "every job to be sent")
    assert await client.xlen(KEYS.result_stream) == 3

    await fake_web.start()
    await wait_until(lambda: len(fake_web.final_results()) == 3, "3 final results")
    assert sorted(result["job_id"] for result in fake_web.results) == [1, 2, 3]
    await wait_until(lambda: _has_length(client, KEYS.result_stream, 0), "an empty result stream")
    await client.aclose()


async def test_batches_limited_to_batch_size(start_service, fake_web, http):
    # Web is down while the jobs are sent, so that the results pile up.
    await fake_web.stop()
    service = await start_service(report_batch_size=2)
    await start_sending(http, service, [1, 2, 3, 4, 5])
    await wait_until(lambda: _has_length(service.redis, KEYS.result_stream, 5), "5 results in the stream")

    await fake_web.start()
    await wait_until(lambda: len(fake_web.final_results()) == 5, "5 final results")
    assert max(fake_web.batch_sizes) == 2
    assert sorted(result["job_id"] for result in fake_web.results) == [1, 2, 3, 4, 5]


async def _has_length(client, stream, length):
    return await client.xlen(stream) == length
