"""Campaigns and their jobs: SQL."""

import psycopg2.errors

from web.errors import Conflict, InvalidInput, NotFound
from web.repositories import page_of

JOB_STATUSES = ("pending", "retrying", "sent", "failed", "cancelled")
_COLUMNS = """
    c.id, c.name, c.segment_id, c.template_id, c.subject, c.status, c.pause_reason, c.dispatch_error,
    c.jobs_total, c.created_at, c.sent_at, c.finished_at,
    s.name AS segment_name, t.name AS template_name
"""
_FROM = " FROM campaigns c LEFT JOIN segments s ON s.id = c.segment_id LEFT JOIN templates t ON t.id = c.template_id"


async def _attach_counts(db, rows: list[dict]) -> None:
    """Set `counts` (jobs by status) on each campaign row, with one query."""
    counts = {row["id"]: dict.fromkeys(JOB_STATUSES, 0) for row in rows}
    if not counts:
        return
    found = await db.fetch_all(
        "SELECT campaign_id, status, jobs FROM campaign_job_counts WHERE campaign_id = ANY(%s::bigint[])",
        (list(counts),),
    )
    for item in found:
        counts[item["campaign_id"]][item["status"]] = item["jobs"]
    for row in rows:
        row["counts"] = counts[row["id"]]


async def get(db, campaign_id: int) -> dict:
    """Return a campaign with `counts`, its jobs by status."""
    row = await db.fetch_one(f"SELECT {_COLUMNS} {_FROM} WHERE c.id = %s", (campaign_id,))
    if row is None:
        raise NotFound(f"campaign {campaign_id} not found")
    await _attach_counts(db, [row])
    return row


async def list_page(db, *, limit: int, after: int = 0) -> dict:
    """Return campaigns, newest first; `after` continues below that id."""
    condition = "c.id < %(after)s" if after else "TRUE"
    rows = await db.fetch_all(
        f"SELECT {_COLUMNS} {_FROM} WHERE {condition} ORDER BY c.id DESC LIMIT %(limit)s",
        {"after": after, "limit": limit + 1},
    )
    page = page_of(rows, limit)
    await _attach_counts(db, page["items"])
    return page


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
        " WHERE m.segment_id = %s AND c.unsubscribed_at IS NULL",
        (campaign_id, campaign["segment_id"]),
    )
    if jobs == 0:
        raise InvalidInput("the campaign's segment has no contacts, or only contacts who unsubscribed; "
                           "add contacts first", field="segment_id")
    await transaction.execute(
        "UPDATE campaigns c SET status = 'sending', sent_at = now(), jobs_total = %s, html = t.html, text = t.text"
        " FROM templates t WHERE c.id = %s AND t.id = c.template_id",
        (jobs, campaign_id),
    )
    return jobs


async def _lock(transaction, campaign_id: int) -> dict:
    campaign = await transaction.fetch_one(
        "SELECT id, name, status FROM campaigns WHERE id = %s FOR UPDATE", (campaign_id,)
    )
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


async def pause(transaction, campaign_id: int, reason: str | None = None) -> None:
    """Move a sending campaign to `paused`; raise Conflict from any other status."""
    campaign = await _lock(transaction, campaign_id)
    if campaign["status"] != "sending":
        raise Conflict(f"campaign {campaign_id} is {campaign['status']}; only a sending campaign can be paused")
    await transaction.execute(
        "UPDATE campaigns SET status = 'paused', pause_reason = %s WHERE id = %s", (reason, campaign_id)
    )


async def resume(transaction, campaign_id: int) -> None:
    campaign = await _lock(transaction, campaign_id)
    if campaign["status"] != "paused":
        raise Conflict(f"campaign {campaign_id} is {campaign['status']}; only a paused campaign can be resumed")
    await transaction.execute(
        "UPDATE campaigns SET status = 'sending', pause_reason = NULL WHERE id = %s", (campaign_id,)
    )


