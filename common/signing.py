"""Signed HTTP requests between web and email_client.

The sender adds three headers: the Unix time in seconds, a random nonce, and
an HMAC-SHA256, keyed with the service secret that both services share, over

    METHOD \\n PATH?QUERY \\n TIMESTAMP \\n NONCE \\n SHA-256 OF THE BODY (hex)

The receiver checks the signature in constant time and rejects a request
signed more than MAX_AGE_SECONDS before or after its own clock. It then
stores the nonce until the timestamp leaves that window and rejects a second
request with the same nonce, which makes a captured request useless to
replay. Each service stores nonces in its own database, so `check` leaves
that step to the caller.
"""

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Mapping

from common.config import Config, ConfigError, read_secret

TIMESTAMP_HEADER = "X-Postmill-Timestamp"
NONCE_HEADER = "X-Postmill-Nonce"
SIGNATURE_HEADER = "X-Postmill-Signature"

#: How far the timestamp of a request may be from the receiver's clock, in seconds.
MAX_AGE_SECONDS = 300
MIN_SECRET_LENGTH = 32
#: The error of a request whose nonce the receiver has stored already.
REPLAYED = "the nonce of this request was used before, so the request is rejected as a replay"

_NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SignatureError(Exception):
    """A request is unsigned, wrongly signed, outside the time window or replayed.

    The message names the problem and never contains the expected signature.
    """


@dataclass(frozen=True)
class SignedRequest:
    """The nonce and timestamp of a request whose signature is valid."""

    nonce: str
    timestamp: int

    @property
    def nonce_expires_at(self) -> int:
        """Unix time after which the request is too old anyway, so its nonce can be forgotten."""
        return self.timestamp + MAX_AGE_SECONDS


def service_secret(config: Config, service: str) -> bytes:
    """Return the shared key from the setting `service_secret` or the file `service_secret_file`.

    Raises ConfigError, saying how to set one, when neither is set, both are,
    the file cannot be read or the secret is shorter than MIN_SECRET_LENGTH.
    """
    value = read_secret(config, "service_secret")
    prefix = service.upper()
    if value is None:
        raise ConfigError(
            f"no service secret is set, so {service} cannot sign or check the requests between web and "
            f"email_client: set {prefix}_SERVICE_SECRET_FILE to the path of a file holding a random string of at "
            f"least {MIN_SECRET_LENGTH} characters (or {prefix}_SERVICE_SECRET to such a string). web and "
            "email_client must use the same one. `python -m stack` generates one in .stack/secrets/service-secret; "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))' makes one too"
        )
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"the service secret has {len(value)} characters; it needs at least {MIN_SECRET_LENGTH}, "
            "such as one made with python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return value.encode("utf-8")


def _signature(secret: bytes, method: str, target: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = "\n".join((method.upper(), target, timestamp, nonce, hashlib.sha256(body).hexdigest()))
    return hmac.new(secret, message.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(secret: bytes, method: str, target: str, body: bytes = b"", *, now: float | None = None) -> dict[str, str]:
    """Return the headers that sign a request; `target` is the path with its query string, as sent."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = secrets.token_urlsafe(18)
    return {
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: _signature(secret, method, target, timestamp, nonce, body),
    }


def check(secret: bytes, method: str, target: str, body: bytes, headers: Mapping[str, str], *,
          now: float | None = None) -> SignedRequest:
    """Check the signature headers of a request; return its nonce and timestamp.

    `headers` must look names up without regard to case, as the header
    classes of Tornado and aiohttp do. Raises SignatureError when a header is
    missing or malformed, the timestamp is outside the window, or the
    signature does not match. The caller still has to reject a nonce that it
    has seen before.
    """
    timestamp = headers.get(TIMESTAMP_HEADER)
    nonce = headers.get(NONCE_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if timestamp is None and nonce is None and signature is None:
        raise SignatureError(
            f"the request is not signed: send {TIMESTAMP_HEADER}, {NONCE_HEADER} and {SIGNATURE_HEADER}, "
            "made with the service secret that web and email_client share"
        )
    missing = [name for name, value in ((TIMESTAMP_HEADER, timestamp), (NONCE_HEADER, nonce),
                                        (SIGNATURE_HEADER, signature)) if value is None]
    if missing:
        raise SignatureError(f"the request signature is incomplete: {', '.join(missing)} missing")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureError(f"{TIMESTAMP_HEADER} must be a Unix time in whole seconds")
    if not _NONCE.fullmatch(nonce):
        raise SignatureError(f"{NONCE_HEADER} must be 16 to 128 characters of A-Z, a-z, 0-9, - and _")
    if not _SIGNATURE.fullmatch(signature):
        raise SignatureError(f"{SIGNATURE_HEADER} must be 64 lowercase hexadecimal digits (HMAC-SHA256)")

    age = int(time.time() if now is None else now) - int(timestamp)
    if age > MAX_AGE_SECONDS:
        raise SignatureError(
            f"the request was signed {age} s ago, more than the {MAX_AGE_SECONDS} s allowed; "
            "a stale or replayed request, or the clocks of web and email_client differ"
        )
    if -age > MAX_AGE_SECONDS:
        raise SignatureError(
            f"the request was signed {-age} s in the future, more than the {MAX_AGE_SECONDS} s allowed; "
            "the clocks of web and email_client differ"
        )

    expected = _signature(secret, method, target, timestamp, nonce, body)
    if not hmac.compare_digest(expected, signature):
        raise SignatureError(
            "the signature does not match the request: it was signed with another service secret, "
            "or its method, path or body changed on the way"
        )
    return SignedRequest(nonce=nonce, timestamp=int(timestamp))
