"""The whole campaign path across real processes: mock_gateway, email_client and web.

A realistic, messy export of 5,000 contacts is imported into a segment and a
campaign is sent through the mock gateway's default mix of answers. Every
valid distinct contact must get exactly one job with exactly one outcome, and
web's counts must match what the gateway itself accepted.
"""

import asyncio
import os
import random
import subprocess
import sys

import aiohttp
import pytest

from tests.conftest import COOKIE_SECRET, ApiClient
from tests.processes import REPOSITORY, free_port, start_service, stop_service
from tests.service_secrets import email_client_secrets, web_secrets

FIRST_NAMES = ["Zoë", "太郎", "Ana", "Søren", "José", "Łucja", "Amélie", "Mohammed", "Olu", "Chloé"]
LAST_NAMES = ["山田", "Ng", "O'Brien", "García", "Müller", "Dvořák", "Smith", "Kowalski"]
CITIES = ["Oslo", "東京", "São Paulo", "Zürich", "Lagos", ""]


def messy_export(rows: int, seed: int = 5) -> tuple[bytes, set[str], int]:
    """Build a `;`-delimited CSV with a byte-order mark and the faults of real exports.

    Returns the file, the valid distinct addresses (lower-cased) and how many
    of those have no city, so their template cannot be rendered.
    """
    generator = random.Random(seed)
    lines = ["Email;First Name;Last Name;Full Name;City;Plan"]
    valid: dict[str, str] = {}
    previous: list[str] = []
    for number in range(rows):
        kind = generator.random()
        first = generator.choice(FIRST_NAMES)
        last = generator.choice(LAST_NAMES)
        city = generator.choice(CITIES)
        if kind < 0.01:
            email = generator.choice([f"broken{number}@", f"no-at-sign{number}", f"two@@signs{number}.com", " "])
        elif kind < 0.03 and previous:
            email = generator.choice(previous).upper()
        else:
            email = f"{first.lower()}.{number}@example.org".replace("'", "")
        if generator.random() < 0.02:
            lines.append("")
        full_name = f'"{last}, {first}"' if generator.random() < 0.5 else f"{first} {last}"
        lines.append(f"{email};{first};{last};{full_name};{city};pro")
        if "@" in email and not email.endswith("@") and "@@" not in email:
            key = email.lower()
            if key not in valid:
                valid[key] = city
                previous.append(email)
    body = ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")
    without_city = sum(1 for city in valid.values() if not city)
    return body, set(valid), without_city


@pytest.fixture
async def system(tmp_path, database_url, redis_url):
    """The three services as real processes on free ports; yields API clients for web and the gateway.

    The web client sends an API token made with `python -m web create-token`.
    """
    gateway_port, email_client_port, web_port = free_port(), free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    processes = []
    try:
        processes.append(start_service("mock_gateway", {
            "MOCK_GATEWAY_PORT": str(gateway_port), "MOCK_GATEWAY_SEED": "11",
        }, gateway_port, tmp_path / "mock_gateway.log"))
        processes.append(start_service("email_client", {
            "EMAIL_CLIENT_PORT": str(email_client_port), "REDIS_URL": redis_url,
            "EMAIL_CLIENT_WEB_URL": f"http://127.0.0.1:{web_port}", "EMAIL_CLIENT_GATEWAY_URL": gateway_url,
            "EMAIL_CLIENT_RETRY_BASE_DELAY": "0.05", "EMAIL_CLIENT_RETRY_MAX_DELAY": "0.5",
            **email_client_secrets(),
        }, email_client_port, tmp_path / "email_client.log"))
        processes.append(start_service("web", {
            "WEB_PORT": str(web_port), "DATABASE_URL": database_url,
            "WEB_EMAIL_CLIENT_URL": f"http://127.0.0.1:{email_client_port}", "WEB_COOKIE_SECRET": COOKIE_SECRET,
            "WEB_PUBLIC_URL": f"http://127.0.0.1:{web_port}",
            **web_secrets(),
        }, web_port, tmp_path / "web.log"))
        created = subprocess.run(
            [sys.executable, "-m", "web", "create-token", "end-to-end test"], cwd=REPOSITORY,
            env={**os.environ, "DATABASE_URL": database_url}, capture_output=True, text=True, timeout=60, check=True,
        )
        headers = {"Authorization": f"Bearer {created.stdout.strip()}"}
        async with aiohttp.ClientSession(headers=headers) as web_session, aiohttp.ClientSession() as gateway_session:
            yield ApiClient(f"http://127.0.0.1:{web_port}", web_session), ApiClient(gateway_url, gateway_session)
    finally:
        for process in reversed(processes):
            stop_service(process)


