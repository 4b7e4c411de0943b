"""The HTML pages of web, served in-process against the test database and driven as forms over HTTP.

email_client is played by a small Tornado app on 127.0.0.1 that keeps the
settings in memory and accepts chunks of jobs, or is absent (a free port)
where a test needs it unreachable.
"""

import html
import json
import re

import aiohttp
import psycopg2
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from tests.conftest import COOKIE_SECRET, Pages, signed_in_pages
from tests.processes import free_port
from tests.service_secrets import signed_headers, web_secrets
from web.app import WebService
from web.config import load_config
from web.repositories import contacts as contacts_repository

COMPLETE_SETTINGS = {
    "from_name": "Postmill News",
    "from_email": "news@example.com",
    "gateway_username": "postmill",
    "gateway_password": "secret",
}


class _SettingsHandler(tornado.web.RequestHandler):
    def initialize(self, stand_in: "EmailClientStandIn") -> None:
        self.stand_in = stand_in

    def get(self):
        self.write(self.stand_in.public())

    def put(self):
        changes = json.loads(self.request.body)
        # The same rule as email_client's: HTTP basic auth cannot carry a ':' in a username.
        if ":" in (changes.get("gateway_username") or ""):
            self.set_status(400)
            self.write({"error": "gateway_username must not contain ':'", "field": "gateway_username"})
            return
        for name, value in changes.items():
            self.stand_in.settings[name] = value or None
        self.write(self.stand_in.public())


class _JobsHandler(tornado.web.RequestHandler):
    def initialize(self, stand_in: "EmailClientStandIn") -> None:
        self.stand_in = stand_in

    def post(self, campaign_id):
        jobs = json.loads(self.request.body)["jobs"]
        self.stand_in.queued.extend(jobs)
        self.set_status(202)
        self.write({"queued": len(jobs), "ignored": 0})


class _ActionHandler(tornado.web.RequestHandler):
    def initialize(self, stand_in: "EmailClientStandIn") -> None:
        self.stand_in = stand_in

    def post(self, campaign_id, action):
        self.stand_in.actions.append((int(campaign_id), action))
        self.write({"status": action})


class EmailClientStandIn:
    """email_client's settings and job endpoints, in memory, on a free port of 127.0.0.1."""

    def __init__(self):
        self.settings: dict[str, str | None] = dict.fromkeys(COMPLETE_SETTINGS)
        self.queued: list[dict] = []
        self.actions: list[tuple[int, str]] = []
        self._server: tornado.httpserver.HTTPServer | None = None
        self.url = ""

    def public(self) -> dict:
        public_settings = {name: self.settings[name] for name in ("from_name", "from_email", "gateway_username")}
        public_settings["gateway_password_set"] = self.settings["gateway_password"] is not None
        return public_settings

    async def start(self) -> None:
        app = tornado.web.Application([
            (r"/api/v1/settings", _SettingsHandler, {"stand_in": self}),
            (r"/api/v1/campaigns/([0-9]+)/jobs", _JobsHandler, {"stand_in": self}),
            (r"/api/v1/campaigns/([0-9]+)/(pause|resume|cancel)", _ActionHandler, {"stand_in": self}),
        ])
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)

    async def stop(self) -> None:
        self._server.stop()
        await self._server.close_all_connections()


async def start_web(database_url: str, email_client_url: str) -> tuple[WebService, str]:
    port = free_port()
    config = load_config({
        "DATABASE_URL": database_url,
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(port),
        "WEB_EMAIL_CLIENT_URL": email_client_url,
        "WEB_COOKIE_SECRET": COOKIE_SECRET,
        **web_secrets(),
    })
    service = WebService(config)
    await service.start(port)
    return service, f"http://127.0.0.1:{port}"


@pytest.fixture
async def email_client():
    stand_in = EmailClientStandIn()
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


@pytest.fixture
async def pages(database_url, email_client):
    """Pages of a web service whose email_client is reachable and has complete settings."""
    email_client.settings.update(COMPLETE_SETTINGS)
    service, base_url = await start_web(database_url, email_client.url)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield await signed_in_pages(service, base_url, session)
    await service.stop()


@pytest.fixture
async def pages_without_email_client(database_url):
    """Pages of a web service whose email_client URL is a port where nothing listens."""
    service, base_url = await start_web(database_url, f"http://127.0.0.1:{free_port()}")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield await signed_in_pages(service, base_url, session)
    await service.stop()


