"""CSV import through the API, on the kind of files people really export."""

import asyncio
import random
import time

import psycopg2
import pytest

MESSY = (
    "\ufeffEmail;First name;Last name;Full name;City\r\n"
    "zoe@example.com;Zoë;Ng;\"Ng, Zoë\";Oslo\r\n"
    "\r\n"
    "yamada@example.jp;太郎;山田;山田 太郎;東京\r\n"
    "not-an-address;x;y;z;w\r\n"
    "ZOE@example.com;Zoe;Dup;;\r\n"
    "quote@example.com;\"Anne \"\"Nan\"\"\";Smith;\"Smith,\nAnne\";\"Paris;FR\"\r\n"
    ";no;address;;\r\n"
    "too@example.com;a;b;c;d;extra\r\n"
    "last@example.com;Last;;;\r\n"
)


async def import_csv(api, text, query="", content_type="text/csv"):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return await api.post(f"/api/v1/contacts/import{query}", data=data, headers={"Content-Type": content_type})


async def all_contacts(api):
    _, page = await api.get("/api/v1/contacts?limit=500")
    return {item["email"].lower(): item for item in page["items"]}


async def test_messy_file_imports_valid_rows(api):
    status, report = await import_csv(api, MESSY)
    assert status == 200, report
    assert report["created"] == 4
    assert report["updated"] == 0
    assert report["skipped"] == 4
    reasons = {error["line"]: error["reason"] for error in report["errors"]}
    assert set(reasons) == {5, 6, 9, 10}
    assert "not a valid email address" in reasons[5]
    assert "duplicate of line 2" in reasons[6]
    assert "email field is empty" in reasons[9]
    assert "6 fields" in reasons[10]

    contacts = await all_contacts(api)
    assert set(contacts) == {"zoe@example.com", "yamada@example.jp", "quote@example.com", "last@example.com"}
    assert contacts["zoe@example.com"]["name"] == "Ng, Zoë"
    assert contacts["zoe@example.com"]["attributes"] == {"City": "Oslo"}
    assert contacts["yamada@example.jp"]["last_name"] == "山田"
    assert contacts["quote@example.com"]["first_name"] == 'Anne "Nan"'
    assert contacts["quote@example.com"]["name"] == "Smith,\nAnne"
    assert contacts["quote@example.com"]["attributes"] == {"City": "Paris;FR"}
    assert contacts["last@example.com"]["name"] == "Last"


async def test_import_updates_existing_contacts(api):
    await api.post("/api/v1/contacts", json={"email": "a@example.com", "name": "Old", "attributes": {"plan": "free"}})
    status, report = await import_csv(api, "email,name,city\nA@example.com,New,Rome\nb@example.com,,\n")
    assert status == 200
    assert (report["created"], report["updated"], report["skipped"]) == (1, 1, 0)
    contacts = await all_contacts(api)
    assert len(contacts) == 2
    assert contacts["a@example.com"]["name"] == "New"
    assert contacts["a@example.com"]["attributes"] == {"plan": "free", "city": "Rome"}


async def test_import_array_special_characters(api):
    # Rows reach PostgreSQL as array literals, where backslashes, quotes, braces and commas are special.
    text = 'email,name,note\nodd@example.com,"C:\\path {a,b} ""quoted""",back\\slash {}\nnul@example.com,Nu\x00l,\n'
    status, report = await import_csv(api, text)
    assert status == 200, report
    assert (report["created"], report["skipped"]) == (1, 1)
    assert report["errors"] == [{"line": 3, "reason": "the name field contains a NUL character; remove it"}]
    contact = (await all_contacts(api))["odd@example.com"]
    assert contact["name"] == 'C:\\path {a,b} "quoted"'
    assert contact["attributes"] == {"note": "back\\slash {}"}


