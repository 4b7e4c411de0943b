"""The stack under benchmark, an API client for it, and a sampler of each process's memory."""

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import psutil

from stack.launcher import Stack
from stack.services import Ports

REPOSITORY = Path(__file__).resolve().parent.parent
BENCH_USER = "bench@example.com"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def csv_of_contacts(count: int) -> bytes:
    lines = ["email,first_name,last_name,city"]
    lines.extend(f"person{number}@example.com,First{number},Last{number},City{number % 100}" for number in range(count))
    return ("\n".join(lines) + "\n").encode()


class BenchClient:
    """web's JSON API and pages with a bearer token, plus the mock gateway's own endpoints."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str):
        self._session = session
        self._base_url = base_url
        self._headers = {"Authorization": f"Bearer {token}"}

    async def _call(self, method: str, path: str, headers: dict | None = None, **kwargs):
        url = path if path.startswith("http") else self._base_url + path
        async with self._session.request(method, url, headers={**self._headers, **(headers or {})},
                                         **kwargs) as response:
            body = await response.json(content_type=None) if response.content_type == "application/json" else None
            if response.status >= 400:
                raise RuntimeError(f"{method} {path} returned status {response.status}: {body}")
            return body

    async def get_json(self, path: str):
        return await self._call("GET", path)

    async def post_json(self, path: str, body):
        return await self._call("POST", path, json=body)

    async def put_json(self, path: str, body):
        return await self._call("PUT", path, json=body)

    async def post_csv(self, path: str, body: bytes):
        return await self._call("POST", path, data=body, headers={"Content-Type": "text/csv"})

    async def sign_in(self, email: str, password: str) -> None:
        """Sign in through the login form, so that pages (which take no bearer token) can be timed."""
        async with self._session.get(self._base_url + "/login") as response:
            await response.read()
        token = next(cookie.value for cookie in self._session.cookie_jar if cookie.key == "_xsrf")
        form = {"email": email, "password": password, "_xsrf": token}
        async with self._session.post(self._base_url + "/login", data=form, allow_redirects=False) as response:
            if response.status != 303:
                raise RuntimeError(f"signing in as {email} failed with status {response.status}")

    async def time_get(self, path: str, repeats: int = 5) -> float:
        """Return the median milliseconds of `repeats` GET requests of a page or endpoint.

        A redirect counts as a failure, so that a login page is never timed in place of the page.
        """
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            async with self._session.get(self._base_url + path, headers=self._headers,
                                         allow_redirects=False) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"GET {path} returned status {response.status}")
            timings.append((time.perf_counter() - started) * 1000)
        return sorted(timings)[len(timings) // 2]

    async def reset_gateway(self, gateway_url: str) -> None:
        await self._call("POST", f"{gateway_url}/reset")

    async def gateway_stats(self, gateway_url: str) -> dict:
        return await self._call("GET", f"{gateway_url}/stats")


class BenchStack:
    """`python -m stack mock` in-process, on free ports, with the mock gateway accepting every message."""

    def __init__(self, data_dir: Path, latency_ms: int, concurrency: int):
        self.password = secrets.token_urlsafe(16)
        ports = Ports(web=free_port(), email_client=free_port(), mock_gateway=free_port())
        self.stack = Stack("mock", data_dir, ports, redis_port=free_port(), start_timeout=120, stop_grace=10)
        self.gateway_url = f"http://127.0.0.1:{ports.mock_gateway}"
        self.web_url = f"http://127.0.0.1:{ports.web}"
        self._environment = {
            "MOCK_GATEWAY_OUTCOMES": '{"202": 1}',
            "MOCK_GATEWAY_LATENCY_MS": str(latency_ms),
            "MOCK_GATEWAY_MAX_STORED_MESSAGES": "1000",
            "EMAIL_CLIENT_CONCURRENCY": str(concurrency),
            "EMAIL_CLIENT_LOG_LEVEL": "WARNING",
            "WEB_LOG_LEVEL": "WARNING",
            "MOCK_GATEWAY_LOG_LEVEL": "WARNING",
            # web creates this user at start; the benchmark signs in as it to time the pages.
            "WEB_ADMIN_EMAIL": BENCH_USER,
            "WEB_ADMIN_PASSWORD": self.password,
        }
        self.token = ""

    def start(self) -> None:
        os.environ.update(self._environment)
        self.stack.start()
        self.token = self._create_token()

    def stop(self) -> None:
        self.stack.stop()

    def _create_token(self) -> str:
        web = next(process for process in self.stack.processes if process.name == "web")
        result = subprocess.run(
            [sys.executable, "-m", "web", "create-token", "benchmark"], cwd=REPOSITORY,
            env={**os.environ, **web.spec.env}, capture_output=True, text=True, check=True,
        )
        return result.stdout.strip().splitlines()[-1].strip()

    def pids(self) -> dict[str, int]:
        """Return the process id of each service, valkey and the PostgreSQL postmaster."""
        pids = {process.name: process.process.pid for process in self.stack.processes}
        if self.stack.valkey is not None:
            pids["valkey"] = self.stack.valkey.process.pid
        if self.stack.postgres is not None:
            pids["postgres"] = self.stack.postgres.pid()
        return pids

    @asynccontextmanager
    async def client(self):
        timeout = aiohttp.ClientTimeout(total=1800)
        # unsafe=True: the default cookie jar keeps no cookies of an IP address such as 127.0.0.1.
        async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            client = BenchClient(session, self.web_url, self.token)
            await client.sign_in(BENCH_USER, self.password)
            yield client


class MemorySampler:
    """Samples the memory of each process every 0.2 s, in a thread.

    A process counts its resident set. PostgreSQL counts the proportional set
    of the postmaster and all its children, so that the shared buffers they
    all map are counted once.
    """

    INTERVAL = 0.2

    def __init__(self, pids: dict[str, int]):
        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._peaks = dict.fromkeys(pids, 0)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self.INTERVAL):
            for name, process in self._processes.items():
                try:
                    if name == "postgres":
                        members = [process, *process.children(recursive=True)]
                        used = sum(member.memory_full_info().pss for member in members)
                    else:
                        used = process.memory_info().rss
                except psutil.Error:
                    continue
                self._peaks[name] = max(self._peaks[name], used)

    def peaks_mb(self) -> dict[str, float]:
        return {name: peak / 2**20 for name, peak in self._peaks.items()}