def field_error(page: str, field: str) -> str | None:
    """Return the text of the error shown under a form field, unescaped."""
    match = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', page, re.S)
    return html.unescape(match.group(1)) if match else None


def input_value(page: str, field: str) -> str | None:
    match = re.search(rf'<input id="{field}" name="{field}" type="[a-z]+" value="([^"]*)"', page)
    return html.unescape(match.group(1)) if match else None


async def add_contact(pages: Pages, email: str, **fields) -> None:
    status, page, _ = await pages.post("/contacts/new", {"email": email, **fields})
    assert status == 200, page


async def contact_id(pages: Pages, email: str) -> int:
    _, page = await pages.get("/contacts?search=" + email)
    return int(re.search(r'<a href="/contacts/([0-9]+)">' + re.escape(email), page).group(1))


async def add_segment(pages: Pages, name: str) -> int:
    _, _, path = await pages.post("/segments/new", {"name": name})
    return int(path.rsplit("/", 1)[1])


async def add_template(pages: Pages, name: str, html_body: str, text: str = "") -> int:
    _, _, path = await pages.post("/templates/new", {"name": name, "html": html_body, "text": text})
    return int(path.rsplit("/", 1)[1])


async def test_list_pages_render(pages):
    for path, heading in [
        ("/", "<h1>Dashboard</h1>"),
        ("/contacts", "<h1>Contacts"),
        ("/contacts/new", "<h1>Add contact</h1>"),
        ("/contacts/import", "<h1>Import contacts</h1>"),
        ("/segments", "<h1>Segments</h1>"),
        ("/templates", "<h1>Templates</h1>"),
        ("/campaigns", "<h1>Campaigns</h1>"),
        ("/campaigns/new", "<h1>Create campaign</h1>"),
        ("/settings", "<h1>Settings</h1>"),
    ]:
        status, page = await pages.get(path)
        assert status == 200, path
        assert heading in page, path
        assert "/static/style.css?v=" in page, path
        assert '/static/favicon.svg?v=' in page, path
    status, icon = await pages.get("/static/favicon.svg")
    assert status == 200
    assert icon.startswith("<svg")


async def test_pages_have_no_inline_script(pages):
    await add_contact(pages, "ada@example.com")
    for path in ("/", "/contacts", "/contacts/import", "/settings", "/templates/new"):
        _, page = await pages.get(path)
        for tag in re.findall(r"<script[^>]*>", page):
            assert "src=" in tag, path
        assert "onclick" not in page.lower(), path


async def test_contact_create_edit_delete(pages):
    status, page, path = await pages.post(
        "/contacts/new",
        {"email": "Ada@Example.com", "first_name": "Ada", "last_name": "Lovelace", "attributes": '{"city": "London"}'},
    )
    assert status == 200
    assert path == "/contacts"
    assert "Contact Ada@example.com added." in page
    assert "Ada Lovelace" in page

    ada = await contact_id(pages, "Ada@example.com")
    status, page = await pages.get(f"/contacts/{ada}")
    assert status == 200
    assert input_value(page, "first_name") == "Ada"
    assert "&#34;city&#34;: &#34;London&#34;" in page

    status, page, path = await pages.post(
        f"/contacts/{ada}", {"email": "ada@example.org", "first_name": "Augusta", "last_name": "King"}
    )
    assert path == "/contacts"
    assert "Augusta King" in page
    assert "ada@example.org" in page

    status, page = await pages.get(f"/contacts/{ada}/delete")
    assert status == 200
    assert "Delete contact ada@example.org?" in page
    status, page, path = await pages.post(f"/contacts/{ada}/delete", {})
    assert path == "/contacts"
    assert "Contact ada@example.org deleted." in page
    assert (await pages.get(f"/contacts/{ada}"))[0] == 404


async def test_contact_form_shows_error_and_keeps_input(pages):
    status, page, _ = await pages.post("/contacts/new", {"email": "not-an-address", "first_name": "Grace"})
    assert status == 400
    assert "is not a valid email address" in field_error(page, "email")
    assert input_value(page, "email") == "not-an-address"
    assert input_value(page, "first_name") == "Grace"
    assert 'class="form-error"' not in page

    status, page, _ = await pages.post("/contacts/new", {"email": "grace@example.com", "attributes": "[1, 2]"})
    assert status == 400
    assert field_error(page, "attributes").startswith("Attributes must be a JSON object")
    assert "[1, 2]" in page


