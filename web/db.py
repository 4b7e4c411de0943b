"""A thin layer over aiopg: a pool, dict rows, and transactions.

Repositories take a `Database` (or a `Connection`, which offers the same
query methods on one connection), so nothing above them knows about aiopg.
Queries use psycopg2's `%(name)s` / `%s` placeholders with bound parameters.
"""

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import aiopg
import psycopg2.extras

Json = psycopg2.extras.Json


def text_array(values: list[str]) -> str:
    """Return a PostgreSQL array literal of `values`, to be bound and cast with `::text[]` (or `::jsonb[]`).

    psycopg2 sends a Python list as ARRAY['a', 'b', ...], which the server
    parses as one expression per element. One literal string is parsed much
    faster, and bulk statements bind thousands of elements.
    """
    return "{" + ",".join('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values) + "}"


class _Queries:
    def _cursor(self, cursor_factory=psycopg2.extras.RealDictCursor):  # pragma: no cover - in subclasses
        raise NotImplementedError

    async def fetch_all(self, sql: str, params: Any = None) -> list[dict]:
        async with self._cursor() as cursor:
            await cursor.execute(sql, params)
            return [dict(row) for row in await cursor.fetchall()]

    async def fetch_one(self, sql: str, params: Any = None) -> dict | None:
        async with self._cursor() as cursor:
            await cursor.execute(sql, params)
            row = await cursor.fetchone()
            return dict(row) if row is not None else None

    async def fetch_tuples(self, sql: str, params: Any = None) -> list[tuple]:
        """Return rows as tuples: cheaper than dicts for the thousands of rows of a bulk statement."""
        async with self._cursor(cursor_factory=None) as cursor:
            await cursor.execute(sql, params)
            return await cursor.fetchall()

    async def fetch_value(self, sql: str, params: Any = None) -> Any:
        async with self._cursor() as cursor:
            await cursor.execute(sql, params)
            row = await cursor.fetchone()
            return next(iter(row.values())) if row is not None else None

    async def execute(self, sql: str, params: Any = None) -> int:
        """Run a statement; return the number of rows it affected."""
        async with self._cursor() as cursor:
            await cursor.execute(sql, params)
            return cursor.rowcount


class Connection(_Queries):
    """Queries on one pooled connection, inside a transaction or not."""

    def __init__(self, connection):
        self._connection = connection

    @asynccontextmanager
    async def _cursor(self, cursor_factory=psycopg2.extras.RealDictCursor):
        async with self._connection.cursor(cursor_factory=cursor_factory) as cursor:
            yield cursor


class Database(_Queries):
    def __init__(self, pool: aiopg.Pool):
        self._pool = pool

    @classmethod
    async def connect(cls, url: str, minsize: int = 1, maxsize: int = 10) -> "Database":
        pool = await aiopg.create_pool(url, minsize=minsize, maxsize=maxsize, timeout=30)
        return cls(pool)

    async def close(self) -> None:
        self._pool.close()
        await self._pool.wait_closed()

    @asynccontextmanager
    async def _cursor(self, cursor_factory=psycopg2.extras.RealDictCursor):
        async with self._pool.acquire() as connection:
            async with connection.cursor(cursor_factory=cursor_factory) as cursor:
                yield cursor

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """Run the block in one transaction: committed on success, rolled back on any error."""
        async with self._pool.acquire() as connection:
            async with connection.cursor() as cursor:
                await cursor.execute("BEGIN")
                try:
                    yield Connection(connection)
                except BaseException:
                    await cursor.execute("ROLLBACK")
                    raise
                await cursor.execute("COMMIT")

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """Hold one pooled connection for the block, in autocommit mode (for session-level locks)."""
        async with self._pool.acquire() as connection:
            yield Connection(connection)
