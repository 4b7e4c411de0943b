"""SQL behind the hand-over of jobs to email_client and the results that come back."""

# Session-level advisory locks are keyed by (namespace, campaign id), so that
# only one web process dispatches a given campaign at a time.
DISPATCH_LOCK_NAMESPACE = 0x706D  # "pm"


async def campaigns_to_dispatch(db) -> list[int]:
    """Return ids of sending campaigns with pending jobs that email_client has not acknowledged."""
    rows = await db.fetch_all(
        "SELECT c.id FROM campaigns c WHERE c.status = 'sending' AND EXISTS ("
        " SELECT 1 FROM jobs j WHERE j.campaign_id = c.id AND j.status = 'pending' AND j.id > c.dispatch_cursor)"
        " ORDER BY c.id"
    )
    return [row["id"] for row in rows]


async def try_lock(connection, campaign_id: int) -> bool:
    return await connection.fetch_value(
        "SELECT pg_try_advisory_lock(%s, %s)", (DISPATCH_LOCK_NAMESPACE, campaign_id)
    )


async def unlock(connection, campaign_id: int) -> None:
    await connection.execute("SELECT pg_advisory_unlock(%s, %s)", (DISPATCH_LOCK_NAMESPACE, campaign_id))


async def campaign_for_dispatch(db, campaign_id: int) -> dict | None:
    return await db.fetch_one(
        "SELECT id, subject, html, text, dispatch_round, dispatch_cursor FROM campaigns"
        " WHERE id = %s AND status = 'sending'",
        (campaign_id,),
    )


async def next_chunk(db, campaign_id: int, after: int, limit: int) -> list[dict]:
    """Return up to `limit` pending jobs after job id `after`, each with its contact (None if deleted)."""
    return await db.fetch_all(
        "SELECT j.id, c.id AS contact_id, c.email, c.name, c.first_name, c.last_name, c.attributes, c.unsubscribed_at"
        " FROM jobs j LEFT JOIN contacts c ON c.id = j.contact_id"
        " WHERE j.campaign_id = %s AND j.status = 'pending' AND j.id > %s ORDER BY j.id LIMIT %s",
        (campaign_id, after, limit),
    )


async def advance_cursor(db, campaign_id: int, dispatch_round: int, cursor: int) -> None:
    """Record that email_client has queued the round's jobs up to `cursor`, and clear any hand-over error."""
    await db.execute(
        "UPDATE campaigns SET dispatch_cursor = %s, dispatch_error = NULL"
        " WHERE id = %s AND dispatch_round = %s AND dispatch_cursor < %s",
        (cursor, campaign_id, dispatch_round, cursor),
    )


async def set_dispatch_error(db, campaign_id: int, error: str | None) -> None:
    await db.execute(
        "UPDATE campaigns SET dispatch_error = %s WHERE id = %s AND dispatch_error IS DISTINCT FROM %s",
        (error, campaign_id, error),
    )


async def record_results(db, results: list[dict]) -> tuple[int, list[int]]:
    """Write a batch of job outcomes with one statement.

    Returns how many jobs changed and the ids of their campaigns.

    `results` must hold at most one entry per job. A job that is already
    `sent` or `failed` keeps its outcome. A `cancelled` job takes a final
    outcome, because its send was in flight when the campaign was cancelled.
    """
    if not results:
        return 0, []
    rows = await db.fetch_all(
        """
        UPDATE jobs j SET status = r.status, attempts = GREATEST(j.attempts, r.attempt),
                          message_id = COALESCE(r.message_id, j.message_id), error = r.error, updated_at = now()
        FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::text[], %s::text[])
             AS r(job_id, status, attempt, message_id, error)
        WHERE j.id = r.job_id
          AND (j.status IN ('pending', 'retrying') OR j.status = 'cancelled' AND r.status <> 'retrying')
        RETURNING j.campaign_id
        """,
        (
            [result["job_id"] for result in results],
            [result["status"] for result in results],
            [result["attempt"] for result in results],
            [result.get("message_id") for result in results],
            [result.get("error") for result in results],
        ),
    )
    return len(rows), sorted({row["campaign_id"] for row in rows})


async def finish_done_campaigns(db, campaign_ids: list[int] | None = None) -> list[int]:
    """Mark `finished` each sending or paused campaign with no pending or retrying job; return their ids.

    Run it after the results are committed, never in their transaction: two
    processes that each write half of the last results would otherwise each
    see the other half still pending.
    """
    condition = "c.id = ANY(%(ids)s)" if campaign_ids is not None else "TRUE"
    rows = await db.fetch_all(
        "UPDATE campaigns c SET status = 'finished', finished_at = now(), pause_reason = NULL"
        f" WHERE {condition} AND c.status IN ('sending', 'paused') AND NOT EXISTS ("
        "  SELECT 1 FROM campaign_job_counts n"
        "  WHERE n.campaign_id = c.id AND n.status IN ('pending', 'retrying') AND n.jobs > 0)"
        " RETURNING c.id",
        {"ids": campaign_ids},
    )
    return [row["id"] for row in rows]


async def fail_jobs(db, job_ids: list[int], reason: str) -> None:
    await db.execute(
        "UPDATE jobs SET status = 'failed', error = %s, updated_at = now()"
        " WHERE id = ANY(%s::bigint[]) AND status IN ('pending', 'retrying')",
        (reason, job_ids),
    )


async def pause_by_email_client(db, campaign_id: int, reason: str) -> bool:
    """Record that email_client paused a sending campaign; False if it is no longer sending."""
    return await db.execute(
        "UPDATE campaigns SET status = 'paused', pause_reason = %s WHERE id = %s AND status = 'sending'",
        (reason, campaign_id),
    ) > 0
