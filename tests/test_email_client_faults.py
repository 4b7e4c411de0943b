"""email_client under faults, as real processes: crashes, web and Redis outages, gateway errors.

Each test runs `python -m email_client` against the real mock gateway and a
fake web that records results, and checks that every job ends `sent` or
`failed` exactly once and that the gateway accepted no email twice.
"""

import asyncio

import pytest

from email_client_peers import ChunkBuilder, fake_web, http, wait_until  # noqa: F401 (fixtures)
from email_client_processes import (  # noqa: F401 (fixture)
    check_every_job_final_once,
    configure,
    post_chunk,
    processes,
    queue_jobs,
    wait_for_finals,
)
from stack.servers import ValkeyServer
from tests.processes import free_port


async def dispatch(http, client, job_ids, acknowledged: list, chunk_size=25):
    """Offer chunks as web's dispatcher does: each chunk until email_client responds 202.

    Appends the number of each chunk that was acknowledged to `acknowledged`.
    """
    builder = ChunkBuilder()
    job_ids = list(job_ids)
    for number, start in enumerate(range(0, len(job_ids), chunk_size)):
        body = builder.chunk(job_ids[start:start + chunk_size])
        while True:
            try:
                await post_chunk(http, client.url, body)
                break
            except (OSError, AssertionError):
                # email_client is down or responded 503, so web offers the chunk again later.
                await asyncio.sleep(0.05)
        acknowledged.append(number)
        # web hands chunks over one by one, not all at once.
        await asyncio.sleep(0.05)


KILL_POINTS = [
    # (kill point, restart under another consumer name)
    ("while chunks arrive", False),
    ("mid-send", False),
    ("while results are reported", False),
    ("mid-send", True),
    ("while results are reported", True),
]


@pytest.mark.parametrize(
    "kill_point, other_name", KILL_POINTS,
    ids=[f"{point}, {'another' if other else 'same'} name" for point, other in KILL_POINTS],
)
async def test_sigkill_then_restart(processes, fake_web, http, kill_point, other_name):
    job_ids = range(1, 401)
    gateway = await processes.gateway(outcomes={"202": 0.9, "500": 0.1}, latency_ms=50)
    client = await processes.email_client(
        gateway.url, fake_web, consumer_name="first", concurrency=20, claim_idle_seconds=1.0
    )
    await configure(http, client)
    if kill_point == "while results are reported":
        fake_web.response_delay = 0.3

    acknowledged = []
    dispatching = asyncio.create_task(dispatch(http, client, job_ids, acknowledged))
    if kill_point == "while chunks arrive":
        await wait_until(lambda: len(acknowledged) >= 3, "3 chunks queued")
    elif kill_point == "mid-send":
        await dispatching
        await wait_until(lambda: _accepted_at_least(gateway, http, 40), "40 accepted emails")
    else:
        await dispatching
        await wait_until(lambda: fake_web.posts >= 3 and fake_web.posts_in_progress, "a post in progress")
    client.kill()
    assert len(fake_web.final_job_ids()) < 400, "the campaign finished before the kill"
    if kill_point == "while chunks arrive":
        assert not dispatching.done()

    fake_web.response_delay = 0.0
    await client.start(consumer_name="second" if other_name else "first")
    await dispatching
    await wait_for_finals(fake_web, 400)

    await check_every_job_final_once(fake_web, gateway, http, job_ids)
    if other_name:
        # The new consumer took over what the killed one had pending.
        assert "claimed" in client.log()


async def _accepted_at_least(gateway, http, count):
    return (await gateway.stats(http))["accepted"] >= count


async def test_sending_goes_on_while_web_down(processes, fake_web, http):
    await fake_web.stop()
    gateway = await processes.gateway(outcomes={"202": 1})
    client = await processes.email_client(gateway.url, fake_web)
    await configure(http, client)
    await queue_jobs(http, client.url, range(1, 101))

    await wait_until(lambda: _accepted_at_least(gateway, http, 100), "100 accepted emails")
    assert fake_web.results == []

    await fake_web.start()
    await wait_for_finals(fake_web, 100)
    outcome = await check_every_job_final_once(fake_web, gateway, http, range(1, 101))
    assert {status for status, *_ in outcome.values()} == {"sent"}


