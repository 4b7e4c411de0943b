"""Sender and gateway settings, kept in one Redis hash and changed through the API.

The gateway password can be written but never read back through the API. The
public view shows only whether it is set.
"""

from dataclasses import dataclass, field
from typing import Any, Mapping

import redis.asyncio as redis
from email_validator import EmailNotValidError, validate_email

from email_client.errors import InvalidInput
from email_client.keys import Keys

# Maximum length of each setting, in characters.
MAX_LENGTHS = {"from_name": 200, "from_email": 254, "gateway_username": 200, "gateway_password": 1000}
FIELDS = tuple(MAX_LENGTHS)


@dataclass(frozen=True)
class SenderSettings:
    """Stored settings; an unset value is None. The password never appears in `repr`."""

    from_name: str | None = None
    from_email: str | None = None
    gateway_username: str | None = None
    gateway_password: str | None = field(default=None, repr=False)

    def public(self) -> dict[str, Any]:
        """Return the settings as the API shows them, without the password."""
        return {
            "from_name": self.from_name,
            "from_email": self.from_email,
            "gateway_username": self.gateway_username,
            "gateway_password_set": self.gateway_password is not None,
        }


def _has_control_characters(value: str) -> bool:
    return any(ord(character) < 32 or ord(character) == 127 for character in value)


def _validate(name: str, value: Any) -> str | None:
    """Return the value to store, None to clear it; raise InvalidInput if it is invalid."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, or empty to clear it", name)
    if len(value) > MAX_LENGTHS[name]:
        raise InvalidInput(f"{name} is {len(value)} characters long; the maximum is {MAX_LENGTHS[name]}", name)
    if name == "from_email":
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as error:
            raise InvalidInput(f"from_email is not a valid email address: {error}", name) from None
    if name == "gateway_password":
        return value
    # A line break in a name or username would let it add mail or HTTP headers.
    if _has_control_characters(value):
        raise InvalidInput(f"{name} must not contain line breaks or other control characters", name)
    if name == "gateway_username" and ":" in value:
        raise InvalidInput("gateway_username must not contain ':', which HTTP basic auth cannot carry", name)
    return value


def validate_changes(body: Any) -> dict[str, str | None]:
    """Check a `PUT /api/v1/settings` body; return the values to store, None meaning clear.

    Raises InvalidInput for a body that is not an object, an unknown key or an
    invalid value, naming the field.
    """
    if not isinstance(body, dict):
        raise InvalidInput(f"the request body must be a JSON object with any of {', '.join(FIELDS)}")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown settings {', '.join(unknown)}; known settings: {', '.join(FIELDS)}", unknown[0])
    return {name: _validate(name, value) for name, value in body.items()}


class SettingsStore:
    """The settings hash in Redis."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self._redis = client
        self._key = keys.settings
        self._refusals_key = keys.credential_refusals

    async def get(self) -> SenderSettings:
        stored = await self._redis.hgetall(self._key)
        return SenderSettings(**{name: stored.get(name) for name in FIELDS})

    async def update(self, changes: Mapping[str, str | None]) -> SenderSettings:
        """Write validated `changes` in one transaction and return the settings after it.

        Any change also resets the count of credential refusals in a row,
        because the new settings may contain the right credentials.
        """
        to_set = {name: value for name, value in changes.items() if value is not None}
        to_clear = [name for name, value in changes.items() if value is None]
        async with self._redis.pipeline(transaction=True) as pipe:
            if to_set:
                pipe.hset(self._key, mapping=to_set)
            if to_clear:
                pipe.hdel(self._key, *to_clear)
            if changes:
                pipe.delete(self._refusals_key)
            pipe.hgetall(self._key)
            *_, stored = await pipe.execute()
        return SenderSettings(**{name: stored.get(name) for name in FIELDS})
