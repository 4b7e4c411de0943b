"""Several email_client processes on one Redis, and several campaigns at once, as real processes."""

from collections import Counter
from datetime import datetime

import redis.asyncio as redis

from email_client.keys import Keys
from email_client_peers import fake_web, http, wait_until  # noqa: F401 (fixtures)
from email_client_processes import (  # noqa: F401 (fixture)
    PREFIX,
    check_every_job_final_once,
    configure,
    processes,
    queue_jobs,
    wait_for_finals,
)

KEYS = Keys(PREFIX)


async def _accepted_at_least(gateway, http, count):
    return (await gateway.stats(http))["accepted"] >= count


async def test_survivor_finishes_killed_process_jobs(processes, fake_web, http):
    gateway = await processes.gateway(outcomes={"202": 0.9, "500": 0.1}, latency_ms=50)
    settings = {"concurrency": 10, "claim_idle_seconds": 1.0}
    first = await processes.email_client(gateway.url, fake_web, consumer_name="first", **settings)
    second = await processes.email_client(gateway.url, fake_web, consumer_name="second", **settings)
    await configure(http, first)
    await queue_jobs(http, first.url, range(1, 801))

    # The process that took the chunk starts at once; the other within a second, at its next look.
    await wait_until(lambda: "sent as" in second.log(), "the second process sending")
    await wait_until(lambda: _accepted_at_least(gateway, http, 100), "100 accepted emails")
    first.kill()
    assert "sent as" in first.log()
    assert len(fake_web.final_job_ids()) < 800, "the campaign finished before the kill"

    await wait_for_finals(fake_web, 800)
    await check_every_job_final_once(fake_web, gateway, http, range(1, 801))
    assert "claimed" in second.log()


async def test_second_campaign_not_kept_waiting(processes, fake_web, http):
    gateway = await processes.gateway(outcomes={"202": 1}, latency_ms=50)
    client = await processes.email_client(gateway.url, fake_web, concurrency=4)
    await configure(http, client)
    await queue_jobs(http, client.url, range(1, 401), campaign_id=1)
    await wait_for_finals(fake_web, 10, campaign_id=1)

    await queue_jobs(http, client.url, range(1001, 1021), campaign_id=2)
    await wait_for_finals(fake_web, 20, campaign_id=2)
    # Sending campaign 1 alone takes about 400 × 50 ms / 4 = 5 s, so campaign
    # 2 finishing first shows that both were sent side by side.
    assert len(fake_web.final_job_ids(campaign_id=1)) < 400

    await wait_for_finals(fake_web, 400, campaign_id=1)
    await check_every_job_final_once(fake_web, gateway, http, range(1, 401), campaign_id=1)
    await check_every_job_final_once(fake_web, gateway, http, range(1001, 1021), campaign_id=2)


async def test_rate_limit_shared_by_processes(processes, fake_web, http, redis_url):
    gateway = await processes.gateway(outcomes={"202": 1})
    settings = {"concurrency": 10, "rate_limit": 20}
    first = await processes.email_client(gateway.url, fake_web, consumer_name="first", **settings)
    second = await processes.email_client(gateway.url, fake_web, consumer_name="second", **settings)
    await configure(http, first)
    await queue_jobs(http, first.url, range(1, 101))
    await wait_for_finals(fake_web, 100)

    await check_every_job_final_once(fake_web, gateway, http, range(1, 101))
    assert "sent as" in first.log()
    assert "sent as" in second.log()

    # The limiter's own record: gateway attempts started per second of the Redis clock.
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    windows = [key async for key in client.scan_iter(KEYS.rate_window("*"))]
    per_second = [int(await client.get(key)) for key in windows]
    await client.aclose()
    stats = await gateway.stats(http)
    assert sum(per_second) == stats["accepted"] + stats["rejected"] + stats["duplicates"]
    assert max(per_second) == 20
    assert all(count <= 20 for count in per_second)

    # And what the gateway saw: accepted emails per second of its clock.
    accepted_at = [datetime.fromisoformat(message["accepted_at"]) for message in await gateway.accepted(http)]
    per_gateway_second = Counter(moment.replace(microsecond=0) for moment in accepted_at)
    assert max(per_gateway_second.values()) <= 20
