"""The segments and templates API."""

import psycopg2
import psycopg2.errors
import pytest

from web.db import Database
from web.repositories import contacts as contacts_repository
from web.repositories import segments as segments_repository


async def contact_ids(api, *emails):
    ids = []
    for email in emails:
        _, contact = await api.post("/api/v1/contacts", json={"email": email})
        ids.append(contact["id"])
    return ids


async def test_segment_lifecycle(api):
    status, segment = await api.post("/api/v1/segments", json={"name": "Customers"})
    assert status == 201
    assert segment["contact_count"] == 0

    ids = await contact_ids(api, "a@example.com", "b@example.com", "c@example.com")
    status, body = await api.post(f"/api/v1/segments/{segment['id']}/contacts", json={"contact_ids": ids})
    assert status == 200
    assert body["added"] == 3
    _, again = await api.post(f"/api/v1/segments/{segment['id']}/contacts", json={"contact_ids": ids[:1]})
    assert again["added"] == 0
    assert again["segment"]["contact_count"] == 3

    status, body = await api.request("DELETE", f"/api/v1/segments/{segment['id']}/contacts",
                                     json={"contact_ids": ids[:2]})
    assert status == 200
    assert body["segment"]["contact_count"] == 1
    _, members = await api.get(f"/api/v1/segments/{segment['id']}/contacts")
    assert [item["email"] for item in members["items"]] == ["c@example.com"]

    status, renamed = await api.put(f"/api/v1/segments/{segment['id']}", json={"name": "Buyers"})
    assert status == 200
    assert renamed["name"] == "Buyers"

    status, _ = await api.delete(f"/api/v1/segments/{segment['id']}")
    assert status == 204
    _, listing = await api.get("/api/v1/segments")
    assert listing["items"] == []
    _, contacts = await api.get("/api/v1/contacts")
    assert len(contacts["items"]) == 3


async def test_segment_bad_input(api):
    await api.post("/api/v1/segments", json={"name": "Same"})
    status, body = await api.post("/api/v1/segments", json={"name": "SAME"})
    assert status == 409
    status, body = await api.post("/api/v1/segments", json={"name": "  "})
    assert status == 400
    assert body["field"] == "name"
    _, segment = await api.post("/api/v1/segments", json={"name": "Other"})
    [known] = await contact_ids(api, "known@example.com")
    status, body = await api.post(f"/api/v1/segments/{segment['id']}/contacts",
                                  json={"contact_ids": [known, 424242]})
    assert status == 404
    assert "424242" in body["error"]
    _, fetched = await api.get(f"/api/v1/segments/{segment['id']}")
    assert fetched["contact_count"] == 0
    status, body = await api.post(f"/api/v1/segments/{segment['id']}/contacts", json={"contact_ids": []})
    assert status == 400
    status, body = await api.post("/api/v1/segments/999/contacts", json={"contact_ids": [known]})
    assert status == 404


async def test_template_lifecycle_and_preview(api):
    status, template = await api.post("/api/v1/templates", json={
        "name": "Welcome", "html": "<h1>Hello {{ first_name }}</h1><p>{{ attributes.city }}</p>",
        "text": "Hello {{ first_name | default('there') }}",
    })
    assert status == 201
    _, contact = await api.post("/api/v1/contacts", json={
        "email": "zoe@example.com", "first_name": "<Zoë>", "attributes": {"city": "Oslo"}})
    status, preview = await api.get(
        f"/api/v1/templates/{template['id']}/preview?contact_id={contact['id']}&subject=Hi+{{{{first_name}}}}")
    assert status == 200
    assert preview["html"] == "<h1>Hello &lt;Zoë&gt;</h1><p>Oslo</p>"
    assert preview["subject"] == "Hi <Zoë>"
    assert preview["text"] == "Hello <Zoë>"

    _, bare = await api.post("/api/v1/contacts", json={"email": "bare@example.com"})
    status, preview = await api.get(f"/api/v1/templates/{template['id']}/preview?contact_id={bare['id']}")
    assert status == 200
    assert "first_name" in preview["error"]

    status, updated = await api.put(f"/api/v1/templates/{template['id']}",
                                    json={"name": "Welcome 2", "html": "<p>Hi</p>"})
    assert status == 200
    assert updated["name"] == "Welcome 2"
    assert (await api.delete(f"/api/v1/templates/{template['id']}"))[0] == 204


