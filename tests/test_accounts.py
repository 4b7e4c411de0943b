"""Users, sessions, API tokens and the limit on failed sign-ins, against web in-process and `python -m web`."""

import asyncio
import os
import re
import subprocess
import sys
import time

import aiohttp
import psycopg2
import pytest
import tornado.web
from yarl import URL

from common.config import ConfigError
from tests.conftest import COOKIE_SECRET, USER_EMAIL, USER_PASSWORD, Pages
from tests.processes import REPOSITORY, free_port
from tests.service_secrets import signed_headers, web_secrets
from web import accounts, auth
from web.app import WebService, api_routes
from web.config import load_config
from web.handlers import pages
from web.repositories import accounts as accounts_repository

OTHER_EMAIL = "grace@example.com"
OTHER_PASSWORD = "another long password"


def new_browser(web_service) -> Pages:
    """A browser with no cookies yet; close its session with `await browser.session.close()`."""
    return Pages(aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)), web_service.base_url)


async def fetch(base_url: str, method: str, path: str, **kwargs) -> tuple[int, dict, str]:
    """Send one request without cookies or redirects; return the status, headers and body."""
    async with aiohttp.ClientSession() as session:
        async with session.request(method, base_url + path, allow_redirects=False, **kwargs) as response:
            return response.status, dict(response.headers), await response.text()


def session_cookie(user_id: int, version: int, issued_at: float) -> str:
    """Sign a session cookie value the way web does, with any issue time."""
    value = auth.session_value(user_id, version, issued_at)
    return tornado.web.create_signed_value(COOKIE_SECRET, auth.SESSION_COOKIE, value).decode()


def run_web_command(database_url: str, *arguments: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "web", *arguments], cwd=REPOSITORY, input=stdin, capture_output=True, text=True,
        env={**os.environ, "DATABASE_URL": database_url}, timeout=60,
    )


def route_paths() -> list[str]:
    """Return one concrete path for every route of web, ids replaced by 1 and a choice by its first option."""
    paths = []
    for pattern, _handler in api_routes() + pages.routes():
        path = pattern.replace("([0-9]+)", "1").replace(".*", "anything")
        path = re.sub(r"\(([^|)]+)[^)]*\)", r"\1", path)
        paths.append(path)
    return paths


# Signing in

