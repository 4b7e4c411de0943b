"""The unsubscribe link of every email: its page, the one-click POST of mail programs, and bad links."""

import re

import aiohttp
import pytest

from tests.conftest import COOKIE_SECRET
from web.unsubscribe import UnsubscribeLinks

# web_service runs with config/web.json's public_url.
LINKS = UnsubscribeLinks("http://127.0.0.1:5050", COOKIE_SECRET)


@pytest.fixture
async def visitor():
    """A browser that is not signed in, as the recipient of an email is."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def fetch(session, method, url, **kwargs) -> tuple[int, str]:
    async with session.request(method, url, allow_redirects=False, **kwargs) as response:
        return response.status, await response.text()


async def test_unsubscribe_page_then_confirm(api, web_service, visitor):
    _, contact = await api.post("/api/v1/contacts", json={"email": "ada@example.com"})
    url = web_service.base_url + "/unsubscribe/" + LINKS.token(contact["id"])

    status, page = await fetch(visitor, "GET", url)
    assert status == 200
    assert "Stop sending campaign emails to <strong>ada@example.com</strong>?" in page
    _, still = await api.get(f"/api/v1/contacts/{contact['id']}")
    assert still["unsubscribed_at"] is None

    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    status, page = await fetch(visitor, "POST", url, data={"_xsrf": xsrf})
    assert status == 200
    assert "ada@example.com is unsubscribed" in page
    _, unsubscribed = await api.get(f"/api/v1/contacts/{contact['id']}")
    assert unsubscribed["unsubscribed_at"] is not None


async def test_one_click_unsubscribe_without_csrf_token(api, web_service, visitor):
    _, contact = await api.post("/api/v1/contacts", json={"email": "grace@example.com"})
    url = web_service.base_url + "/unsubscribe/" + LINKS.token(contact["id"])

    # What a mail program posts for List-Unsubscribe-Post, with no cookie and no CSRF token.
    status, page = await fetch(visitor, "POST", url, data={"List-Unsubscribe": "One-Click"})
    assert status == 200
    assert "grace@example.com is unsubscribed" in page
    _, first = await api.get(f"/api/v1/contacts/{contact['id']}")
    assert first["unsubscribed_at"] is not None

    status, _ = await fetch(visitor, "POST", url, data={"List-Unsubscribe": "One-Click"})
    assert status == 200
    _, again = await api.get(f"/api/v1/contacts/{contact['id']}")
    assert again["unsubscribed_at"] == first["unsubscribed_at"]


async def test_invalid_links_rejected(api, web_service, visitor):
    _, contact = await api.post("/api/v1/contacts", json={"email": "alan@example.com"})
    token = LINKS.token(contact["id"])
    other_secret = UnsubscribeLinks("http://127.0.0.1:5050", "another secret of at least thirty-two chars")
    bad_tokens = [
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # a changed signature
        f"{contact['id'] + 1}-{token.partition('-')[2]}",  # another contact's id under this signature
        other_secret.token(contact["id"]),  # signed with another cookie secret
        LINKS.token(999_999),  # a contact that does not exist
    ]
    for bad in bad_tokens:
        for method in ("GET", "POST"):
            status, page = await fetch(visitor, method, web_service.base_url + "/unsubscribe/" + bad)
            assert status == 404, (bad, method)
            assert "This unsubscribe link is not valid." in page
    _, unchanged = await api.get(f"/api/v1/contacts/{contact['id']}")
    assert unchanged["unsubscribed_at"] is None


def test_token_round_trip():
    assert LINKS.contact_id(LINKS.token(42)) == 42
    assert LINKS.url(42) == "http://127.0.0.1:5050/unsubscribe/" + LINKS.token(42)
    for malformed in ("", "42", "-abc", "x-abc", "42-", "1" * 19 + "-abc"):
        assert LINKS.contact_id(malformed) is None, malformed


async def test_send_confirmation_leaves_out_unsubscribed(api, web_service, visitor, user_pages):
    _, segment = await api.post("/api/v1/segments", json={"name": "Readers"})
    ids = []
    for email in ("one@example.com", "two@example.com"):
        _, contact = await api.post("/api/v1/contacts", json={"email": email})
        ids.append(contact["id"])
    await api.post(f"/api/v1/segments/{segment['id']}/contacts", json={"contact_ids": ids})
    _, template = await api.post("/api/v1/templates", json={"name": "T", "html": "<p>Hi</p>"})
    _, campaign = await api.post("/api/v1/campaigns", json={
        "name": "News", "segment_id": segment["id"], "template_id": template["id"], "subject": "News"})
    await fetch(visitor, "POST", web_service.base_url + "/unsubscribe/" + LINKS.token(ids[0]),
                data={"List-Unsubscribe": "One-Click"})

    status, page = await user_pages.get(f"/campaigns/{campaign['id']}/send")
    assert status == 200
    assert "<dt>Left out</dt><dd>1 contact who unsubscribed</dd>" in page
    assert '<button type="submit" id="confirm-send-button">Send to 1 contact</button>' in page
    # The template has no {{ unsubscribe_url }}.
    assert 'id="no-unsubscribe-link"' in page

    await api.put(f"/api/v1/templates/{template['id']}",
                  json={"name": "T", "html": '<p>Hi</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>'})
    _, page = await user_pages.get(f"/campaigns/{campaign['id']}/send")
    assert 'id="no-unsubscribe-link"' not in page

    await fetch(visitor, "POST", web_service.base_url + "/unsubscribe/" + LINKS.token(ids[1]),
                data={"List-Unsubscribe": "One-Click"})
    _, page = await user_pages.get(f"/campaigns/{campaign['id']}/send")
    assert "Every contact of the segment unsubscribed." in page
    assert 'id="confirm-send-button"' not in page


async def test_unsubscribed_shown_on_contact_pages(api, web_service, visitor, user_pages):
    _, contact = await api.post("/api/v1/contacts", json={"email": "gone@example.com"})
    _, page = await user_pages.get(f"/contacts/{contact['id']}")
    assert 'id="unsubscribed"' not in page

    await fetch(visitor, "POST", web_service.base_url + "/unsubscribe/" + LINKS.token(contact["id"]),
                data={"List-Unsubscribe": "One-Click"})
    _, page = await user_pages.get(f"/contacts/{contact['id']}")
    assert 'id="unsubscribed"' in page
    marked = 'gone@example.com</a> <span class="status status-unsubscribed">unsubscribed</span>'
    _, listing = await user_pages.get("/contacts")
    assert marked in listing
    _, segment = await api.post("/api/v1/segments", json={"name": "Former readers"})
    await api.post(f"/api/v1/segments/{segment['id']}/contacts", json={"contact_ids": [contact["id"]]})
    _, members = await user_pages.get(f"/segments/{segment['id']}")
    assert marked in members