@pytest.mark.parametrize("payload, field, words", [
    ({"name": "T", "html": "<p>\n{% if %}\n</p>"}, "html", "line 2"),
    ({"name": "T", "html": "<p>{{ name | nosuchfilter }}</p>"}, "html", "nosuchfilter"),
    ({"name": "T", "html": "<p>x</p>", "text": "{% for %}"}, "text", "line 1"),
    ({"name": "", "html": "<p>x</p>"}, "name", "empty"),
    ({"name": "T"}, "html", "required"),
])
async def test_template_errors_refused_at_save(api, payload, field, words):
    status, body = await api.post("/api/v1/templates", json=payload)
    assert status == 400
    assert body["field"] == field
    assert words in body["error"]
    _, listing = await api.get("/api/v1/templates")
    assert listing["items"] == []


async def test_memberships_deleted_with_owner(api, database_url):
    ids = await contact_ids(api, "a@example.com", "b@example.com", "c@example.com")
    segments = []
    for name in ("First", "Second"):
        _, segment = await api.post("/api/v1/segments", json={"name": name})
        await api.post(f"/api/v1/segments/{segment['id']}/contacts", json={"contact_ids": ids})
        segments.append(segment["id"])

    assert (await api.delete(f"/api/v1/contacts/{ids[0]}"))[0] == 204
    for segment_id in segments:
        _, segment = await api.get(f"/api/v1/segments/{segment_id}")
        assert segment["contact_count"] == 2

    assert (await api.delete(f"/api/v1/segments/{segments[0]}"))[0] == 204
    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT segment_id, contact_id FROM segment_contacts ORDER BY contact_id")
            assert cursor.fetchall() == [(segments[1], ids[1]), (segments[1], ids[2])]
    finally:
        connection.close()


@pytest.mark.parametrize("adding", ["add_contacts", "upsert_batch"])
async def test_adding_members_locks_rows(database_url, adding):
    """Without foreign keys, the writers' locks are what keeps a membership from pointing at nothing."""
    db = await Database.connect(database_url)
    other = psycopg2.connect(database_url)
    other.autocommit = True
    try:
        segment_id = await db.fetch_value("INSERT INTO segments (name) VALUES ('Locked') RETURNING id")
        contact_id = await db.fetch_value("INSERT INTO contacts (email) VALUES ('kept@example.com') RETURNING id")
        async with db.transaction() as transaction:
            if adding == "add_contacts":
                await segments_repository.add_contacts(transaction, segment_id, [contact_id])
            else:
                batch = contacts_repository.prepare_upsert(
                    [{"email": "kept@example.com", "name": "Kept", "first_name": "", "last_name": "",
                      "attributes": "{}"}]
                )
                assert await contacts_repository.upsert_batch(transaction, batch, segment_id) == (0, 1)
            with other.cursor() as cursor:
                cursor.execute("SET lock_timeout = '200ms'")
                for table, row_id in (("segments", segment_id), ("contacts", contact_id)):
                    with pytest.raises(psycopg2.errors.LockNotAvailable):
                        cursor.execute(f"DELETE FROM {table} WHERE id = %s", (row_id,))
        with other.cursor() as cursor:
            cursor.execute("DELETE FROM contacts WHERE id = %s", (contact_id,))
            cursor.execute("SELECT count(*) FROM segment_contacts")
            assert cursor.fetchone() == (0,)
    finally:
        other.close()
        await db.close()