async def test_valkey_restart_mid_campaign(processes, fake_web, http, tmp_path):
    valkey = ValkeyServer(tmp_path / "valkey", port=free_port())
    valkey.start()
    try:
        gateway = await processes.gateway(outcomes={"202": 1}, latency_ms=50)
        client = await processes.email_client(gateway.url, fake_web, redis_url=valkey.url, concurrency=5)
        await configure(http, client)
        await queue_jobs(http, client.url, range(1, 201))
        await wait_for_finals(fake_web, 20)

        await asyncio.to_thread(valkey.stop)
        await wait_until(lambda: "Redis is unavailable" in client.log(), "the outage warning")
        async with http.get(f"{client.url}/healthz") as response:
            assert response.status == 503
        # Down for a while, so that the loops go through several retries.
        await asyncio.sleep(2.0)
        await asyncio.to_thread(valkey.start)

        await wait_for_finals(fake_web, 200)
        await check_every_job_final_once(fake_web, gateway, http, range(1, 201))
        log = client.log()
        assert "Redis is available again" in log
        # One warning per outage, not one per failed command.
        assert 1 <= log.count("Redis is unavailable") <= 3
        assert "Traceback" not in log
    finally:
        await processes.stop_all()
        valkey.stop()


async def test_gateway_errors_retried_until_final(processes, fake_web, http):
    gateway = await processes.gateway(outcomes={"500": 0.5, "429": 0.3, "202": 0.2}, seed=3)
    client = await processes.email_client(gateway.url, fake_web, max_attempts=5)
    await configure(http, client)
    await queue_jobs(http, client.url, range(1, 101))
    await wait_for_finals(fake_web, 100)

    outcome = await check_every_job_final_once(fake_web, gateway, http, range(1, 101))
    statuses = [status for status, *_ in outcome.values()]
    assert 0 < statuses.count("failed") < 100
    for job_id, (status, _, attempt, error) in outcome.items():
        retries = [result["attempt"] for result in fake_web.results_of(job_id) if result["status"] == "retrying"]
        assert retries == list(range(1, attempt)), f"job {job_id}"
        if status == "failed":
            assert attempt == 5, f"job {job_id} failed with retries left"
            assert "gave up after 5 attempts" in error
    stats = await gateway.stats(http)
    assert stats["accepted"] + stats["rejected"] == sum(attempt for _, _, attempt, _ in outcome.values())


async def test_refused_credentials_pause_campaign(processes, fake_web, http):
    gateway = await processes.gateway(outcomes={"401": 1})
    client = await processes.email_client(
        gateway.url, fake_web, concurrency=5, max_attempts=5, pause_after_refusals=5
    )
    await configure(http, client)
    await queue_jobs(http, client.url, range(1, 31))

    await wait_until(lambda: fake_web.events, "a pause event")
    [event] = fake_web.events
    assert event["campaign_id"] == 7
    assert event["event"] == "paused"
    assert "(401)" in event["reason"]
    assert "in a row" in event["reason"]
    # Jobs in flight at the pause are set aside as they come back, so all 30
    # end up queued or parked, and none failed.
    await wait_until(lambda: _backlog_is(http, client, 30), "all 30 jobs set aside")
    assert fake_web.final_results() == []

    await gateway.stop()
    await gateway.start(outcomes={"202": 1})
    async with http.post(f"{client.url}/api/v1/campaigns/7/resume") as response:
        assert response.status == 200
        assert await response.json() == {"status": "sending"}
    await wait_for_finals(fake_web, 30)
    outcome = await check_every_job_final_once(fake_web, gateway, http, range(1, 31))
    assert {status for status, *_ in outcome.values()} == {"sent"}
    assert len(fake_web.events) == 1


async def _backlog_is(http, client, count):
    # An empty chunk queues nothing and reports the campaign's backlog.
    answer = await post_chunk(http, client.url, ChunkBuilder().chunk([]))
    return answer["backlog"] == count


async def test_default_mix_never_pauses(processes, fake_web, http):
    gateway = await processes.gateway(seed=11)
    client = await processes.email_client(gateway.url, fake_web, max_attempts=5)
    await configure(http, client)
    await queue_jobs(http, client.url, range(1, 1001), chunk_size=500)
    await wait_for_finals(fake_web, 1000, timeout=120)

    await check_every_job_final_once(fake_web, gateway, http, range(1, 1001))
    refusals = [result for result in fake_web.results if "credentials" in (result["error"] or "")]
    assert refusals, "the mix should contain some 401 and 403"
    assert fake_web.events == []
