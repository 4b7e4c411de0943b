"""Contacts: SQL for listing, editing, importing and exporting."""

from dataclasses import dataclass
from typing import AsyncIterator

import psycopg2.errors

from web.db import Json, text_array
from web.errors import Conflict, NotFound
from web.repositories import page_of

COLUMNS = "id, email, name, first_name, last_name, attributes, unsubscribed_at, created_at, updated_at"


def _prefix_pattern(search: str) -> str:
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


def _filter(search: str, segment_id: int | None) -> tuple[str, list[str], dict]:
    """Return the joins, conditions and parameters that select contacts by `search` and segment."""
    conditions = []
    params = {}
    joins = ""
    if search:
        # The expressions of the indexes contacts_email_key and contacts_name_prefix_idx,
        # so that each serves its part.
        conditions.append("(lower(c.email) LIKE lower(%(prefix)s) OR lower(c.name) LIKE lower(%(prefix)s))")
        params["prefix"] = _prefix_pattern(search)
    if segment_id is not None:
        joins = "JOIN segment_contacts s ON s.contact_id = c.id AND s.segment_id = %(segment_id)s"
        params["segment_id"] = segment_id
    return joins, conditions, params


async def list_page(db, *, search: str = "", limit: int, after: int = 0, segment_id: int | None = None) -> dict:
    """Return contacts with id above `after` whose address or name starts with `search`."""
    joins, conditions, params = _filter(search, segment_id)
    conditions.insert(0, "c.id > %(after)s")
    params.update({"after": after, "limit": limit + 1})
    rows = await db.fetch_all(
        f"SELECT {', '.join('c.' + column for column in COLUMNS.split(', '))} FROM contacts c {joins}"
        f" WHERE {' AND '.join(conditions)} ORDER BY c.id LIMIT %(limit)s",
        params,
    )
    return page_of(rows, limit)


async def previous_cursor(db, *, search: str = "", limit: int, after: int, segment_id: int | None = None) -> int:
    """Return the `after` cursor of the page of `limit` contacts before the page that starts after `after`.

    Returns 0 when that page is the first one.
    """
    joins, conditions, params = _filter(search, segment_id)
    conditions.insert(0, "c.id <= %(after)s")
    params.update({"after": after, "limit": limit})
    cursor = await db.fetch_value(
        f"SELECT c.id FROM contacts c {joins} WHERE {' AND '.join(conditions)}"
        " ORDER BY c.id DESC OFFSET %(limit)s LIMIT 1",
        params,
    )
    return cursor or 0


async def ids_by_email(db, emails: list[str]) -> dict[str, int]:
    """Return the id of each contact whose address is in `emails`, keyed by the lowercased address."""
    rows = await db.fetch_all(
        "SELECT id, lower(email) AS address FROM contacts WHERE lower(email) = ANY(%s)",
        ([email.lower() for email in emails],),
    )
    return {row["address"]: row["id"] for row in rows}


# Above this many contacts, the list shows PostgreSQL's estimate instead of
# counting every row, which takes tens of milliseconds per 1,000,000 rows.
EXACT_COUNT_LIMIT = 100_000


async def count(db) -> tuple[int, bool]:
    """Return the number of contacts and whether it is exact; large tables get the planner's estimate."""
    estimate = await db.fetch_value("SELECT reltuples::bigint FROM pg_class WHERE oid = 'contacts'::regclass")
    if estimate is not None and estimate > EXACT_COUNT_LIMIT:
        return estimate, False
    return await db.fetch_value("SELECT count(*) FROM contacts"), True


async def get(db, contact_id: int) -> dict:
    row = await db.fetch_one(f"SELECT {COLUMNS} FROM contacts WHERE id = %s", (contact_id,))
    if row is None:
        raise NotFound(f"contact {contact_id} not found")
    return row


async def create(db, contact: dict) -> dict:
    """Insert a contact; raise Conflict when its address exists in any case."""
    try:
        return await db.fetch_one(
            f"INSERT INTO contacts (email, name, first_name, last_name, attributes)"
            f" VALUES (%(email)s, %(name)s, %(first_name)s, %(last_name)s, %(attributes)s) RETURNING {COLUMNS}",
            {**contact, "attributes": Json(contact["attributes"])},
        )
    except psycopg2.errors.UniqueViolation:
        raise Conflict(f"a contact with the address {contact['email']} exists already", field="email") from None


async def update(db, contact_id: int, contact: dict) -> dict:
    """Replace a contact's fields; raise NotFound or Conflict."""
    try:
        row = await db.fetch_one(
            f"UPDATE contacts SET email = %(email)s, name = %(name)s, first_name = %(first_name)s,"
            f" last_name = %(last_name)s, attributes = %(attributes)s, updated_at = now()"
            f" WHERE id = %(id)s RETURNING {COLUMNS}",
            {**contact, "id": contact_id, "attributes": Json(contact["attributes"])},
        )
    except psycopg2.errors.UniqueViolation:
        raise Conflict(f"another contact has the address {contact['email']}", field="email") from None
    if row is None:
        raise NotFound(f"contact {contact_id} not found")
    return row


