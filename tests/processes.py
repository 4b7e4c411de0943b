"""Start a Postmill service as a real process for a test, and stop it.

    process = start_service("mock_gateway", {"MOCK_GATEWAY_PORT": "5099"}, 5099, tmp_path / "gateway.log")
    try:
        ...  # talk to http://127.0.0.1:5099
    finally:
        stop_service(process)

The service runs as `python -m <module>` from the repository root, with the
test's environment plus `env`, and writes its stdout and stderr to
`log_path`. Tests call `stop_service` in a fixture's teardown so that no
process outlives its test.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent

#: How long a service may take to respond to /healthz before start_service gives up, in seconds.
START_TIMEOUT = 30.0
#: How long a service may take to exit after SIGTERM before it is killed, in seconds.
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_service(module: str, env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    """Start `python -m module` and return it once GET /healthz returns 200.

    `port` is where the service listens on 127.0.0.1, so `env` must set it
    (for example MOCK_GATEWAY_PORT). Raises RuntimeError, with the end of
    the log, when the process exits early or is not healthy within
    START_TIMEOUT seconds; the process is stopped first.
    """
    log_file = open(log_path, "ab")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPOSITORY,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    finally:
        # The child has its own copy of the file descriptor.
        log_file.close()

    url = f"http://127.0.0.1:{port}/healthz"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{module} exited with status {process.returncode}:\n{_log_tail(log_path)}")
        if _is_healthy(url):
            return process
        time.sleep(0.05)

    stop_service(process)
    raise RuntimeError(f"{module} did not respond to {url} within {START_TIMEOUT} s:\n{_log_tail(log_path)}")


def stop_service(process: subprocess.Popen) -> int:
    """Send SIGTERM and wait for the process to exit, killing it after STOP_TIMEOUT seconds.

    Returns the exit status. A process that already exited is left alone.
    """
    if process.poll() is not None:
        return process.returncode
    process.terminate()
    try:
        return process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


# Without proxies: a proxy from the environment must not see requests to 127.0.0.1.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _is_healthy(url: str) -> bool:
    try:
        with _opener.open(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _log_tail(log_path: Path, lines: int = 30) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
