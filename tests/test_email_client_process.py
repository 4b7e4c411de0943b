"""`python -m email_client` as a real process: it starts, sends a chunk and stops on SIGTERM."""

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from email_client_peers import ChunkBuilder, fake_gateway, fake_web, http, service_environ, wait_until  # noqa: F401
from stack.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "process-pa55word"


@pytest.fixture
async def email_client_process(redis_url, fake_gateway, fake_web, tmp_path):
    """A running `python -m email_client`; yields its base URL and its stderr log file."""
    port = free_port()
    environ = dict(os.environ)
    environ.update(service_environ(redis_url, fake_gateway, fake_web, port=port, consumer_name="", log_level="DEBUG"))
    log_path = tmp_path / "email_client.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "email_client", cwd=ROOT, env=environ,
            stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
        )
    try:
        await wait_until(lambda: "listening on" in log_path.read_text() or process.returncode is not None, "start")
        assert process.returncode is None, log_path.read_text()
        yield f"http://127.0.0.1:{port}", process, log_path
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_process_sends_and_stops(email_client_process, fake_gateway, fake_web, http):
    base_url, process, log_path = email_client_process
    settings = {"from_email": "news@example.com", "gateway_username": "postmill", "gateway_password": PASSWORD}
    async with http.put(f"{base_url}/api/v1/settings", json=settings) as response:
        assert response.status == 200
    async with http.post(f"{base_url}/api/v1/campaigns/7/jobs", json=ChunkBuilder().chunk([1, 2, 3])) as response:
        assert response.status == 202
        assert await response.json() == {"queued": 3, "ignored": 0, "backlog": 3}

    await wait_until(lambda: len(fake_web.final_results()) == 3, "3 final results")
    assert sorted(result["job_id"] for result in fake_web.final_results()) == [1, 2, 3]
    assert {request.password for request in fake_gateway.requests} == {PASSWORD}

    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), timeout=15) == 0
    log = log_path.read_text()
    assert f"listening on {base_url}" in log
    assert "email_client stopped" in log
    assert PASSWORD not in log


async def test_process_healthz(email_client_process, http):
    base_url, _, _ = email_client_process
    async with http.get(f"{base_url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
