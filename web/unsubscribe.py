"""Unsubscribe links: one per contact, signed so that only web can make them.

Every email carries its contact's link, in the `unsubscribe_url` template
variable and in the List-Unsubscribe headers that let mail programs offer a
one-click unsubscribe (RFC 8058). A link contains the contact id and an HMAC of
it, keyed by a key derived from the cookie secret, so changing that secret
turns the links sent before it into links that web rejects.
"""

import base64
import hashlib
import hmac

from common.config import ConfigError

# Characters of the URL-safe base64 HMAC kept in a link: 132 bits.
SIGNATURE_LENGTH = 22


class UnsubscribeLinks:
    """Makes and checks the unsubscribe links of contacts under `public_url`."""

    def __init__(self, public_url: str, cookie_secret: str):
        if not public_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"public_url must start with http:// or https://, got {public_url!r}; set WEB_PUBLIC_URL to the "
                "address at which the recipients of emails reach web"
            )
        self._base = public_url.rstrip("/") + "/unsubscribe/"
        self._key = hmac.new(cookie_secret.encode("utf-8"), b"postmill unsubscribe links", hashlib.sha256).digest()

    def url(self, contact_id: int) -> str:
        return self._base + self.token(contact_id)

    def token(self, contact_id: int) -> str:
        return f"{contact_id}-{self._signature(contact_id)}"

    def contact_id(self, token: str) -> int | None:
        """Return the contact id of a token that web made, else None."""
        number, _, signature = token.partition("-")
        if not number.isdigit() or len(number) > 18:
            return None
        contact_id = int(number)
        if not hmac.compare_digest(signature.encode(), self._signature(contact_id).encode()):
            return None
        return contact_id

    def _signature(self, contact_id: int) -> str:
        digest = hmac.new(self._key, str(contact_id).encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii")[:SIGNATURE_LENGTH]
