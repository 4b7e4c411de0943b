"""Users, sign-in with its limit on failures, API tokens: the rules above the SQL of `repositories.accounts`."""

import asyncio
import datetime
import logging
import math
import secrets
from typing import Any, Callable

from common.config import Config, ConfigError
from web import auth, migrations, validation
from web.db import Database
from web.errors import Conflict, InvalidInput, TooManyRequests
from web.repositories import accounts

log = logging.getLogger(__name__)

# A person who forgot a password gets ACCOUNT_MAX_FAILURES tries per window. A client address
# may be shared by an office, so it gets more, which still slows one client guessing across accounts.
ACCOUNT_MAX_FAILURES = 5
ADDRESS_MAX_FAILURES = 20
FAILURE_WINDOW_SECONDS = 15 * 60
MAX_TOKEN_NAME_LENGTH = 100
DEMO_EMAIL = "demo@example.com"

_dummy_hash: str | None = None


async def _in_thread(function: Callable, *args) -> Any:
    """Run a slow hashing call in the default thread pool, so that other requests go on meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


async def _dummy_password_hash() -> str:
    """Return a hash to verify against for an unknown address, so that it takes as long as a known one."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = await _in_thread(auth.hash_password, secrets.token_urlsafe(16))
    return _dummy_hash


async def create_user(db, email: str, password: str) -> dict:
    """Check the address and password, then store the user; raise InvalidInput or Conflict."""
    email = validation.email_address(email)
    auth.check_new_password(password)
    password_hash = await _in_thread(auth.hash_password, password)
    return await accounts.create_user(db, email, password_hash)


def _retry_message(seconds: float, counted: str) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return (f"Too many failed sign-ins {counted}. Try again in {minutes} minute{'s' if minutes != 1 else ''}, "
            f"after {at:%H:%M} UTC.")


async def sign_in(db, email: str, password: str, client_address: str) -> dict:
    """Return the user whose address and password these are.

    Raises TooManyRequests, without checking the password, while the account
    or the client address has too many recent failures; InvalidInput for a
    wrong address or password, counted as one failure for both. A success
    clears the account's failures.

    NOTE: parallel attempts may all pass the check before any of their
    failures is stored, so a burst can exceed the limits by its size. And
    `client_address` is the TCP peer, because web does not trust
    X-Forwarded-For: behind a reverse proxy all clients share one address
    counter.
    """
    email = email.strip()
    if not email or not password:
        raise InvalidInput("enter your email address and your password")
    account_key = ("account", email.lower())
    address_key = ("address", client_address)
    failures = await accounts.current_failures(db, [account_key, address_key], FAILURE_WINDOW_SECONDS)
    for key, limit, counted in ((account_key, ACCOUNT_MAX_FAILURES, "for this account"),
                                (address_key, ADDRESS_MAX_FAILURES, "from your network address")):
        row = failures.get(key)
        if row is not None and row["failures"] >= limit:
            seconds = float(row["seconds_left"])
            log.warning("sign-in rejected for %r from %s: %d failures in the window", email, client_address,
                        row["failures"])
            raise TooManyRequests(_retry_message(seconds, counted), retry_after=math.ceil(seconds))

    user = await accounts.user_with_password(db, email=email)
    password_hash = user["password_hash"] if user else await _dummy_password_hash()
    verified = await _in_thread(auth.verify_password, password_hash, password)
    if user is None or not verified:
        await accounts.record_failure(db, [account_key, address_key], FAILURE_WINDOW_SECONDS)
        log.info("sign-in failed for %r from %s", email, client_address)
        raise InvalidInput("the email address or the password is wrong")

    if auth.password_needs_rehash(user["password_hash"]):
        new_hash = await _in_thread(auth.hash_password, password)
        await accounts.set_password_hash(db, user["id"], new_hash, end_sessions=False)
    await accounts.clear_failures(db, *account_key)
    log.info("user %d signed in from %s", user["id"], client_address)
    return {name: value for name, value in user.items() if name != "password_hash"}