async def cancel(transaction, campaign_id: int) -> int:
    """Cancel a sending or paused campaign: its unsent jobs become `cancelled`. Returns how many."""
    campaign = await _lock(transaction, campaign_id)
    if campaign["status"] not in ("sending", "paused"):
        raise Conflict(f"campaign {campaign_id} is {campaign['status']}; only a sending or paused campaign"
                       " can be cancelled")
    await transaction.execute(
        "UPDATE campaigns SET status = 'cancelled', pause_reason = NULL, finished_at = now() WHERE id = %s",
        (campaign_id,),
    )
    return await transaction.execute(
        "UPDATE jobs SET status = 'cancelled', updated_at = now()"
        " WHERE campaign_id = %s AND status IN ('pending', 'retrying')",
        (campaign_id,),
    )


async def retry_failed(transaction, campaign_id: int) -> int:
    """Queue the failed jobs of a finished campaign again, in a new hand-over round. Returns how many.

    Raises Conflict unless the campaign is finished, and InvalidInput when none of its jobs failed.
    """
    campaign = await _lock(transaction, campaign_id)
    if campaign["status"] != "finished":
        raise Conflict(f"campaign {campaign_id} is {campaign['status']}; failed jobs are retried once it is"
                       " finished")
    retried = await transaction.execute(
        "UPDATE jobs SET status = 'pending', error = NULL, earlier_attempts = earlier_attempts + attempts,"
        " attempts = 0, updated_at = now()"
        " WHERE campaign_id = %s AND status = 'failed'"
        " AND EXISTS (SELECT 1 FROM contacts c WHERE c.id = jobs.contact_id)",
        (campaign_id,),
    )
    if retried == 0:
        raise InvalidInput(f"campaign {campaign_id} has no failed job to retry")
    await transaction.execute(
        "UPDATE campaigns SET status = 'sending', finished_at = NULL, dispatch_round = dispatch_round + 1,"
        " dispatch_cursor = 0 WHERE id = %s",
        (campaign_id,),
    )
    return retried


async def recent_failures(db, campaign_id: int, limit: int = 5) -> list[dict]:
    """Return the latest distinct failure reasons of a campaign with how many jobs each."""
    return await db.fetch_all(
        "SELECT error, count(*) AS jobs, max(updated_at) AS last_at FROM ("
        "  SELECT error, updated_at FROM jobs WHERE campaign_id = %s AND status = 'failed'"
        "  ORDER BY updated_at DESC NULLS LAST LIMIT 1000) AS latest"
        " GROUP BY error ORDER BY max(updated_at) DESC NULLS LAST LIMIT %s",
        (campaign_id, limit),
    )


async def paused(db) -> list[dict]:
    """Return the paused campaigns with their reasons, for the dashboard."""
    return await db.fetch_all(
        "SELECT id, name, pause_reason FROM campaigns WHERE status = 'paused' ORDER BY id"
    )


async def list_jobs(db, campaign_id: int, *, status: str | None, limit: int, after: int = 0) -> dict:
    params = {"campaign_id": campaign_id, "after": after, "limit": limit + 1, "status": status}
    condition = " AND j.status = %(status)s" if status else ""
    rows = await db.fetch_all(
        "SELECT j.id, j.contact_id, j.email, j.status, j.earlier_attempts + j.attempts AS attempts,"
        " j.message_id, j.error, j.updated_at"
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


async def recipient_count(db, segment_id: int) -> int:
    """Return how many contacts of the segment a campaign would send to: those who did not unsubscribe."""
    return await db.fetch_value(
        "SELECT count(*) FROM segment_contacts m JOIN contacts c ON c.id = m.contact_id"
        " WHERE m.segment_id = %s AND c.unsubscribed_at IS NULL",
        (segment_id,),
    )


async def totals(db) -> dict[str, int]:
    """Return dashboard totals: segments, templates, campaigns and jobs by status (contacts.count counts contacts)."""
    row = await db.fetch_one(
        "SELECT (SELECT count(*) FROM segments) AS segments,"
        " (SELECT count(*) FROM templates) AS templates, (SELECT count(*) FROM campaigns) AS campaigns,"
        " (SELECT coalesce(sum(jobs), 0) FROM campaign_job_counts WHERE status = 'sent') AS sent,"
        " (SELECT coalesce(sum(jobs), 0) FROM campaign_job_counts WHERE status = 'failed') AS failed"
    )
    return row