async def all_jobs(api, campaign_id: int) -> list[dict]:
    jobs, after = [], ""
    while True:
        status, page = await api.get(f"/api/v1/campaigns/{campaign_id}/jobs?limit=500&after={after}")
        assert status == 200
        jobs.extend(page["items"])
        if page["next"] is None:
            return jobs
        after = page["next"]


async def accepted_messages(gateway) -> list[dict]:
    messages: list[dict] = []
    while True:
        status, page = await gateway.get(f"/messages?limit=500&offset={len(messages)}")
        assert status == 200, page
        messages.extend(page["items"])
        if len(messages) >= page["total"]:
            return messages


async def test_campaign_end_to_end(system):
    web, gateway = system
    body, valid_addresses, without_city = messy_export(5000)

    status, settings = await web.put("/api/v1/settings", json={
        "from_name": "Postmill Demo", "from_email": "news@example.com",
        "gateway_username": "demo", "gateway_password": "demo-password"})
    assert status == 200, settings
    assert settings["gateway_password_set"] is True
    assert "gateway_password" not in settings

    _, segment = await web.post("/api/v1/segments", json={"name": "Everyone"})
    status, report = await web.post(f"/api/v1/contacts/import?segment_id={segment['id']}", data=body,
                                    headers={"Content-Type": "text/csv"})
    assert status == 200, report
    assert report["created"] == len(valid_addresses)
    assert report["created"] + report["skipped"] == 5000
    assert all(error["reason"] for error in report["errors"])

    status, template = await web.post("/api/v1/templates", json={
        "name": "Spring news",
        "html": "<h1>Hello {{ first_name }} {{ last_name }}</h1><p>News for {{ City }} on the {{ Plan }} plan.</p>",
        "text": "Hello {{ first_name }}, news for {{ City }}.",
    })
    assert status == 201, template
    status, campaign = await web.post("/api/v1/campaigns", json={
        "name": "Spring", "segment_id": segment["id"], "template_id": template["id"],
        "subject": "{{ first_name }}, spring is here"})
    assert status == 201, campaign
    status, sending = await web.post(f"/api/v1/campaigns/{campaign['id']}/send")
    assert status == 202, sending
    assert sending["jobs_total"] == len(valid_addresses)

    deadline = asyncio.get_running_loop().time() + 240
    while True:
        _, current = await web.get(f"/api/v1/campaigns/{campaign['id']}")
        if current["status"] == "finished":
            break
        assert asyncio.get_running_loop().time() < deadline, f"campaign not finished: {current['counts']}"
        await asyncio.sleep(0.5)

    jobs = await all_jobs(web, campaign["id"])
    assert len(jobs) == len(valid_addresses)
    assert {job["email"].lower() for job in jobs} == valid_addresses
    assert len({job["contact_id"] for job in jobs}) == len(jobs)
    assert all(job["status"] in ("sent", "failed") for job in jobs)

    counts = current["counts"]
    assert counts["pending"] == counts["retrying"] == 0
    assert counts["sent"] + counts["failed"] == len(valid_addresses)

    _, stats = await gateway.get("/stats")
    assert stats["accepted"] == counts["sent"]
    assert stats["duplicates"] == 0
    messages = await accepted_messages(gateway)
    keys = [message["idempotency_key"] for message in messages]
    assert len(keys) == len(set(keys)) == counts["sent"]
    for message in messages[:5]:
        status, detail = await gateway.get(f"/messages/{message['message_id']}")
        assert status == 200, detail
        assert detail["headers"]["List-Unsubscribe"].startswith(f"<{web.base_url}/unsubscribe/"), detail["headers"]
    sent_ids = {f"postmill-{campaign['id']}-{job['id']}" for job in jobs if job["status"] == "sent"}
    assert set(keys) == sent_ids

    failures = [job for job in jobs if job["status"] == "failed"]
    assert all(job["error"] for job in failures)
    render_failures = [job for job in failures if "City" in job["error"]]
    assert len(render_failures) == without_city
    assert all(job["message_id"] for job in jobs if job["status"] == "sent")
