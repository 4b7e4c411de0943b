"""Users, API tokens and failed sign-ins: SQL."""

import psycopg2.errors

from web.errors import Conflict, NotFound

USER_COLUMNS = "id, email, session_version, created_at"
TOKEN_COLUMNS = "id, name, user_id, created_at, last_used_at"
# last_used_at is written at most once a minute per token, so that busy API clients do not write on every request.
TOKEN_USE_PRECISION = "1 minute"


# Users

async def create_user(db, email: str, password_hash: str) -> dict:
    """Insert a user; raise Conflict when one has the address in any case."""
    try:
        return await db.fetch_one(
            f"INSERT INTO users (email, password_hash) VALUES (%s, %s) RETURNING {USER_COLUMNS}",
            (email, password_hash),
        )
    except psycopg2.errors.UniqueViolation:
        raise Conflict(f"a user with the address {email} exists already", field="email") from None


async def create_first_user(db, email: str, password_hash: str) -> dict | None:
    """Insert a user only while there is none; return it, or None when users exist."""
    return await db.fetch_one(
        f"INSERT INTO users (email, password_hash) SELECT %s, %s WHERE NOT EXISTS (SELECT 1 FROM users)"
        f" ON CONFLICT DO NOTHING RETURNING {USER_COLUMNS}",
        (email, password_hash),
    )


async def user_with_password(db, *, email: str | None = None, user_id: int | None = None) -> dict | None:
    """Return the user with that address (in any case) or id, its password hash included."""
    if email is not None:
        return await db.fetch_one(
            f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE lower(email) = lower(%s)", (email,)
        )
    return await db.fetch_one(f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE id = %s", (user_id,))


async def get_user(db, user_id: int) -> dict:
    row = await db.fetch_one(f"SELECT {USER_COLUMNS} FROM users WHERE id = %s", (user_id,))
    if row is None:
        raise NotFound(f"user {user_id} not found")
    return row


async def find_user(db, user_id: int) -> dict | None:
    return await db.fetch_one(f"SELECT {USER_COLUMNS} FROM users WHERE id = %s", (user_id,))


async def list_users(db) -> list[dict]:
    return await db.fetch_all(f"SELECT {USER_COLUMNS} FROM users ORDER BY lower(email)")


async def delete_user(db, user_id: int) -> None:
    if await db.execute("DELETE FROM users WHERE id = %s", (user_id,)) == 0:
        raise NotFound(f"user {user_id} not found")


async def set_password_hash(db, user_id: int, password_hash: str, *, end_sessions: bool) -> int:
    """Store a new hash; with `end_sessions`, also bump the session version. Return the session version."""
    return await db.fetch_value(
        "UPDATE users SET password_hash = %s,"
        " session_version = session_version + CASE WHEN %s THEN 1 ELSE 0 END"
        " WHERE id = %s RETURNING session_version",
        (password_hash, end_sessions, user_id),
    )


async def end_sessions(db, user_id: int) -> None:
    """Bump the user's session version, so that every session cookie issued so far stops working."""
    await db.execute("UPDATE users SET session_version = session_version + 1 WHERE id = %s", (user_id,))


# API tokens

async def create_token(db, name: str, token_sha256: str, user_id: int | None) -> dict:
    return await db.fetch_one(
        f"INSERT INTO api_tokens (name, token_sha256, user_id) VALUES (%s, %s, %s) RETURNING {TOKEN_COLUMNS}",
        (name, token_sha256, user_id),
    )


async def token_by_sha256(db, token_sha256: str) -> dict | None:
    return await db.fetch_one(f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_sha256 = %s", (token_sha256,))


async def mark_token_used(db, token_id: int) -> None:
    await db.execute(
        "UPDATE api_tokens SET last_used_at = now() WHERE id = %s"
        f" AND (last_used_at IS NULL OR last_used_at < now() - interval '{TOKEN_USE_PRECISION}')",
        (token_id,),
    )


async def list_tokens(db) -> list[dict]:
    """Return every token, newest first, with the address of the user who created it (None from the CLI)."""
    return await db.fetch_all(
        "SELECT t.id, t.name, t.user_id, t.created_at, t.last_used_at, u.email AS created_by"
        " FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id ORDER BY t.id DESC"
    )


async def get_token(db, token_id: int) -> dict:
    row = await db.fetch_one(f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = %s", (token_id,))
    if row is None:
        raise NotFound(f"API token {token_id} not found")
    return row


async def delete_token(db, token_id: int) -> None:
    if await db.execute("DELETE FROM api_tokens WHERE id = %s", (token_id,)) == 0:
        raise NotFound(f"API token {token_id} not found")


# Failed sign-ins

async def current_failures(db, keys: list[tuple[str, str]], window_seconds: float) -> dict[tuple[str, str], dict]:
    """Return, per (scope, key) whose window has not ended, its failures and the seconds left in the window."""
    rows = await db.fetch_all(
        "SELECT scope, key, failures,"
        " extract(epoch FROM window_started_at + make_interval(secs => %s) - now()) AS seconds_left"
        " FROM sign_in_failures"
        " WHERE (scope, key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
        " AND window_started_at > now() - make_interval(secs => %s)",
        (window_seconds, [scope for scope, _ in keys], [key for _, key in keys], window_seconds),
    )
    return {(row["scope"], row["key"]): row for row in rows}


async def record_failure(db, keys: list[tuple[str, str]], window_seconds: float) -> None:
    """Count one failed sign-in for each (scope, key); drop the rows whose window has ended."""
    await db.execute(
        "DELETE FROM sign_in_failures WHERE window_started_at <= now() - make_interval(secs => %s)",
        (window_seconds,),
    )
    # In ON CONFLICT DO UPDATE, sign_in_failures.* is the stored row, so both CASEs test the old window.
    await db.execute(
        "INSERT INTO sign_in_failures (scope, key, failures, window_started_at)"
        " SELECT scope, key, 1, now() FROM unnest(%s::text[], %s::text[]) AS typed(scope, key)"
        " ORDER BY scope, key"
        " ON CONFLICT (scope, key) DO UPDATE SET"
        " failures = CASE WHEN sign_in_failures.window_started_at <= now() - make_interval(secs => %s)"
        "   THEN 1 ELSE sign_in_failures.failures + 1 END,"
        " window_started_at = CASE WHEN sign_in_failures.window_started_at <= now() - make_interval(secs => %s)"
        "   THEN now() ELSE sign_in_failures.window_started_at END",
        ([scope for scope, _ in keys], [key for _, key in keys], window_seconds, window_seconds),
    )


async def clear_failures(db, scope: str, key: str) -> None:
    await db.execute("DELETE FROM sign_in_failures WHERE scope = %s AND key = %s", (scope, key))