async def test_contact_duplicate_address_shown_at_field(pages):
    await add_contact(pages, "grace@example.com")
    status, page, _ = await pages.post("/contacts/new", {"email": "GRACE@example.com"})
    assert status == 409
    assert "exists already" in field_error(page, "email")


async def test_contact_name_is_escaped(pages):
    await add_contact(pages, "mallory@example.com", name="<script>alert(1)</script>")
    _, page = await pages.get("/contacts")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_contacts_search_and_pages(pages):
    for number in range(5):
        await add_contact(pages, f"match{number}@example.com")
    await add_contact(pages, "other@example.com")

    _, first = await pages.get("/contacts?search=match&limit=2")
    assert "match0@" in first
    assert "match1@" in first
    assert "match2@" not in first
    assert "rel=\"prev\"" not in first
    next_url = html.unescape(re.search(r'<a href="([^"]+)" rel="next">', first).group(1))
    assert "search=match" in next_url

    _, second = await pages.get(next_url)
    assert "match2@" in second
    assert "match3@" in second
    assert "other@" not in second
    previous_url = html.unescape(re.search(r'<a href="([^"]+)" rel="prev">', second).group(1))
    assert "search=match" in previous_url
    _, back = await pages.get(previous_url)
    assert "match0@" in back
    assert "match1@" in back

    third_url = html.unescape(re.search(r'<a href="([^"]+)" rel="next">', second).group(1))
    _, third = await pages.get(third_url)
    assert "match4@" in third
    assert 'rel="next"' not in third


async def test_unknown_ids_show_404_page(pages):
    for path in ("/contacts/999", "/contacts/999/delete", "/segments/999", "/segments/999/rename",
                 "/templates/999", "/templates/999/preview", "/campaigns/999", "/campaigns/999/edit",
                 "/contacts/0", "/no/such/page"):
        status, page = await pages.get(path)
        assert status == 404, path
        assert "<h1>404 Not Found</h1>" in page, path
    status, page, _ = await pages.post("/contacts/999", {"email": "x@example.com"})
    assert status == 404
    status, page, _ = await pages.post("/campaigns/999/send", {})
    assert status == 404


async def test_form_without_token_is_rejected(pages):
    status, page, _ = await pages.post("/contacts/new", {"email": "eve@example.com"}, with_token=False)
    assert status == 403
    assert "The form has expired" in page
    _, contacts_page = await pages.get("/contacts")
    assert "eve@example.com" not in contacts_page


async def test_banner_while_settings_missing(pages, email_client):
    # Before the first page is requested, so that web has not cached the complete settings yet.
    email_client.settings.update(dict.fromkeys(COMPLETE_SETTINGS))
    _, page = await pages.get("/contacts")
    assert 'id="settings-banner"' in page
    assert "From address" in page
    assert "gateway credentials" in page
    assert '<a href="/settings">' in page

    status, page, path = await pages.post("/settings", {
        "from_name": "Postmill News", "from_email": "news@example.com",
        "gateway_username": "postmill", "gateway_password": "secret",
    })
    assert path == "/settings"
    assert "Settings saved." in page
    assert 'id="settings-banner"' not in page
    assert email_client.settings == COMPLETE_SETTINGS
    _, page = await pages.get("/no/such/page")
    assert 'id="settings-banner"' not in page


async def test_settings_password_never_shown(pages, email_client):
    status, page = await pages.get("/settings")
    assert status == 200
    assert "secret" not in page
    assert input_value(page, "gateway_password") == ""
    assert "A gateway password is set." in page

    await pages.post("/settings", {"from_name": "News", "from_email": "news@example.com",
                                   "gateway_username": "postmill", "gateway_password": ""})
    assert email_client.settings["gateway_password"] == "secret"

    _, page, _ = await pages.post("/settings", {"from_name": "News", "from_email": "news@example.com",
                                                "gateway_username": "postmill", "clear_password": "1"})
    assert email_client.settings["gateway_password"] is None
    assert "No gateway password is set." in page
    assert "gateway credentials" in page


