"""Building blocks of sign-in, without I/O: the cookie secret, session cookie values, passwords, API tokens.

A session is a cookie signed by Tornado (`set_signed_cookie`) whose value is
`{"user": id, "version": session_version, "issued": unix time}`. It is valid
while the user exists, its session version matches the stored one and it is
younger than `session_hours`.
"""

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from common.config import Config, ConfigError
from web.errors import InvalidInput

SESSION_COOKIE = "postmill_session"
MIN_COOKIE_SECRET_LENGTH = 32
MIN_PASSWORD_LENGTH = 10
# Argon2 hashes any length, but hashing megabytes on every sign-in attempt would be a cheap way to load the server.
MAX_PASSWORD_LENGTH = 1024
TOKEN_PREFIX = "pmt_"
# A session cookie issued a little in the future is accepted, in case the clocks of web processes differ.
CLOCK_SKEW_SECONDS = 60

COOKIE_SECRET_HELP = (
    "set WEB_COOKIE_SECRET_FILE to the path of a file holding a random string of at least "
    f"{MIN_COOKIE_SECRET_LENGTH} characters, such as one made with "
    "python -c 'import secrets; print(secrets.token_urlsafe(32))' > cookie-secret "
    "(or set WEB_COOKIE_SECRET to such a string); every web process must use the same secret"
)

_hasher = PasswordHasher()


@dataclass(frozen=True)
class Caller:
    """The sender of a request: a signed-in user, or a client with an API token."""

    user_id: int | None = None
    email: str | None = None
    token_id: int | None = None
    token_name: str | None = None


@dataclass(frozen=True)
class Session:
    user_id: int
    version: int
    issued_at: float


def cookie_secret(config: Config) -> str:
    """Return the cookie secret from `cookie_secret` or the file `cookie_secret_file`.

    Raises ConfigError, saying how to set one, when neither is set, both are,
    the file cannot be read or the secret is too short.
    """
    value = config.cookie_secret or None
    path = config.cookie_secret_file or None
    if value and path:
        raise ConfigError("both cookie_secret and cookie_secret_file are set; set only one of them")
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read the cookie secret file {path}: {error}") from None
        source = f"the cookie secret file {path}"
    else:
        source = "cookie_secret"
    if not value:
        raise ConfigError(f"no cookie secret is set: {COOKIE_SECRET_HELP}")
    if len(value) < MIN_COOKIE_SECRET_LENGTH:
        raise ConfigError(f"{source} contains {len(value)} characters; it needs at least "
                          f"{MIN_COOKIE_SECRET_LENGTH}: {COOKIE_SECRET_HELP}")
    return value


def session_value(user_id: int, version: int, issued_at: float | None = None) -> str:
    """Return the value to sign into the session cookie."""
    issued = time.time() if issued_at is None else issued_at
    return json.dumps({"user": user_id, "version": version, "issued": int(issued)})


def read_session(value: bytes | None, session_hours: float, now: float | None = None) -> Session | None:
    """Return the session in a verified cookie value; None when it is malformed, expired or from the future."""
    if value is None:
        return None
    try:
        data = json.loads(value)
        session = Session(user_id=int(data["user"]), version=int(data["version"]), issued_at=float(data["issued"]))
    except (ValueError, TypeError, KeyError):
        return None
    now = time.time() if now is None else now
    if session.issued_at > now + CLOCK_SKEW_SECONDS or now - session.issued_at > session_hours * 3600:
        return None
    return session


def check_new_password(password: str, field: str = "password") -> str:
    """Return `password` if it may be set; raise InvalidInput saying what it lacks."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long", field=field)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must be at most {MAX_PASSWORD_LENGTH} characters long", field=field)
    return password


def hash_password(password: str) -> str:
    """Return the Argon2id hash of `password`. Slow on purpose (tens of milliseconds): run it off the event loop."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Check `password` against an Argon2 hash; False for a wrong password or a damaged hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """Tell whether a hash was made with weaker parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)


def new_token() -> tuple[str, str]:
    """Return a new API token and the SHA-256 digest to store in its place."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    # A plain digest suffices: the token contains 256 random bits, so it cannot be guessed from its hash.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def local_path(target: str | None, default: str = "/") -> str:
    """Return `target` when it is a path on this site, else `default`, so that `?next=` cannot lead elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    # Browsers read a backslash as a slash, so "/\\evil.example" would leave the site.
    if "\\" in target or any(ord(character) < 0x20 or ord(character) == 0x7F for character in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    if parts.path in ("/login", "/logout"):
        return default
    return target
