"""Campaigns and their jobs: SQL."""

import psycopg2.errors

from web.errors import Conflict, InvalidInput, NotFound
from web.repositories import page_of

JOB_STATUSES = ("pending", "retrying", "sent", "failed")
_COLUMNS = """
    c.id, c.name, c.segment_id, c.template_id, c.subject, c.status, c.jobs_total,
    c.created_at, c.sent_at, c.finished_at,
    s.name AS segment_name, t.name AS template_name
"""
_FROM = " FROM campaigns c LEFT JOIN segments s ON s.id = c.segment_id LEFT JOIN templates t ON t.id = c.template_id"


async def counts_by_status(db, campaign_id: int) -> dict[str, int]:
    rows = await db.fetch_all(
        "SELECT status, count(*) AS n FROM jobs WHERE campaign_id = %s GROUP BY status", (campaign_id,)
    )
    counts = dict.fromkeys(JOB_STATUSES, 0)
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


async def get(db, campaign_id: int) -> dict:
    """Return a campaign with `counts`, its jobs by status."""
    row = await db.fetch_one(f"SELECT {_COLUMNS} {_FROM} WHERE c.id = %s", (campaign_id,))
    if row is None:
        raise NotFound(f"campaign {campaign_id} not found")
    row["counts"] = await counts_by_status(db, campaign_id)
    return row


async def list_page(db, *, limit: int, after: int = 0) -> dict:
    """Return campaigns, newest first; `after` continues below that id."""
    condition = "c.id < %(after)s" if after else "TRUE"
    rows = await db.fetch_all(
        f"SELECT {_COLUMNS} {_FROM} WHERE {condition} ORDER BY c.id DESC LIMIT %(limit)s",
        {"after": after, "limit": limit + 1},
    )
    for row in rows[:limit]:
        row["counts"] = await counts_by_status(db, row["id"])
    return page_of(rows, limit)


async def create(db, campaign: dict) -> dict:
    """Insert a draft campaign; raise NotFound for an unknown segment or template."""
    try:
        row = await db.fetch_one(
            "INSERT INTO campaigns (name, segment_id, template_id, subject)"
            " VALUES (%(name)s, %(segment_id)s, %(template_id)s, %(subject)s) RETURNING id",
            campaign,
        )
    except psycopg2.errors.ForeignKeyViolation as error:
        field = "segment_id" if "segment" in str(error) else "template_id"
        raise NotFound(f"{field.removesuffix('_id')} {campaign[field]} not found", field=field) from None
    return await get(db, row["id"])


async def update_draft(db, campaign_id: int, campaign: dict) -> dict:
    try:
        updated = await db.execute(
            "UPDATE campaigns SET name = %(name)s, segment_id = %(segment_id)s, template_id = %(template_id)s,"
            " subject = %(subject)s WHERE id = %(id)s AND status = 'draft'",
            {**campaign, "id": campaign_id},
        )
    except psycopg2.errors.ForeignKeyViolation as error:
        field = "segment_id" if "segment" in str(error) else "template_id"
        raise NotFound(f"{field.removesuffix('_id')} {campaign[field]} not found", field=field) from None
    if updated == 0:
        await get(db, campaign_id)  # raises NotFound
        raise Conflict(f"campaign {campaign_id} was sent already; only a draft can be edited")
    return await get(db, campaign_id)


async def delete_draft(db, campaign_id: int) -> None:
    if await db.execute("DELETE FROM campaigns WHERE id = %s AND status = 'draft'", (campaign_id,)) == 0:
        await get(db, campaign_id)
        raise Conflict(f"campaign {campaign_id} was sent already; only a draft can be deleted")


async def start_sending(transaction, campaign_id: int) -> int:
    """Move a draft to `sending` and create one pending job per contact of its segment.

    Must run inside a transaction. Returns the number of jobs. Raises
    NotFound, Conflict when the campaign is not a draft, and InvalidInput when
    its segment or template is gone or the segment is empty.
    """
    campaign = await transaction.fetch_one(
        "SELECT id, status, segment_id, template_id FROM campaigns WHERE id = %s FOR UPDATE", (campaign_id,)
    )
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    if campaign["status"] != "draft":
        raise Conflict(f"campaign {campaign_id} is {campaign['status']}; a campaign is sent only once")
    if campaign["segment_id"] is None:
        raise InvalidInput("the campaign's segment was deleted; choose another segment", field="segment_id")
    if campaign["template_id"] is None:
        raise InvalidInput("the campaign's template was deleted; choose another template", field="template_id")

    jobs = await transaction.execute(
        "INSERT INTO jobs (campaign_id, contact_id, email)"
        " SELECT %s, c.id, c.email FROM segment_contacts m JOIN contacts c ON c.id = m.contact_id"
        " WHERE m.segment_id = %s ORDER BY c.id",
        (campaign_id, campaign["segment_id"]),
    )
    if jobs == 0:
        raise InvalidInput("the campaign's segment has no contacts; add contacts first", field="segment_id")
    await transaction.execute(
        "UPDATE campaigns c SET status = 'sending', sent_at = now(), jobs_total = %s, html = t.html, text = t.text"
        " FROM templates t WHERE c.id = %s AND t.id = c.template_id",
        (jobs, campaign_id),
    )
    return jobs


async def list_jobs(db, campaign_id: int, *, status: str | None, limit: int, after: int = 0) -> dict:
    params = {"campaign_id": campaign_id, "after": after, "limit": limit + 1, "status": status}
    condition = " AND j.status = %(status)s" if status else ""
    rows = await db.fetch_all(
        "SELECT j.id, j.contact_id, j.email, j.status, j.attempts, j.message_id, j.error, j.updated_at"
        " FROM jobs j WHERE j.campaign_id = %(campaign_id)s AND j.id > %(after)s" + condition +
        " ORDER BY j.id LIMIT %(limit)s",
        params,
    )
    return page_of(rows, limit)


async def previous_jobs_cursor(db, campaign_id: int, *, status: str | None, limit: int, after: int) -> int:
    """Return the `after` cursor of the page of `limit` jobs before the page that starts after `after`.

    Returns 0 when that page is the first one.
    """
    condition = " AND status = %(status)s" if status else ""
    cursor = await db.fetch_value(
        "SELECT id FROM jobs WHERE campaign_id = %(campaign_id)s AND id <= %(after)s" + condition +
        " ORDER BY id DESC OFFSET %(limit)s LIMIT 1",
        {"campaign_id": campaign_id, "after": after, "limit": limit, "status": status},
    )
    return cursor or 0


async def recent(db, limit: int = 5) -> list[dict]:
    page = await list_page(db, limit=limit)
    return page["items"]


async def totals(db) -> dict[str, int]:
    """Return dashboard totals: contacts, segments, templates, campaigns and jobs by status."""
    row = await db.fetch_one(
        "SELECT (SELECT count(*) FROM contacts) AS contacts, (SELECT count(*) FROM segments) AS segments,"
        " (SELECT count(*) FROM templates) AS templates, (SELECT count(*) FROM campaigns) AS campaigns,"
        " (SELECT count(*) FROM jobs WHERE status = 'sent') AS sent,"
        " (SELECT count(*) FROM jobs WHERE status = 'failed') AS failed"
    )
    return row
