"""`python -m stack mock` as a real process: it starts everything, then stops everything on Ctrl-C.

The stack starts its own embedded PostgreSQL and valkey in a temporary data
folder, on free ports, even when DATABASE_URL and REDIS_URL are set.
"""

import http.cookiejar
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil

from stack.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 180.0
STOP_TIMEOUT = 90.0

# Health checks go straight to 127.0.0.1, never through a proxy from http_proxy.
_DIRECT_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class OutputReader:
    """Collects the lines of a child's output in a thread, so that the test can wait for one with a timeout."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line)

    def wait_for(self, text: str, timeout: float) -> bool:
        """Return True once a line contains `text`, False after `timeout` seconds or at end of output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            self.lines.append(line)
            if text in line:
                return True
        return False

    def text(self) -> str:
        while not self._queue.empty():
            self.lines.append(self._queue.get_nowait())
        return "".join(self.lines)


def distinct_free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def sign_in_status(port: int, email: str, password: str) -> int:
    """Post the login form as a browser would (token cookie first); return the status, without following redirects."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar), _NoRedirect()
    )
    opener.open(f"http://127.0.0.1:{port}/login", timeout=5).read()
    token = next(cookie.value for cookie in jar if cookie.name == "_xsrf")
    form = urllib.parse.urlencode({"email": email, "password": password, "_xsrf": token}).encode()
    try:
        with opener.open(f"http://127.0.0.1:{port}/login", data=form, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def health_status(port: int) -> int | None:
    try:
        with _DIRECT_OPENER.open(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """Return the PostgreSQL server whose data is in `data_dir` / postgres, with its children."""
    pgdata = str(data_dir / "postgres")
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and pgdata in (process.info["cmdline"] or []):
            found.append(process)
            found.extend(process.children(recursive=True))
    return found


def running(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


def wait_until_gone(processes: list[psutil.Process], timeout: float = 15.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while running(processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    return running(processes)


def describe(processes: list[psutil.Process]) -> list[str]:
    described = []
    for process in processes:
        try:
            described.append(f"{process.pid} {' '.join(process.cmdline())}")
        except psutil.Error:
            described.append(str(process.pid))
    return described


def service_logs(data_dir: Path) -> str:
    parts = []
    for path in sorted((data_dir / "logs").glob("*.log")):
        parts.append(f"--- {path.name} ---\n{path.read_text(errors='replace')[-4000:]}")
    return "\n".join(parts)


def stop_leftovers(process: subprocess.Popen, children: list[psutil.Process], data_dir: Path) -> None:
    """Stop whatever a failed test left behind: the stack, its children, then PostgreSQL."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for leftover in running(children + postgres_processes(data_dir)):
        leftover.terminate()


def test_stack_starts_and_stops(tmp_path):
    data_dir = tmp_path / "stack"
    web_port, email_client_port, gateway_port, redis_port = distinct_free_ports(4)
    environment = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    command = [
        sys.executable, "-m", "stack", "mock",
        "--data-dir", str(data_dir),
        "--web-port", str(web_port),
        "--email-client-port", str(email_client_port),
        "--gateway-port", str(gateway_port),
        "--redis-port", str(redis_port),
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = OutputReader(process.stdout)
    children: list[psutil.Process] = []
    try:
        started = output.wait_for(f"Postmill is running at http://localhost:{web_port}", START_TIMEOUT)
        assert started, f"no start-up message; output:\n{output.text()}\n{service_logs(data_dir)}"

        for name, port in (("web", web_port), ("email_client", email_client_port), ("mock_gateway", gateway_port)):
            assert health_status(port) == 200, f"{name} /healthz on port {port}"

        assert output.wait_for("Sign in as demo@example.com with the password ", START_TIMEOUT), output.text()
        password = output.text().split("Sign in as demo@example.com with the password ", 1)[1].split()[0]
        assert sign_in_status(web_port, "demo@example.com", password) == 303
        assert sign_in_status(web_port, "demo@example.com", password + "x") in (400, 401, 403)

        children = psutil.Process(process.pid).children(recursive=True)
        child_commands = " | ".join(describe(children))
        for name in ("-m web", "-m email_client", "-m mock_gateway", "valkey-server"):
            assert name in child_commands, f"{name} is not a child of the stack: {child_commands}"
        servers = postgres_processes(data_dir)
        assert servers, f"no PostgreSQL server runs on {data_dir / 'postgres'}"

        process.send_signal(signal.SIGINT)
        code = process.wait(STOP_TIMEOUT)
        assert code == 0, f"exit code {code}; output:\n{output.text()}"

        left = wait_until_gone(children + servers)
        assert left == [], f"still running after the stack stopped: {describe(left)}"
    finally:
        stop_leftovers(process, children, data_dir)