async def test_settings_errors_shown_at_field(pages, email_client):
    status, page, _ = await pages.post("/settings", {"from_name": "News", "from_email": "news at example",
                                                     "gateway_username": "postmill"})
    assert status == 400
    assert field_error(page, "from_email").startswith("From address 'news at example' is not a valid email")
    assert input_value(page, "from_email") == "news at example"

    status, page, _ = await pages.post("/settings", {"from_name": "News", "from_email": "news@example.com",
                                                     "gateway_username": "post:mill"})
    assert status == 400
    assert "must not contain ':'" in field_error(page, "gateway_username")
    assert input_value(page, "gateway_username") == "post:mill"
    assert email_client.settings["gateway_username"] == "postmill"


async def test_unreachable_email_client(pages_without_email_client):
    pages = pages_without_email_client
    status, page = await pages.get("/")
    assert status == 200
    assert "The email service cannot be reached" in page

    status, page = await pages.get("/settings")
    assert status == 503
    assert "The email service cannot be reached" in page
    assert "Traceback" not in page

    status, page, _ = await pages.post("/settings", {"from_name": "News", "from_email": "news@example.com",
                                                     "gateway_username": "postmill"})
    assert status == 503
    assert "cannot be read or saved now" in page
    assert input_value(page, "from_name") == "News"


async def test_template_syntax_error_shows_line(pages):
    body = "<p>Hello</p>\n<p>{{ first_name }</p>\n"
    status, page, _ = await pages.post("/templates/new", {"name": "Welcome", "html": body, "text": ""})
    assert status == 400
    error = field_error(page, "html")
    assert "template syntax error" in error
    assert "line 2" in error
    assert html.escape(body, quote=False).strip() in page

    status, page, _ = await pages.post("/templates/new", {"name": "Welcome", "html": "<p>ok</p>",
                                                          "text": "Hi\n{% if %}"})
    assert status == 400
    assert "line 2" in field_error(page, "text")


async def test_template_edit_and_preview(pages):
    template = await add_template(pages, "Welcome", '<p>Hello {{ first_name | default("there") }} & "you"</p>',
                                  "Hello {{ first_name | default('there') }}")
    await add_contact(pages, "zoe@example.com", first_name="Zoë")
    zoe = await contact_id(pages, "zoe@example.com")

    status, page = await pages.get(f"/templates/{template}/preview")
    assert status == 200
    assert "sample@example.com" in page
    assert 'sandbox srcdoc="&lt;p&gt;Hello Sample &amp; &#34;you&#34;&lt;/p&gt;"' in page
    assert "Hello Sample" in page

    for chosen in (str(zoe), "ZOE@example.com"):
        status, page = await pages.get(f"/templates/{template}/preview?contact={chosen}")
        assert status == 200
        assert "Hello Zoë" in page

    status, page = await pages.get(f"/templates/{template}/preview?contact=nobody@example.com")
    assert status == 404
    assert "no contact has the address nobody@example.com" in field_error(page, "contact")

    status, page, path = await pages.post(f"/templates/{template}", {"name": "Welcome", "html": "<p>{{ email }}</p>"})
    assert path == f"/templates/{template}"
    assert "Template Welcome saved." in page
    _, page = await pages.get(f"/templates/{template}/preview")
    assert "This template has no text part." in page


async def test_template_preview_reports_missing_value(pages):
    template = await add_template(pages, "Cities", "<p>{{ city }}</p>")
    status, page = await pages.get(f"/templates/{template}/preview")
    assert status == 200
    assert 'id="preview-error"' in page
    assert "city" in page


async def test_segment_pages(pages):
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        await add_contact(pages, email)
    status, page, _ = await pages.post("/segments/new", {"name": ""})
    assert status == 400
    assert field_error(page, "name") == "Name must not be empty"

    segment = await add_segment(pages, "Readers")
    status, page, _ = await pages.post("/segments/new", {"name": "readers"})
    assert status == 409
    assert "exists already" in field_error(page, "name")

    status, page, _ = await pages.post(f"/segments/{segment}/contacts/add",
                                       {"addresses": "A@example.com\nb@example.com\nnobody@example.com\n"})
    assert status == 200
    assert "2 contacts added" in page
    assert "nobody@example.com" in field_error(page, "addresses")
    assert f'href="/contacts/import?segment_id={segment}"' in page

    _, page = await pages.get("/segments")
    assert re.search(r"Readers</a></td>\s*<td class=\"number\">2</td>", page)

    b = await contact_id(pages, "b@example.com")
    status, page, path = await pages.post(f"/segments/{segment}/contacts/remove", {"contact_id": str(b)})
    assert path == f"/segments/{segment}"
    assert "b@example.com removed from Readers." in page
    assert "1 contact</span>" in page

    status, page, path = await pages.post(f"/segments/{segment}/rename", {"name": "Subscribers"})
    assert "Segment renamed to Subscribers." in page

    status, page, path = await pages.post(f"/segments/{segment}/delete", {})
    assert path == "/segments"
    assert "Segment Subscribers deleted." in page
    _, contacts_page = await pages.get("/contacts")
    assert "a@example.com" in contacts_page


