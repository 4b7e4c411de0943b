"""Service child processes: start one with its own log file, wait for its health check, stop them all."""

import ctypes
import http.client
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from stack.services import ServiceCommand

log = logging.getLogger(__name__)

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent

# urllib sends requests through the proxy named in http_proxy when that is
# set, even for 127.0.0.1. Health checks must reach the child directly.
_DIRECT_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_PR_SET_PDEATHSIG = 1


class ServiceFailed(Exception):
    """A service exited or failed its health check. The message names its log file."""

    def __init__(self, message: str, process: "ServiceProcess"):
        super().__init__(message)
        self.process = process


def _stop_with_parent() -> None:
    # Runs in the child between fork and exec. If the stack itself is killed
    # without stopping its children (SIGKILL, a crash), Linux then sends them
    # SIGTERM, so no service outlives the stack.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class ServiceProcess:
    """One service started as `python -m <service>`, writing stdout and stderr to `log_path`.

    The child leads a process group of its own, so a Ctrl-C in the terminal
    reaches only the stack, which then stops the services in order.
    """

    def __init__(self, spec: ServiceCommand, log_path: Path):
        self.spec = spec
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log_offset = 0

    @property
    def name(self) -> str:
        return self.spec.name

    def start(self) -> None:
        """Start the child, appending to its log file after a line that marks this start."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, **self.spec.env, "PYTHONUNBUFFERED": "1"}
        started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with open(self.log_path, "ab") as log_file:
            log_file.write(f"\n--- {started_at} started by python -m stack: {' '.join(self.spec.command)} ---\n".encode())
            log_file.flush()
            self._log_offset = log_file.tell()
            self.process = subprocess.Popen(
                self.spec.command,
                cwd=REPOSITORY_ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                process_group=0,
                preexec_fn=_stop_with_parent if sys.platform == "linux" else None,
            )
        log.info("%s started with pid %d, logging to %s", self.name, self.process.pid, self.log_path)

    def exit_code(self) -> int | None:
        """Return the child's exit code, or None while it runs."""
        return None if self.process is None else self.process.poll()

    def wait_healthy(self, timeout: float) -> None:
        """Wait until GET /healthz returns status 200.

        Raises ServiceFailed when the child exits first or `timeout` seconds pass.
        """
        deadline = time.monotonic() + timeout
        while True:
            code = self.exit_code()
            if code is not None:
                raise ServiceFailed(
                    f"{self.name} exited with code {code} before {self.spec.health_url} returned 200; "
                    f"see {self.log_path}",
                    self,
                )
            if self._is_healthy():
                log.info("%s is ready on port %d", self.name, self.spec.port)
                return
            if time.monotonic() >= deadline:
                raise ServiceFailed(
                    f"{self.name} timed out: {self.spec.health_url} did not return 200 within {timeout:g} s; "
                    f"see {self.log_path}",
                    self,
                )
            time.sleep(0.2)

    def _is_healthy(self) -> bool:
        try:
            with _DIRECT_OPENER.open(self.spec.health_url, timeout=1.0) as response:
                return response.status == 200
        except (urllib.error.URLError, http.client.HTTPException, OSError):
            return False

    def output_tail(self, lines: int = 20) -> str:
        """Return the last `lines` lines the child wrote since this start, or "" when the log cannot be read."""
        try:
            with open(self.log_path, "rb") as log_file:
                log_file.seek(0, os.SEEK_END)
                log_file.seek(max(self._log_offset, log_file.tell() - 64 * 1024))
                text = log_file.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def signal_group(self, signal_number: int) -> bool:
        """Send `signal_number` to the child's process group. Returns False when the group is gone."""
        if self.process is None:
            return False
        try:
            os.killpg(self.process.pid, signal_number)
        except ProcessLookupError:
            return False
        return True


def stop_all(processes: Iterable[ServiceProcess], grace: float) -> None:
    """Stop the processes: SIGTERM to all, then SIGKILL to those still running after `grace` seconds.

    Anything left in a child's process group after the child exits is killed too.
    """
    started = [process for process in processes if process.process is not None]
    for process in started:
        if process.exit_code() is None:
            log.info("stopping %s (pid %d)", process.name, process.process.pid)
            process.signal_group(signal.SIGTERM)

    deadline = time.monotonic() + grace
    for process in started:
        try:
            process.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %g s of SIGTERM; sending SIGKILL", process.name, grace)
            process.signal_group(signal.SIGKILL)
            process.process.wait()
        if process.signal_group(signal.SIGKILL):
            log.warning("%s left processes behind in its process group; killed them", process.name)
        log.info("%s stopped with code %d", process.name, process.process.returncode)
