"""Security headers on every response of web, the CSRF check of state-changing requests, the template sandbox."""

import re

import aiohttp
import pytest
from yarl import URL

from web.handlers.base import SECURITY_HEADERS

REQUIRED_POLICY = [
    "default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'",
    "form-action 'self'",
]


async def fetch(base_url: str, method: str, path: str, session: aiohttp.ClientSession | None = None,
                **kwargs) -> tuple[int, dict, str]:
    """Send one request without following redirects; return the status, headers and body."""
    if session is None:
        async with aiohttp.ClientSession() as own_session:
            return await fetch(base_url, method, path, own_session, **kwargs)
    async with session.request(method, base_url + path, allow_redirects=False, **kwargs) as response:
        return response.status, dict(response.headers), await response.text()


def assert_security_headers(headers: dict, request_line: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (request_line, name)
    assert headers["X-Content-Type-Options"] == "nosniff", request_line
    assert headers["X-Frame-Options"] == "DENY", request_line
    assert headers["Referrer-Policy"] in ("same-origin", "no-referrer", "strict-origin"), request_line


def test_policy_has_no_inline_script():
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    for directive in REQUIRED_POLICY:
        assert directive + ";" in policy + ";", directive
    script_sources = re.search(r"script-src ([^;]*)", policy).group(1)
    assert "'unsafe-inline'" not in script_sources
    assert "'unsafe-eval'" not in script_sources


async def test_headers_without_user(web_service):
    for method, path, expected_status in [
        ("GET", "/login", 200),
        ("GET", "/healthz", 200),
        ("GET", "/static/style.css", 200),
        ("GET", "/static/no-such-file.css", 404),
        ("GET", "/contacts", 302),
        ("GET", "/api/v1/contacts", 401),
        ("POST", "/api/v1/campaigns/1/send", 401),
        ("DELETE", "/login", 403),
    ]:
        status, headers, _ = await fetch(web_service.base_url, method, path)
        assert status == expected_status, (method, path)
        assert_security_headers(headers, f"{method} {path}")


async def test_headers_with_user(web_service, user_pages, api):
    for path, expected_status in [
        ("/", 200), ("/contacts", 200), ("/settings", 503), ("/no/such/page", 404), ("/contacts/999", 404),
        ("/campaigns/1/edit", 404), ("/contacts?limit=many", 400),
    ]:
        status, headers, _ = await fetch(web_service.base_url, "GET", path, user_pages.session)
        assert status == expected_status, path
        assert_security_headers(headers, path)
        assert headers["Cache-Control"] == "no-store", path

    for method, path, expected_status in [
        ("GET", "/api/v1/contacts", 200), ("GET", "/api/v1/contacts/999", 404), ("GET", "/api/v1/nothing", 404),
        ("POST", "/api/v1/contacts", 400), ("GET", "/api/v1/contacts/export", 200), ("PATCH", "/api/v1/contacts", 405),
        ("GET", "/api/v1/settings", 503),
    ]:
        status, headers, _ = await fetch(web_service.base_url, method, path, api._session)
        assert status == expected_status, (method, path)
        assert_security_headers(headers, f"{method} {path}")


# CSRF

async def test_form_post_without_token_is_403(user_pages):
    status, page, _ = await user_pages.post("/segments/new", {"name": "Readers"}, with_token=False)
    assert status == 403
    assert "The form has expired or was sent from another site" in page
    _, page = await user_pages.get("/segments")
    assert "Readers" not in page

    status, page, _ = await user_pages.post("/segments/new", {"name": "Readers", "_xsrf": "made-up"}, with_token=False)
    assert status == 403


async def test_api_with_session_cookie_needs_csrf_header(web_service, user_pages):
    token = await user_pages.token()
    status, _, body = await fetch(web_service.base_url, "POST", "/api/v1/segments", user_pages.session,
                                  json={"name": "Readers"})
    assert status == 403
    assert "X-XSRFToken" in body

    status, _, body = await fetch(web_service.base_url, "POST", "/api/v1/segments", user_pages.session,
                                  json={"name": "Readers"}, headers={"X-XSRFToken": token})
    assert status == 201, body
    status, _, body = await fetch(web_service.base_url, "POST", "/api/v1/contacts/import", user_pages.session,
                                  data=b"email\nada@example.org\n",
                                  headers={"Content-Type": "text/csv", "X-XSRFToken": token})
    assert status == 200, body
    # Reading needs no token.
    status, _, _ = await fetch(web_service.base_url, "GET", "/api/v1/segments", user_pages.session)
    assert status == 200

    # Last, because web closes the connection without reading the file it refuses.
    status, _, body = await fetch(web_service.base_url, "POST", "/api/v1/contacts/import", user_pages.session,
                                  data=b"email\nbob@example.org\n", headers={"Content-Type": "text/csv"})
    assert status == 403


async def test_bearer_request_needs_no_csrf_token(web_service, api):
    status, body = await api.post("/api/v1/segments", json={"name": "Readers"})
    assert status == 201, body
    status, body = await api.delete(f"/api/v1/segments/{body['id']}")
    assert status == 204


async def test_bad_bearer_with_valid_cookie_is_rejected(web_service, user_pages):
    # A request that names a token is judged by that token alone, so a cookie cannot stand in for a bad one.
    status, headers, _ = await fetch(web_service.base_url, "POST", "/api/v1/segments", user_pages.session,
                                     json={"name": "Readers"}, headers={"Authorization": "Bearer pmt_made_up"})
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("page", ["/contacts/import", "/campaigns/new", "/"])
async def test_pages_carry_csrf_token_for_scripts(user_pages, web_service, page):
    _, html = await user_pages.get(page)
    meta = re.search(r'<meta name="xsrf-token" content="([^"]+)">', html)
    assert meta is not None
    cookies = user_pages.session.cookie_jar.filter_cookies(URL(web_service.base_url))
    assert "_xsrf" in cookies
    status, _, body = await fetch(web_service.base_url, "POST", "/api/v1/segments", user_pages.session,
                                  json={"name": f"From {page}"}, headers={"X-XSRFToken": meta.group(1)})
    assert status == 201, body


# The template sandbox

@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ email.__class__.__base__ }}",
    "{{ '{0.__class__.__mro__}'.format(email) }}",
])
async def test_sandbox_refuses_python_internals(api, source):
    status, template = await api.post("/api/v1/templates", json={"name": "Probe", "html": f"<p>{source}</p>",
                                                                  "text": source})
    assert status == 201, template
    status, preview = await api.get(f"/api/v1/templates/{template['id']}/preview")
    assert status == 200, preview
    assert "html" not in preview
    assert "unsafe" in preview["error"] or "not allowed" in preview["error"], preview["error"]
    assert "class 'object'" not in preview["error"]