async def test_import_page_preselects_segment(pages):
    segment = await add_segment(pages, "Imported")
    status, page = await pages.get(f"/contacts/import?segment_id={segment}")
    assert status == 200
    assert f'<option value="{segment}" selected>Imported</option>' in page
    assert "/static/import.js?v=" in page
    _, contacts_page = await pages.get("/contacts")
    assert 'href="/api/v1/contacts/export"' in contacts_page


async def test_campaign_create_send_and_jobs(pages, email_client):
    segment = await add_segment(pages, "Readers")
    template = await add_template(pages, "Welcome", "<p>Hi {{ email }}</p>")

    status, page, _ = await pages.post("/campaigns/new", {"name": "Spring", "segment_id": "",
                                                          "template_id": str(template), "subject": "Hello"})
    assert status == 400
    # Named in words, not by the API's field name segment_id.
    assert field_error(page, "segment_id") == "Segment is required"

    status, page, _ = await pages.post("/campaigns/new", {"name": "Spring", "segment_id": str(segment),
                                                          "template_id": "", "subject": "Hello {{ first_name"})
    assert status == 400
    assert field_error(page, "subject").startswith("Subject syntax error: ")
    assert input_value(page, "name") == "Spring"
    assert f'<option value="{segment}" selected>Readers</option>' in page

    status, page, path = await pages.post("/campaigns/new", {"name": "Spring", "segment_id": str(segment),
                                                             "template_id": str(template), "subject": "Hello"})
    campaign = int(path.rsplit("/", 1)[1])
    assert "created as a draft" in page
    assert 'id="send-button"' in page

    status, page = await pages.get(f"/campaigns/{campaign}/send")
    assert status == 200
    assert "The segment has no contacts." in page
    assert 'id="confirm-send-button"' not in page
    status, page, _ = await pages.post(f"/campaigns/{campaign}/send", {})
    assert status == 400
    assert "the campaign&#39;s segment has no contacts" in page

    for email in ("a@example.com", "b@example.com", "c@example.com"):
        await add_contact(pages, email)
    await pages.post(f"/segments/{segment}/contacts/add", {"addresses": "a@example.com\nb@example.com\nc@example.com"})
    status, page = await pages.get(f"/campaigns/{campaign}/send")
    assert status == 200
    assert "<h1>Send campaign Spring?</h1>" in page
    assert f'<form method="post" action="/campaigns/{campaign}/send"' in page
    assert '<button type="submit" id="confirm-send-button">Send to 3 contacts</button>' in page
    status, page, path = await pages.post(f"/campaigns/{campaign}/send", {})
    assert path == f"/campaigns/{campaign}"
    assert "is sending to 3 contacts" in page
    assert 'data-status="sending"' in page
    assert 'id="send-button"' not in page
    assert "/static/campaign.js?v=" in page
    assert page.count('<span class="status status-pending">pending</span>') == 3

    status, page, _ = await pages.post(f"/campaigns/{campaign}/send", {})
    assert status == 409
    assert "a campaign is sent only once" in page
    _, page = await pages.get(f"/campaigns/{campaign}/send")
    assert 'id="confirm-send-button"' not in page
    assert 'data-status="sending"' in page

    status, page, _ = await pages.post(f"/campaigns/{campaign}/delete", {})
    assert status == 409
    assert '<p class="form-error" role="alert">campaign 1 was sent already; only a draft can be deleted</p>' in page

    _, page = await pages.get(f"/campaigns/{campaign}?status=sent")
    assert "No jobs with status sent on this page." in page
    _, page = await pages.get(f"/campaigns/{campaign}?status=pending&limit=2")
    assert page.count("status-pending\">pending") == 2
    assert 'rel="next"' in page
    status, _ = await pages.get(f"/campaigns/{campaign}?status=lost")
    assert status == 400

    _, page = await pages.get("/")
    assert "Spring</a>" in page
    assert "sending" in page


