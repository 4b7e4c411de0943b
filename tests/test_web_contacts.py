"""The contacts API: editing, search, pagination, export and refusal of bad input."""

import csv
import io

import pytest


async def create(api, **fields):
    status, body = await api.post("/api/v1/contacts", json=fields)
    assert status == 201, body
    return body


async def test_contact_create_get_update_delete(api):
    contact = await create(api, email="Zoe@Example.COM", first_name="Zoë", last_name="Ng",
                           attributes={"city": "Oslo"})
    assert contact["email"] == "Zoe@example.com"
    assert contact["name"] == "Zoë Ng"

    status, fetched = await api.get(f"/api/v1/contacts/{contact['id']}")
    assert status == 200
    assert fetched["attributes"] == {"city": "Oslo"}

    status, updated = await api.put(f"/api/v1/contacts/{contact['id']}",
                                    json={"email": "zoe@example.com", "name": "Zoë N."})
    assert status == 200
    assert updated["name"] == "Zoë N."

    status, _ = await api.delete(f"/api/v1/contacts/{contact['id']}")
    assert status == 204
    status, body = await api.get(f"/api/v1/contacts/{contact['id']}")
    assert status == 404
    assert "not found" in body["error"]


async def test_contact_address_unique_ignoring_case(api):
    await create(api, email="ana@example.com")
    status, body = await api.post("/api/v1/contacts", json={"email": "ANA@example.com"})
    assert status == 409
    assert body["field"] == "email"


@pytest.mark.parametrize("payload, field", [
    ({}, "email"),
    ({"email": "not-an-address"}, "email"),
    ({"email": "a@example.com", "name": "x" * 201}, "name"),
    ({"email": "a@example.com", "nickname": "x"}, "nickname"),
    ({"email": "a@example.com", "attributes": ["x"]}, "attributes"),
    ({"email": 42}, "email"),
])
async def test_contact_bad_input_rejected(api, payload, field):
    status, body = await api.post("/api/v1/contacts", json=payload)
    assert status == 400
    assert body["field"] == field
    assert body["error"]
    status, listing = await api.get("/api/v1/contacts")
    assert listing["items"] == []


async def test_contact_malformed_json_rejected(api):
    status, body = await api.post("/api/v1/contacts", data=b'{"email": ')
    assert status == 400
    assert "not valid JSON" in body["error"]


async def test_contact_unknown_id_is_404(api):
    for method in ("get", "put", "delete"):
        kwargs = {"json": {"email": "x@example.com"}} if method == "put" else {}
        status, body = await getattr(api, method)("/api/v1/contacts/999999", **kwargs)
        assert status == 404, method
        assert body["error"] == "contact 999999 not found"


async def test_contact_list_search_and_pages(api):
    for number in range(7):
        await create(api, email=f"user{number}@example.com", name=f"User {number}")
    await create(api, email="other@example.org", name="50% off club")
    await create(api, email="fifty@example.org", name="500 offers")

    status, first = await api.get("/api/v1/contacts?limit=3&search=user")
    assert status == 200
    assert [item["email"] for item in first["items"]] == [f"user{n}@example.com" for n in range(3)]
    assert first["next"] is not None

    pages = [first]
    while pages[-1]["next"]:
        _, page = await api.get(f"/api/v1/contacts?limit=3&search=user&after={pages[-1]['next']}")
        pages.append(page)
    emails = [item["email"] for page in pages for item in page["items"]]
    assert emails == [f"user{n}@example.com" for n in range(7)]

    # % and _ are matched as themselves, not as LIKE wildcards.
    _, percent = await api.get("/api/v1/contacts?search=50%25")
    assert [item["email"] for item in percent["items"]] == ["other@example.org"]
    _, underscore = await api.get("/api/v1/contacts?search=5_0")
    assert underscore["items"] == []


async def test_contact_search_by_prefix(api):
    ada = await create(api, email="ada@example.com", first_name="Ada", last_name="Lovelace")
    grace = await create(api, email="admiral@navy.example", name="Grace Brewster Hopper")

    async def found(search):
        _, page = await api.get("/api/v1/contacts", params={"search": search})
        return [item["id"] for item in page["items"]]

    assert await found("AD") == [ada["id"], grace["id"]]
    assert await found("ada lov") == [ada["id"]]
    assert await found("grace b") == [grace["id"]]
    # Only the starts are indexed: the middle of an address or a name does not match.
    assert await found("example.com") == []
    assert await found("lovelace") == []


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=x", "after=-1", "after=abc"])
async def test_contact_list_bad_page_rejected(api, query):
    status, body = await api.get(f"/api/v1/contacts?{query}")
    assert status == 400
    assert body["field"] in ("limit", "after")


async def test_contact_export_has_attribute_columns(api):
    await create(api, email="a@example.com", name="Doe, Jane", attributes={"city": "Oslo"})
    await create(api, email="b@example.com", first_name="山田", attributes={"plan": "pro"})
    status, text = await api.get("/api/v1/contacts/export")
    assert status == 200
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["email", "name", "first_name", "last_name", "city", "plan"]
    assert rows[1] == ["a@example.com", "Doe, Jane", "", "", "Oslo", ""]
    assert rows[2] == ["b@example.com", "山田", "山田", "", "", "pro"]


async def test_unknown_api_path_is_json_404(api):
    status, body = await api.get("/api/v1/nothing-here")
    assert status == 404
    assert "no API endpoint" in body["error"]
