"""SQL behind the replay check of signed requests: the nonces seen within the time window."""

import time

# How often one web process deletes the expired nonces, in seconds.
CLEANUP_INTERVAL = 60.0

_next_cleanup = 0.0


async def remember(db, nonce: str, expires_at: int) -> bool:
    """Store `nonce` until `expires_at` (Unix time); return False when it is stored and has not expired.

    Deletes the expired nonces too, at most once per CLEANUP_INTERVAL per process.
    """
    stored = await db.fetch_value(
        "INSERT INTO request_nonces (nonce, expires_at) VALUES (%s, to_timestamp(%s))"
        " ON CONFLICT (nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at"
        " WHERE request_nonces.expires_at < now()"
        " RETURNING true",
        (nonce, expires_at),
    )
    await _delete_expired_now_and_then(db)
    return bool(stored)


async def delete_expired(db) -> int:
    """Delete the nonces whose requests are too old to be accepted anyway; return how many."""
    return await db.execute("DELETE FROM request_nonces WHERE expires_at < now()")


async def _delete_expired_now_and_then(db) -> None:
    global _next_cleanup
    if time.monotonic() < _next_cleanup:
        return
    _next_cleanup = time.monotonic() + CLEANUP_INTERVAL
    await delete_expired(db)