async def unsubscribe(db, contact_id: int) -> dict:
    """Mark the contact unsubscribed, keeping the time of its first unsubscribe; raise NotFound."""
    row = await db.fetch_one(
        f"UPDATE contacts SET unsubscribed_at = coalesce(unsubscribed_at, now())"
        f" WHERE id = %s RETURNING {COLUMNS}",
        (contact_id,),
    )
    if row is None:
        raise NotFound(f"contact {contact_id} not found")
    return row


async def delete(db, contact_id: int) -> None:
    if await db.execute("DELETE FROM contacts WHERE id = %s", (contact_id,)) == 0:
        raise NotFound(f"contact {contact_id} not found")


@dataclass(frozen=True)
class UpsertBatch:
    """Contacts ready for `upsert_batch`: their columns as array literals, built by `prepare_upsert`."""

    size: int
    columns: dict[str, str]


def prepare_upsert(rows: list[dict]) -> UpsertBatch:
    """Build the UpsertBatch of `rows`, without a connection, so that a thread can build it.

    The rows must have distinct addresses without regard to case, and their
    attributes as JSON text.
    """
    return UpsertBatch(len(rows), {
        "emails": text_array([row["email"] for row in rows]),
        "names": text_array([row["name"] for row in rows]),
        "first_names": text_array([row["first_name"] for row in rows]),
        "last_names": text_array([row["last_name"] for row in rows]),
        "attributes": text_array([row["attributes"] for row in rows]),
    })


async def upsert_batch(db, batch: UpsertBatch, segment_id: int | None = None) -> tuple[int, int]:
    """Insert or update contacts by address, and add them to `segment_id` if given, in one statement.

    Empty fields leave the stored ones as they are, and attributes of an
    existing contact are merged with the new ones. Returns how many
    contacts were created and how many updated.
    """
    if not batch.size:
        return 0, 0
    rows_returned = await db.fetch_tuples(
        """
        WITH upserted AS (
            INSERT INTO contacts (email, name, first_name, last_name, attributes)
            SELECT * FROM unnest(%(emails)s::text[], %(names)s::text[], %(first_names)s::text[],
                                 %(last_names)s::text[], %(attributes)s::jsonb[])
            ON CONFLICT (lower(email)) DO UPDATE SET
                -- A name equal to the row's first and last names was made of them, so it is made
                -- again of the merged ones; a stored name without parts is kept then.
                name = CASE
                    WHEN EXCLUDED.name = '' THEN contacts.name
                    WHEN EXCLUDED.name <> concat_ws(' ', NULLIF(EXCLUDED.first_name, ''),
                                                    NULLIF(EXCLUDED.last_name, '')) THEN EXCLUDED.name
                    WHEN contacts.first_name = '' AND contacts.last_name = '' AND contacts.name <> ''
                        THEN contacts.name
                    ELSE concat_ws(' ',
                                   COALESCE(NULLIF(EXCLUDED.first_name, ''), NULLIF(contacts.first_name, '')),
                                   COALESCE(NULLIF(EXCLUDED.last_name, ''), NULLIF(contacts.last_name, '')))
                END,
                first_name = CASE WHEN EXCLUDED.first_name <> '' THEN EXCLUDED.first_name
                                  ELSE contacts.first_name END,
                last_name = CASE WHEN EXCLUDED.last_name <> '' THEN EXCLUDED.last_name ELSE contacts.last_name END,
                attributes = contacts.attributes || EXCLUDED.attributes,
                updated_at = now()
            RETURNING id, (xmax = 0) AS created
        ), segment AS (
            -- The lock keeps the segment from being deleted before this commits.
            SELECT id FROM segments WHERE id = %(segment_id)s FOR KEY SHARE
        ), joined_created AS (
            -- A contact created here cannot be a member yet, so it needs no conflict check.
            INSERT INTO segment_contacts (segment_id, contact_id)
            SELECT segment.id, upserted.id FROM upserted, segment WHERE upserted.created
        ), joined_updated AS (
            INSERT INTO segment_contacts (segment_id, contact_id)
            SELECT segment.id, upserted.id FROM upserted, segment WHERE NOT upserted.created
            ON CONFLICT DO NOTHING
        )
        SELECT count(*) FILTER (WHERE created), count(*) FROM upserted
        """,
        {**batch.columns, "segment_id": segment_id},
    )
    created, total = rows_returned[0]
    return created, total - created


async def analyze(db) -> None:
    """Refresh the planner's statistics of the contacts and their memberships, after a large change."""
    await db.execute("ANALYZE contacts, segment_contacts")


async def existing_ids(db, contact_ids: list[int]) -> set[int]:
    rows = await db.fetch_all("SELECT id FROM contacts WHERE id = ANY(%s)", (contact_ids,))
    return {row["id"] for row in rows}


async def iterate_all(db, batch_size: int = 5000) -> AsyncIterator[list[dict]]:
    """Yield every contact in id order, a batch at a time, for exports."""
    after = 0
    while True:
        rows = await db.fetch_all(
            f"SELECT {COLUMNS} FROM contacts WHERE id > %s ORDER BY id LIMIT %s", (after, batch_size)
        )
        if not rows:
            return
        yield rows
        after = rows[-1]["id"]


async def attribute_names(db) -> list[str]:
    rows = await db.fetch_all("SELECT DISTINCT jsonb_object_keys(attributes) AS name FROM contacts ORDER BY 1")
    return [row["name"] for row in rows]