async def change_password(db, user_id: int, current: str, new: str, repeated: str) -> int:
    """Set a new password after checking the current one; end the user's other sessions.

    Returns the new session version. Raises InvalidInput naming the field at fault.
    """
    user = await accounts.user_with_password(db, user_id=user_id)
    if user is None or not await _in_thread(auth.verify_password, user["password_hash"], current):
        raise InvalidInput("the current password is wrong", field="current_password")
    auth.check_new_password(new, "new_password")
    if new != repeated:
        raise InvalidInput("the two new passwords differ", field="new_password_again")
    new_hash = await _in_thread(auth.hash_password, new)
    version = await accounts.set_password_hash(db, user_id, new_hash, end_sessions=True)
    log.info("user %d changed their password", user_id)
    return version


async def caller_from_session(db, session: auth.Session) -> auth.Caller | None:
    """Return the user of a session cookie, or None when the user is gone or the session was ended."""
    user = await accounts.find_user(db, session.user_id)
    if user is None or user["session_version"] != session.version:
        return None
    return auth.Caller(user_id=user["id"], email=user["email"])


async def caller_from_token(db, token: str) -> auth.Caller | None:
    """Return the caller of an API token, or None when no such token exists (or it was revoked)."""
    row = await accounts.token_by_sha256(db, auth.token_digest(token))
    if row is None:
        return None
    await accounts.mark_token_used(db, row["id"])
    return auth.Caller(token_id=row["id"], token_name=row["name"])


async def create_token(db, name: str, user_id: int | None) -> tuple[str, dict]:
    """Store a new API token; return it (the only time it is available) and its row."""
    name = validation.text({"name": name}, "name", required=True, max_length=MAX_TOKEN_NAME_LENGTH)
    token, digest = auth.new_token()
    row = await accounts.create_token(db, name, digest, user_id)
    log.info("API token %d (%s) created", row["id"], name)
    return token, row


def admin_account(config: Config) -> tuple[str, str] | None:
    """Return the address and password of `admin_email`/`admin_password`, or None when neither is set.

    Raises ConfigError when only one is set or either is invalid; the error never shows the password.
    """
    email = config.admin_email or None
    password = config.admin_password or None
    if email is None and password is None:
        return None
    if email is None or password is None:
        raise ConfigError("set both WEB_ADMIN_EMAIL and WEB_ADMIN_PASSWORD, or neither")
    try:
        return validation.email_address(email, "admin_email"), auth.check_new_password(password, "admin_password")
    except InvalidInput as error:
        raise ConfigError(f"WEB_ADMIN_EMAIL or WEB_ADMIN_PASSWORD: {error.message}") from None


async def ensure_user(db, email: str, password: str) -> bool:
    """Create the user unless one has that address; return whether it was created. An existing password is kept."""
    if await accounts.user_with_password(db, email=email) is not None:
        return False
    try:
        await create_user(db, email, password)
    except Conflict:
        # Another web process created it in the meantime.
        return False
    return True


async def _create_demo_user(database_url: str) -> tuple[str, str] | None:
    db = await Database.connect(database_url, minsize=1, maxsize=1)
    try:
        password = secrets.token_urlsafe(12)
        password_hash = await _in_thread(auth.hash_password, password)
        if await accounts.create_first_user(db, DEMO_EMAIL, password_hash) is None:
            return None
        log.info("created the demo user %s", DEMO_EMAIL)
        return DEMO_EMAIL, password
    finally:
        await db.close()


def ensure_demo_user(database_url: str) -> tuple[str, str] | None:
    """Create demo@example.com with a random password when the database has no user yet.

    Applies web's migrations first. Returns (address, password) to show to
    the person who started the demo, or None when users exist. Call it outside
    a running event loop.
    """
    migrations.migrate(database_url)
    return asyncio.run(_create_demo_user(database_url))
