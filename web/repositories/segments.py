"""Segments and their members: SQL."""

import psycopg2.errors

from web.errors import Conflict, NotFound
from web.repositories import page_of

_SELECT = """
    SELECT s.id, s.name, s.created_at,
           (SELECT count(*) FROM segment_contacts m WHERE m.segment_id = s.id) AS contact_count
    FROM segments s
"""


async def list_page(db, *, limit: int, after: int = 0) -> dict:
    rows = await db.fetch_all(_SELECT + " WHERE s.id > %s ORDER BY s.id LIMIT %s", (after, limit + 1))
    return page_of(rows, limit)


async def list_all(db) -> list[dict]:
    """Return every segment by name, for the campaign form."""
    return await db.fetch_all(_SELECT + " ORDER BY lower(s.name)")


async def get(db, segment_id: int) -> dict:
    row = await db.fetch_one(_SELECT + " WHERE s.id = %s", (segment_id,))
    if row is None:
        raise NotFound(f"segment {segment_id} not found", field="segment_id")
    return row


async def create(db, name: str) -> dict:
    try:
        row = await db.fetch_one("INSERT INTO segments (name) VALUES (%s) RETURNING id", (name,))
    except psycopg2.errors.UniqueViolation:
        raise Conflict(f"a segment named {name!r} exists already", field="name") from None
    return await get(db, row["id"])


async def rename(db, segment_id: int, name: str) -> dict:
    try:
        updated = await db.execute("UPDATE segments SET name = %s WHERE id = %s", (name, segment_id))
    except psycopg2.errors.UniqueViolation:
        raise Conflict(f"a segment named {name!r} exists already", field="name") from None
    if updated == 0:
        raise NotFound(f"segment {segment_id} not found")
    return await get(db, segment_id)


async def delete(db, segment_id: int) -> None:
    if await db.execute("DELETE FROM segments WHERE id = %s", (segment_id,)) == 0:
        raise NotFound(f"segment {segment_id} not found")


async def add_contacts(db, segment_id: int, contact_ids: list[int]) -> int:
    """Add contacts to a segment; return how many were not members yet.

    Ids of contacts or a segment that do not exist add nothing. The locks
    keep them all from being deleted before the caller commits.
    """
    return await db.execute(
        "INSERT INTO segment_contacts (segment_id, contact_id)"
        " SELECT s.id, c.id FROM segments s, contacts c WHERE s.id = %s AND c.id = ANY(%s::bigint[])"
        " FOR KEY SHARE OF s, c"
        " ON CONFLICT DO NOTHING",
        (segment_id, contact_ids),
    )


async def remove_contacts(db, segment_id: int, contact_ids: list[int]) -> int:
    return await db.execute(
        "DELETE FROM segment_contacts WHERE segment_id = %s AND contact_id = ANY(%s::bigint[])",
        (segment_id, contact_ids),
    )
