"""SQL, one module per domain. Each function takes a `web.db.Database` or `Connection`."""


def page_of(rows: list[dict], limit: int) -> dict:
    """Shape `limit + 1` rows ordered by id as `{"items", "next"}`, `next` being the cursor or None."""
    items = rows[:limit]
    next_cursor = items[-1]["id"] if len(rows) > limit else None
    return {"items": items, "next": next_cursor}
