"""Email templates: SQL."""

from web.errors import NotFound
from web.repositories import page_of

COLUMNS = "id, name, html, text, created_at, updated_at"


async def list_page(db, *, limit: int, after: int = 0) -> dict:
    rows = await db.fetch_all(
        f"SELECT {COLUMNS} FROM templates WHERE id > %s ORDER BY id LIMIT %s", (after, limit + 1)
    )
    return page_of(rows, limit)


async def list_all(db) -> list[dict]:
    return await db.fetch_all("SELECT id, name FROM templates ORDER BY lower(name)")


async def get(db, template_id: int) -> dict:
    row = await db.fetch_one(f"SELECT {COLUMNS} FROM templates WHERE id = %s", (template_id,))
    if row is None:
        raise NotFound(f"template {template_id} not found", field="template_id")
    return row


async def create(db, template: dict) -> dict:
    return await db.fetch_one(
        f"INSERT INTO templates (name, html, text) VALUES (%(name)s, %(html)s, %(text)s) RETURNING {COLUMNS}",
        template,
    )


async def update(db, template_id: int, template: dict) -> dict:
    row = await db.fetch_one(
        f"UPDATE templates SET name = %(name)s, html = %(html)s, text = %(text)s, updated_at = now()"
        f" WHERE id = %(id)s RETURNING {COLUMNS}",
        {**template, "id": template_id},
    )
    if row is None:
        raise NotFound(f"template {template_id} not found")
    return row


async def delete(db, template_id: int) -> None:
    if await db.execute("DELETE FROM templates WHERE id = %s", (template_id,)) == 0:
        raise NotFound(f"template {template_id} not found")