async def test_import_merges_names_with_stored_ones(api):
    for contact in ({"email": "ada@example.com", "first_name": "Ada", "last_name": "Byron"},
                    {"email": "grace@example.com", "name": "Grace Hopper"},
                    {"email": "alan@example.com", "first_name": "Alan", "last_name": "Turing"}):
        await api.post("/api/v1/contacts", json=contact)
    text = ("email,first_name,last_name,name\n"
            "ada@example.com,,Lovelace,\n"
            "grace@example.com,Grace,,\n"
            "alan@example.com,,,A. M. Turing\n")
    status, report = await import_csv(api, text)
    assert status == 200, report
    contacts = await all_contacts(api)
    assert contacts["ada@example.com"]["name"] == "Ada Lovelace"
    assert contacts["ada@example.com"]["first_name"] == "Ada"
    assert contacts["grace@example.com"]["name"] == "Grace Hopper"
    assert contacts["grace@example.com"]["first_name"] == "Grace"
    assert contacts["alan@example.com"]["name"] == "A. M. Turing"
    assert contacts["alan@example.com"]["last_name"] == "Turing"


async def test_import_into_segment(api):
    _, segment = await api.post("/api/v1/segments", json={"name": "Newsletter"})
    status, report = await import_csv(api, "email\na@example.com\nb@example.com\n", f"?segment_id={segment['id']}")
    assert status == 200
    assert report["created"] == 2
    _, fetched = await api.get(f"/api/v1/segments/{segment['id']}")
    assert fetched["contact_count"] == 2

    # Members already, a contact outside the segment and a new one.
    await api.post("/api/v1/contacts", json={"email": "c@example.com"})
    text = "email\na@example.com\nB@example.com\nc@example.com\nd@example.com\n"
    status, report = await import_csv(api, text, f"?segment_id={segment['id']}")
    assert status == 200, report
    assert (report["created"], report["updated"]) == (1, 3)
    _, members = await api.get(f"/api/v1/segments/{segment['id']}/contacts")
    assert [item["email"] for item in members["items"]] == ["a@example.com", "b@example.com", "c@example.com",
                                                              "d@example.com"]


@pytest.mark.parametrize("body, query, expected", [
    (b"name,city\nAna,Rome\n", "", "no email column"),
    (b"", "", "empty"),
    ("email\nana@example.com\n".encode("utf-16"), "", "UTF-8"),
    (b"email\na@example.com\n", "?segment_id=999", "segment 999 not found"),
    (b"email,email\na@example.com,b@example.com\n", "", "more than once"),
])
async def test_import_bad_file_changes_nothing(api, body, query, expected):
    status, report = await import_csv(api, body, query)
    assert status in (400, 404)
    assert expected in report["error"]
    assert await all_contacts(api) == {}


async def test_import_invalid_utf8_late_in_file_rolls_back(api):
    rows = "".join(f"user{number}@example.com\n" for number in range(5000))
    body = ("email\n" + rows).encode() + b"\xff\xfe@example.com\n"
    status, report = await import_csv(api, body)
    assert status == 400
    assert report["error"].startswith("the file is not valid UTF-8: line 5002 has the byte 0xFF")
    assert await all_contacts(api) == {}


async def test_import_rejects_other_content_type(api):
    status, report = await import_csv(api, "{}", content_type="application/json")
    assert status == 400
    assert "text/csv" in report["error"]


def last_analyze(database_url):
    """Return when contacts was last analyzed by an ANALYZE command (autovacuum's runs are not counted)."""
    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'contacts'")
            return cursor.fetchone()[0]
    finally:
        connection.close()


async def test_import_100k_rows(api, database_url):
    analyzed_before = last_analyze(database_url)
    generator = random.Random(3)
    lines = ["email;name;score"]
    for number in range(100_000):
        lines.append(f"person{number}@example.com;Person {number};{generator.randint(0, 100)}")
    status, report = await import_csv(api, "\n".join(lines) + "\n")
    assert status == 200
    assert report["created"] == 100_000
    assert report["skipped"] == 0
    _, page = await api.get("/api/v1/contacts?limit=1&search=person99999@")
    assert page["items"][0]["name"] == "Person 99999"

    # Searches are planned from fresh statistics rather than those of an almost empty table.
    deadline = time.monotonic() + 30
    while last_analyze(database_url) == analyzed_before:
        assert time.monotonic() < deadline, "the import did not refresh the statistics of the contacts"
        await asyncio.sleep(0.1)