async def test_campaign_delete_draft(pages):
    segment = await add_segment(pages, "Readers")
    template = await add_template(pages, "Welcome", "<p>Hi</p>")
    _, _, path = await pages.post("/campaigns/new", {"name": "Draft", "segment_id": str(segment),
                                                     "template_id": str(template), "subject": "Hello"})
    campaign = int(path.rsplit("/", 1)[1])
    status, page, path = await pages.post(f"/campaigns/{campaign}/edit", {
        "name": "Renamed draft", "segment_id": str(segment), "template_id": str(template), "subject": "Hi"})
    assert "Campaign Renamed draft saved." in page
    status, page, path = await pages.post(f"/campaigns/{campaign}/delete", {})
    assert path == "/campaigns"
    assert "Campaign Renamed draft deleted." in page


async def sending_campaign(pages, contacts: int) -> int:
    segment = await add_segment(pages, "Readers")
    template = await add_template(pages, "Welcome", "<p>Hi</p>")
    addresses = [f"reader{number}@example.com" for number in range(contacts)]
    for email in addresses:
        await add_contact(pages, email)
    await pages.post(f"/segments/{segment}/contacts/add", {"addresses": "\n".join(addresses)})
    _, _, path = await pages.post("/campaigns/new", {"name": "Autumn", "segment_id": str(segment),
                                                     "template_id": str(template), "subject": "Hello"})
    campaign = int(path.rsplit("/", 1)[1])
    await pages.post(f"/campaigns/{campaign}/send", {})
    return campaign


async def report(pages, campaign: int, results: list[dict], events: list[dict] | None = None) -> None:
    body = {"results": [{"campaign_id": campaign, "attempt": 1, **item} for item in results]}
    if events:
        body["events"] = events
    url = pages.base_url + "/api/v1/internal/job-results"
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **signed_headers("POST", url, data)}
    async with pages.session.post(url, data=data, headers=headers) as response:
        assert response.status == 200


async def job_ids(pages, campaign: int) -> list[int]:
    async with pages.session.get(pages.base_url + f"/api/v1/campaigns/{campaign}/jobs") as response:
        return [job["id"] for job in (await response.json())["items"]]


async def test_campaign_pause_resume_cancel_buttons(pages, email_client):
    campaign = await sending_campaign(pages, 3)
    _, page = await pages.get(f"/campaigns/{campaign}")
    assert 'id="pause-button"' in page
    assert 'id="cancel-button"' in page

    status, page, _ = await pages.post(f"/campaigns/{campaign}/pause", {})
    assert "Campaign Autumn is paused." in page
    assert 'id="resume-button"' in page
    assert "paused by a user" in page
    _, dashboard = await pages.get("/")
    assert "is paused: paused by a user" in dashboard

    status, page, _ = await pages.post(f"/campaigns/{campaign}/pause", {})
    assert status == 409
    assert "only a sending campaign can be paused" in page

    status, page, _ = await pages.post(f"/campaigns/{campaign}/resume", {})
    assert "Campaign Autumn is sending again." in page
    status, page, _ = await pages.post(f"/campaigns/{campaign}/cancel", {})
    assert "its unsent jobs are cancelled" in page
    assert page.count('<span class="status status-cancelled">cancelled</span>') >= 3
    assert email_client.actions == [(campaign, "pause"), (campaign, "resume"), (campaign, "cancel")]


async def test_campaign_paused_by_email_client_shows_reason(pages, email_client):
    campaign = await sending_campaign(pages, 2)
    reason = "the gateway refused the credentials (403) on 5 sends in a row"
    await report(pages, campaign, [], [{"campaign_id": campaign, "event": "paused", "reason": reason}])
    _, page = await pages.get(f"/campaigns/{campaign}")
    assert "Paused: <span id=\"campaign-pause-reason\">" + reason in page
    _, dashboard = await pages.get("/")
    assert reason in dashboard


async def test_retry_failed_jobs_button(pages, email_client):
    campaign = await sending_campaign(pages, 2)
    first, second = await job_ids(pages, campaign)
    await report(pages, campaign, [{"job_id": first, "status": "sent", "message_id": "m1"},
                                   {"job_id": second, "status": "failed", "error": "mailbox <full>"}])
    _, page = await pages.get(f"/campaigns/{campaign}")
    assert 'id="retry-failed-button"' in page
    assert "Latest failure reasons" in page
    assert "mailbox &lt;full&gt;" in page

    status, page, _ = await pages.post(f"/campaigns/{campaign}/retry-failed", {})
    assert "are being sent again" in page
    assert 'data-status="sending"' in page
    assert 'id="retry-failed-button"' not in page