async def test_sign_in_wrong_password_then_right(web_service):
    await accounts.create_user(web_service.db, USER_EMAIL, USER_PASSWORD)
    status, headers, _ = await fetch(web_service.base_url, "GET", "/contacts?search=ada")
    assert status == 302
    assert headers["Location"] == "/login?next=%2Fcontacts%3Fsearch%3Dada"

    browser = new_browser(web_service)
    try:
        status, page, path = await browser.post("/login", {"email": USER_EMAIL, "password": "wrong password!",
                                                           "next": "/contacts"})
        assert status == 400
        assert "the email address or the password is wrong" in page
        assert 'name="next" value="/contacts"' in page
        assert auth.SESSION_COOKIE not in {cookie.key for cookie in browser.session.cookie_jar}

        form = {"email": "ADA@example.com", "password": USER_PASSWORD, "next": "/contacts?search=ada",
                "_xsrf": await browser.token()}
        async with browser.session.post(web_service.base_url + "/login", data=form,
                                        allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/contacts?search=ada"
            set_cookie = next(value for value in response.headers.getall("Set-Cookie")
                              if value.startswith(auth.SESSION_COOKIE + "="))
        assert "HttpOnly" in set_cookie
        assert "SameSite=Lax" in set_cookie
        assert "expires=" in set_cookie.lower()
        # Served over plain HTTP, so a Secure cookie would never come back.
        assert "Secure" not in set_cookie

        status, page = await browser.get("/contacts")
        assert status == 200
        assert f'<span id="signed-in-as">{USER_EMAIL}</span>' in page
        status, page = await browser.get("/login?next=/segments")
        assert "<h1>Segments</h1>" in page
    finally:
        await browser.session.close()


@pytest.mark.parametrize("target", [
    "https://elsewhere.example/", "//elsewhere.example/x", "/\\elsewhere.example", "javascript:alert(1)",
    "/login", "contacts", "",
])
async def test_sign_in_next_only_local_paths(web_service, target):
    await accounts.create_user(web_service.db, USER_EMAIL, USER_PASSWORD)
    browser = new_browser(web_service)
    try:
        form = {"email": USER_EMAIL, "password": USER_PASSWORD, "next": target, "_xsrf": await browser.token()}
        async with browser.session.post(web_service.base_url + "/login", data=form,
                                        allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/"
    finally:
        await browser.session.close()


def test_local_path_keeps_query():
    assert auth.local_path("/segments/3?after=40&limit=20") == "/segments/3?after=40&limit=20"
    assert auth.local_path("/contacts\r\nSet-Cookie: x=1") == "/"
    assert auth.local_path(None) == "/"


async def test_sign_in_form_needs_csrf_token(web_service):
    await accounts.create_user(web_service.db, USER_EMAIL, USER_PASSWORD)
    browser = new_browser(web_service)
    try:
        status, page, _ = await browser.post("/login", {"email": USER_EMAIL, "password": USER_PASSWORD},
                                             with_token=False)
        assert status == 403
        assert "The form has expired" in page
    finally:
        await browser.session.close()


async def test_empty_sign_in_form_rejected(web_service):
    browser = new_browser(web_service)
    try:
        status, page, _ = await browser.post("/login", {"email": "", "password": ""})
        assert status == 400
        assert "enter your email address and your password" in page
    finally:
        await browser.session.close()


# Sessions

async def test_session_expires_after_session_hours(web_service):
    user = await accounts.create_user(web_service.db, USER_EMAIL, USER_PASSWORD)
    hours = web_service.config.session_hours
    fresh = session_cookie(user["id"], user["session_version"], time.time() - 60)
    expired = session_cookie(user["id"], user["session_version"], time.time() - hours * 3600 - 60)
    from_future = session_cookie(user["id"], user["session_version"], time.time() + 3600)

    status, _, _ = await fetch(web_service.base_url, "GET", "/contacts",
                               headers={"Cookie": f"{auth.SESSION_COOKIE}={fresh}"})
    assert status == 200
    for cookie in (expired, from_future):
        status, headers, _ = await fetch(web_service.base_url, "GET", "/contacts",
                                         headers={"Cookie": f"{auth.SESSION_COOKIE}={cookie}"})
        assert status == 302
        assert headers["Location"].startswith("/login?next=")
        status, headers, body = await fetch(web_service.base_url, "GET", "/api/v1/contacts",
                                            headers={"Cookie": f"{auth.SESSION_COOKIE}={cookie}"})
        assert status == 401
        assert "session has expired" in body

    browser = new_browser(web_service)
    try:
        browser.session.cookie_jar.update_cookies({auth.SESSION_COOKIE: expired}, URL(web_service.base_url))
        _, page = await browser.get("/contacts")
        assert "Your session has ended. Sign in again." in page
        assert auth.SESSION_COOKIE not in browser.session.cookie_jar.filter_cookies(URL(web_service.base_url))
    finally:
        await browser.session.close()


async def test_cookie_signed_with_other_secret_rejected(web_service):
    user = await accounts.create_user(web_service.db, USER_EMAIL, USER_PASSWORD)
    value = auth.session_value(user["id"], user["session_version"])
    forged = tornado.web.create_signed_value("x" * 40, auth.SESSION_COOKIE, value).decode()
    status, _, _ = await fetch(web_service.base_url, "GET", "/api/v1/contacts",
                               headers={"Cookie": f"{auth.SESSION_COOKIE}={forged}"})
    assert status == 401


async def test_tiny_session_hours_end_session(database_url):
    port = free_port()
    service = WebService(load_config({
        "DATABASE_URL": database_url, "WEB_PORT": str(port), "WEB_COOKIE_SECRET": COOKIE_SECRET,
        "WEB_EMAIL_CLIENT_URL": f"http://127.0.0.1:{free_port()}", "WEB_SESSION_HOURS": str(1.5 / 3600),
        **web_secrets(),
    }))
    await service.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        await accounts.create_user(service.db, USER_EMAIL, USER_PASSWORD)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            browser = Pages(session, base_url)
            assert await browser.sign_in() == (303, "/")
            assert (await browser.get("/contacts"))[0] == 200
            await asyncio.sleep(2)
            # The cookie expired in the browser too, so the browser sends none.
            _, page = await browser.get("/contacts")
            assert "<h1>Sign in</h1>" in page
    finally:
        await service.stop()


async def test_sign_out_invalidates_old_cookie(user_pages, web_service):
    old_cookie = user_pages.session.cookie_jar.filter_cookies(URL(web_service.base_url))[auth.SESSION_COOKIE].value
    assert (await user_pages.get("/logout"))[0] == 405
    status, _, _ = await user_pages.post("/logout", {}, with_token=False)
    assert status == 403

    status, page, path = await user_pages.post("/logout", {})
    assert path == "/login"
    assert "You are signed out." in page
    assert auth.SESSION_COOKIE not in user_pages.session.cookie_jar.filter_cookies(URL(web_service.base_url))

    status, headers, _ = await fetch(web_service.base_url, "GET", "/contacts",
                                     headers={"Cookie": f"{auth.SESSION_COOKIE}={old_cookie}"})
    assert status == 302
    assert headers["Location"].startswith("/login")
    status, _, _ = await fetch(web_service.base_url, "GET", "/api/v1/contacts",
                               headers={"Cookie": f"{auth.SESSION_COOKIE}={old_cookie}"})
    assert status == 401


async def test_password_change_ends_other_sessions(user_pages, web_service):
    other = new_browser(web_service)
    try:
        assert await other.sign_in() == (303, "/")
        status, page, _ = await user_pages.post("/settings/password", {
            "current_password": "not it at all", "new_password": "a new long password",
            "new_password_again": "a new long password"})
        assert status == 400
        assert "the current password is wrong" in page
        status, page, _ = await user_pages.post("/settings/password", {
            "current_password": USER_PASSWORD, "new_password": "short", "new_password_again": "short"})
        assert status == 400
        assert "at least 10 characters" in page
        status, page, _ = await user_pages.post("/settings/password", {
            "current_password": USER_PASSWORD, "new_password": "a new long password",
            "new_password_again": "a new long passwort"})
        assert status == 400
        assert "the two new passwords differ" in page

        status, page, path = await user_pages.post("/settings/password", {
            "current_password": USER_PASSWORD, "new_password": "a new long password",
            "new_password_again": "a new long password"})
        assert path == "/settings"
        assert "Password changed." in page
        assert (await user_pages.get("/contacts"))[0] == 200
        _, page = await other.get("/contacts")
        assert "<h1>Sign in</h1>" in page

        assert (await other.sign_in(password=USER_PASSWORD))[0] == 400
        assert await other.sign_in(password="a new long password") == (303, "/")
    finally:
        await other.session.close()


# Failed sign-ins

async def test_failed_sign_ins_throttled_per_account(web_service):
    await accounts.create_user(web_service.db, USER_EMAIL, USER_PASSWORD)
    await accounts.create_user(web_service.db, OTHER_EMAIL, OTHER_PASSWORD)
    browser = new_browser(web_service)
    try:
        for _ in range(accounts.ACCOUNT_MAX_FAILURES):
            status, _ = await browser.sign_in(password="wrong password!")
            assert status == 400

        status, page, _ = await browser.post("/login", {"email": USER_EMAIL, "password": USER_PASSWORD})
        assert status == 429
        assert "Too many failed sign-ins for this account. Try again in 15 minutes" in page
        assert auth.SESSION_COOKIE not in {cookie.key for cookie in browser.session.cookie_jar}

        form = {"email": USER_EMAIL, "password": USER_PASSWORD, "_xsrf": await browser.token()}
        async with browser.session.post(web_service.base_url + "/login", data=form) as response:
            assert response.status == 429
            assert 890 <= int(response.headers["Retry-After"]) <= 900

        assert await browser.sign_in(OTHER_EMAIL, OTHER_PASSWORD) == (303, "/")
    finally:
        await browser.session.close()


async def test_successful_sign_in_clears_account_failures(web_service):
    await accounts.create_user(web_service.db, USER_EMAIL, USER_PASSWORD)
    browser = new_browser(web_service)
    try:
        for _ in range(2):
            for _ in range(accounts.ACCOUNT_MAX_FAILURES - 1):
                assert (await browser.sign_in(password="wrong password!"))[0] == 400
            assert await browser.sign_in() == (303, "/")
    finally:
        await browser.session.close()


async def test_failed_sign_ins_throttled_per_address(web_service):
    await accounts.create_user(web_service.db, USER_EMAIL, USER_PASSWORD)
    browser = new_browser(web_service)
    try:
        for number in range(accounts.ADDRESS_MAX_FAILURES):
            assert (await browser.sign_in(f"nobody{number}@example.com", "any password at all"))[0] == 400
        status, page, _ = await browser.post("/login", {"email": USER_EMAIL, "password": USER_PASSWORD})
        assert status == 429
        assert "Too many failed sign-ins from your network address" in page
    finally:
        await browser.session.close()


async def test_failures_shared_through_database(web_service, database_url):
    await accounts.create_user(web_service.db, USER_EMAIL, USER_PASSWORD)
    browser = new_browser(web_service)
    try:
        await browser.sign_in(password="wrong password!")
    finally:
        await browser.session.close()
    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT scope, key, failures FROM sign_in_failures ORDER BY scope")
            assert cursor.fetchall() == [("account", USER_EMAIL, 1), ("address", "127.0.0.1", 1)]
    finally:
        connection.close()


# Users

async def test_settings_page_adds_and_deletes_users(user_pages, web_service):
    status, page, _ = await user_pages.post("/settings/users", {"email": OTHER_EMAIL, "password": "too short"})
    assert status == 400
    assert "at least 10 characters" in page
    assert f'value="{OTHER_EMAIL}"' in page
    status, page, _ = await user_pages.post("/settings/users", {"email": "not an address", "password": OTHER_PASSWORD})
    assert status == 400
    assert "is not a valid email address" in page
    status, page, _ = await user_pages.post("/settings/users", {"email": "ADA@example.com", "password": OTHER_PASSWORD})
    assert status == 409
    assert "exists already" in page

    status, page, path = await user_pages.post("/settings/users", {"email": OTHER_EMAIL, "password": OTHER_PASSWORD})
    assert path == "/settings"
    assert f"User {OTHER_EMAIL} added." in page
    assert f"{USER_EMAIL} (you)" in page
    ids = {user["email"]: user["id"] for user in await accounts_repository.list_users(web_service.db)}
    assert f'href="/settings/users/{ids[OTHER_EMAIL]}/delete"' in page
    assert f'href="/settings/users/{ids[USER_EMAIL]}/delete"' not in page

    other = new_browser(web_service)
    try:
        assert await other.sign_in(OTHER_EMAIL, OTHER_PASSWORD) == (303, "/")
        status, page, _ = await user_pages.post(f"/settings/users/{ids[USER_EMAIL]}/delete", {})
        assert status == 409
        assert "you cannot delete your own account" in page

        status, page = await user_pages.get(f"/settings/users/{ids[OTHER_EMAIL]}/delete")
        assert f"Delete user {OTHER_EMAIL}?" in page
        status, page, path = await user_pages.post(f"/settings/users/{ids[OTHER_EMAIL]}/delete", {})
        assert path == "/settings"
        assert f"User {OTHER_EMAIL} deleted." in page
        _, page = await other.get("/contacts")
        assert "<h1>Sign in</h1>" in page
        assert (await user_pages.get(f"/settings/users/{ids[OTHER_EMAIL]}/delete"))[0] == 404
    finally:
        await other.session.close()


async def test_admin_user_from_environment(database_url):
    port = free_port()
    environment = {
        "DATABASE_URL": database_url, "WEB_PORT": str(port), "WEB_COOKIE_SECRET": COOKIE_SECRET,
        "WEB_EMAIL_CLIENT_URL": f"http://127.0.0.1:{free_port()}",
        "WEB_ADMIN_EMAIL": OTHER_EMAIL, "WEB_ADMIN_PASSWORD": OTHER_PASSWORD, **web_secrets(),
    }
    for password in (OTHER_PASSWORD, "a changed admin password"):
        service = WebService(load_config({**environment, "WEB_ADMIN_PASSWORD": password}))
        await service.start()
        await service.stop()
    service = WebService(load_config(environment))
    await service.start()
    try:
        assert [user["email"] for user in await accounts_repository.list_users(service.db)] == [OTHER_EMAIL]
        # The second start found the user and kept its first password.
        user = await accounts.sign_in(service.db, OTHER_EMAIL, OTHER_PASSWORD, "127.0.0.1")
        assert user["email"] == OTHER_EMAIL
    finally:
        await service.stop()


@pytest.mark.parametrize("environment, message", [
    ({"WEB_ADMIN_EMAIL": OTHER_EMAIL}, "set both WEB_ADMIN_EMAIL and WEB_ADMIN_PASSWORD"),
    ({"WEB_ADMIN_EMAIL": OTHER_EMAIL, "WEB_ADMIN_PASSWORD": "tiny-pw"}, "at least 10 characters"),
    ({"WEB_ADMIN_EMAIL": "nobody", "WEB_ADMIN_PASSWORD": OTHER_PASSWORD}, "not a valid email address"),
])
async def test_admin_settings_checked_at_start(database_url, environment, message):
    config = load_config({"DATABASE_URL": database_url, "WEB_COOKIE_SECRET": COOKIE_SECRET, **web_secrets(),
                          **environment})
    with pytest.raises(ConfigError, match=message) as raised:
        await WebService(config).start()
    assert "tiny-pw" not in str(raised.value)


def test_demo_user_created_only_without_users(database_url):
    credentials = accounts.ensure_demo_user(database_url)
    assert credentials is not None
    email, password = credentials
    assert email == "demo@example.com"
    assert len(password) >= auth.MIN_PASSWORD_LENGTH
    assert accounts.ensure_demo_user(database_url) is None


def test_no_demo_user_when_users_exist(database_url):
    created = run_web_command(database_url, "create-user", OTHER_EMAIL, "--password-stdin", stdin=OTHER_PASSWORD)
    assert created.returncode == 0, created.stderr
    assert accounts.ensure_demo_user(database_url) is None


async def test_demo_user_can_sign_in(web_service):
    # ensure_demo_user runs its own event loop, so it runs in a thread here.
    email, password = await asyncio.get_running_loop().run_in_executor(
        None, accounts.ensure_demo_user, web_service.config.database_url)
    browser = new_browser(web_service)
    try:
        assert await browser.sign_in(email, password) == (303, "/")
    finally:
        await browser.session.close()


# Commands

async def test_create_user_command(web_service, database_url):
    created = run_web_command(database_url, "create-user", OTHER_EMAIL, "--password-stdin",
                              stdin=OTHER_PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    assert created.stdout == f"created user {OTHER_EMAIL}\n"
    assert OTHER_PASSWORD not in created.stdout + created.stderr

    again = run_web_command(database_url, "create-user", OTHER_EMAIL.upper(), "--password-stdin",
                            stdin=OTHER_PASSWORD + "\n")
    assert again.returncode == 1
    assert "exists already" in again.stderr
    short = run_web_command(database_url, "create-user", "short@example.com", "--password-stdin", stdin="short\n")
    assert short.returncode == 1
    assert "at least 10 characters" in short.stderr

    browser = new_browser(web_service)
    try:
        assert await browser.sign_in(OTHER_EMAIL, OTHER_PASSWORD) == (303, "/")
    finally:
        await browser.session.close()


async def test_create_token_command(web_service, database_url, user_pages):
    created = run_web_command(database_url, "create-token", "nightly sync")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith(auth.TOKEN_PREFIX)
    assert "not shown again" in created.stderr

    status, _, body = await fetch(web_service.base_url, "GET", "/api/v1/contacts",
                                  headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body
    _, page = await user_pages.get("/settings")
    assert re.search(r"<td>nightly sync</td>\s*<td>command line</td>", page)
    assert token not in page

    empty = run_web_command(database_url, "create-token", "  ")
    assert empty.returncode == 1
    assert "name must not be empty" in empty.stderr


def test_web_refuses_to_start_without_cookie_secret(database_url):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("WEB_COOKIE_SECRET")}
    started = subprocess.run(
        [sys.executable, "-m", "web"], cwd=REPOSITORY, capture_output=True, text=True, timeout=60,
        env={**environment, "DATABASE_URL": database_url, "WEB_PORT": str(free_port())},
    )
    assert started.returncode == 2
    assert "no cookie secret is set" in started.stderr
    assert "WEB_COOKIE_SECRET_FILE" in started.stderr


def test_cookie_secret_from_file(tmp_path):
    path = tmp_path / "cookie-secret"
    path.write_text("s" * 40 + "\n")
    assert auth.cookie_secret(load_config({"WEB_COOKIE_SECRET_FILE": str(path)})) == "s" * 40
    path.write_text("too short\n")
    with pytest.raises(ConfigError, match="needs at least 32") as raised:
        auth.cookie_secret(load_config({"WEB_COOKIE_SECRET_FILE": str(path)}))
    assert "too short" not in str(raised.value)
    with pytest.raises(ConfigError, match="cannot read the cookie secret file"):
        auth.cookie_secret(load_config({"WEB_COOKIE_SECRET_FILE": str(tmp_path / "absent")}))
    with pytest.raises(ConfigError, match="set only one"):
        auth.cookie_secret(load_config({"WEB_COOKIE_SECRET_FILE": str(path), "WEB_COOKIE_SECRET": "t" * 40}))
    assert "t" * 40 not in repr(load_config({"WEB_COOKIE_SECRET": "t" * 40}))


# API tokens

async def test_token_from_settings_page_shown_once_and_revoked(user_pages, web_service):
    status, page, _ = await user_pages.post("/settings/tokens", {"name": ""})
    assert status == 400
    assert "Name must not be empty" in page

    status, page, _ = await user_pages.post("/settings/tokens", {"name": "CRM sync"})
    assert status == 200
    token = re.search(r'<pre class="mono" id="new-token-value">([^<]+)</pre>', page).group(1)
    # The token is at the bottom of the page, so a notice at the top points to it.
    assert page.index('<a href="#new-token">copy it below</a>') < page.index("<h2")
    _, page = await user_pages.get("/settings")
    assert token not in page
    assert 'href="#new-token"' not in page
    assert "<td>CRM sync</td>" in page
    assert "never" in page

    headers = {"Authorization": f"Bearer {token}"}
    status, _, _ = await fetch(web_service.base_url, "POST", "/api/v1/segments", json={"name": "Readers"},
                               headers=headers)
    assert status == 201
    _, page = await user_pages.get("/settings")
    assert "never" not in page

    token_id = re.search(r'href="/settings/tokens/([0-9]+)/revoke"', page).group(1)
    _, page = await user_pages.get(f"/settings/tokens/{token_id}/revoke")
    assert "Delete API token CRM sync?" in page
    status, page, path = await user_pages.post(f"/settings/tokens/{token_id}/revoke", {})
    assert path == "/settings"
    assert "API token CRM sync revoked." in page
    assert "No API tokens." in page

    status, response_headers, body = await fetch(web_service.base_url, "GET", "/api/v1/segments", headers=headers)
    assert status == 401
    assert "revoked" in body
    assert response_headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer", "Bearer pmt_unknown", "Basic YWRhOnNlY3JldA==", "Token abc"])
async def test_bad_authorization_header_is_401(web_service, header):
    status, headers, body = await fetch(web_service.base_url, "GET", "/api/v1/contacts",
                                        headers={"Authorization": header})
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert '"error"' in body


async def test_bearer_token_ignored_by_pages(web_service, api):
    token = api._session.headers["Authorization"]
    status, headers, _ = await fetch(web_service.base_url, "GET", "/contacts", headers={"Authorization": token})
    assert status == 302
    assert headers["Location"].startswith("/login")


# Every route

PUBLIC_PATHS = {"/login", "/healthz"}
# Reserved for email_client, which signs its requests instead.
INTERNAL_PATHS = {"/api/v1/internal/job-results"}


async def test_every_route_needs_user(web_service):
    paths = route_paths()
    assert "/api/v1/campaigns/1/send" in paths
    assert "/settings/tokens/1/revoke" in paths
    for path in paths:
        if path in PUBLIC_PATHS | INTERNAL_PATHS:
            continue
        for method in ("GET", "POST", "PUT", "DELETE"):
            body = None if method == "GET" else b"{}"
            status, headers, text = await fetch(web_service.base_url, method, path, data=body)
            if path.startswith("/api/"):
                assert status == 401, (method, path, status, text)
                assert headers["WWW-Authenticate"].startswith("Bearer"), (method, path)
                assert '"error": "sign in first' in text, (method, path)
            else:
                assert status in (302, 303), (method, path, status)
                assert headers["Location"].startswith("/login?next=%2F"), (method, path)


async def test_public_routes_open(web_service):
    assert (await fetch(web_service.base_url, "GET", "/healthz"))[0] == 200
    status, _, page = await fetch(web_service.base_url, "GET", "/login")
    assert status == 200
    assert "<h1>Sign in</h1>" in page
    assert 'aria-label="Main"' not in page
    assert (await fetch(web_service.base_url, "GET", "/static/style.css"))[0] == 200
    # Open to email_client's signed requests, which carry neither a user nor a CSRF token.
    body = b'{"results": []}'
    url = web_service.base_url + "/api/v1/internal/job-results"
    status, _, text = await fetch(web_service.base_url, "POST", "/api/v1/internal/job-results", data=body,
                                  headers={"Content-Type": "application/json", **signed_headers("POST", url, body)})
    assert status == 200, text