# Escaping and the preview sandbox

SCRIPT = '<script>alert("owned")</script>'
ESCAPED_SCRIPT = "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;"


def assert_escaped(page: str, where: str) -> None:
    assert "<script>alert" not in page, where
    assert ESCAPED_SCRIPT in page, where


async def test_names_with_markup_escaped_everywhere(pages, email_client):
    await add_contact(pages, "mallory@example.com", name=SCRIPT, first_name=SCRIPT)
    mallory = await contact_id(pages, "mallory@example.com")

    status, page, path = await pages.post("/segments/new", {"name": SCRIPT})
    segment = int(path.rsplit("/", 1)[1])
    assert_escaped(page, "flash: segment created")
    status, page, _ = await pages.post(f"/segments/{segment}/contacts/add", {"addresses": "mallory@example.com"})
    status, page, path = await pages.post("/templates/new", {"name": SCRIPT, "html": "<p>Hi {{ first_name }}</p>"})
    template = int(path.rsplit("/", 1)[1])
    assert_escaped(page, "flash: template created")
    status, page, path = await pages.post("/campaigns/new", {"name": "Spring", "segment_id": str(segment),
                                                             "template_id": str(template), "subject": "Hello"})
    campaign = int(path.rsplit("/", 1)[1])
    assert_escaped(page, "campaign page after creation")

    for path in ("/contacts", f"/contacts/{mallory}", f"/contacts/{mallory}/delete", "/segments",
                 f"/segments/{segment}", f"/segments/{segment}/rename", f"/segments/{segment}/delete", "/templates",
                 f"/templates/{template}", f"/templates/{template}/preview", f"/templates/{template}/delete",
                 "/campaigns/new", f"/campaigns/{campaign}", f"/campaigns/{campaign}/edit", "/campaigns", "/",
                 "/contacts/import"):
        status, page = await pages.get(path)
        assert status == 200, path
        if path != f"/contacts/{mallory}/delete":
            assert_escaped(page, path)
        else:
            # The confirmation names the contact by address only.
            assert "<script>alert" not in page

    status, page = await pages.get(f"/templates/{template}/preview?contact=mallory@example.com")
    assert "<script>alert" not in page
    assert "&lt;script&gt;" in page

    await pages.post(f"/campaigns/{campaign}/send", {})
    status, page, _ = await pages.post(f"/segments/{segment}/rename", {"name": SCRIPT + "2"})
    assert_escaped(page, "flash: segment renamed")
    status, page, _ = await pages.post(f"/templates/{template}/delete", {})
    assert_escaped(page, "flash: template deleted")
    status, page, _ = await pages.post(f"/segments/{segment}/delete", {})
    assert_escaped(page, "flash: segment deleted")
    _, page = await pages.get(f"/campaigns/{campaign}")
    assert "<script>alert" not in page


async def test_preview_iframe_sandboxed_without_scripts(pages):
    template = await add_template(pages, "Scripted", "<p>Hi</p><script>alert(1)</script><img src=x onerror=alert(2)>")
    status, page = await pages.get(f"/templates/{template}/preview")
    assert status == 200
    frames = re.findall(r"<iframe[^>]*>", page)
    assert len(frames) == 1
    assert re.search(r"\ssandbox[\s>=]", frames[0])
    assert "allow-scripts" not in frames[0]
    assert "allow-same-origin" not in frames[0]
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in frames[0]


async def test_dashboard_contact_count(pages, database_url, monkeypatch):
    for number in range(3):
        await add_contact(pages, f"count{number}@example.com")
    _, dashboard = await pages.get("/")
    assert '<dt>Contacts</dt><dd><a href="/contacts">3</a>' in dashboard

    # Above EXACT_COUNT_LIMIT contacts the planner's estimate is shown, which needs no scan of them all.
    monkeypatch.setattr(contacts_repository, "EXACT_COUNT_LIMIT", 2)
    connection = psycopg2.connect(database_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE contacts")
    finally:
        connection.close()
    _, dashboard = await pages.get("/")
    assert '<dt>Contacts</dt><dd><a href="/contacts">about 3</a>' in dashboard
