"""Sender and gateway settings, kept in one Redis hash and changed through the API.

The sender name and address are stored as they are. The gateway username and
password are stored together in the `credentials` field, encrypted with the
credentials key (see email_client.credentials). The password can be written
but never read back through the API. The public view shows only whether it
is set.
"""

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

import redis.asyncio as redis
from email_validator import EmailNotValidError, validate_email
from redis.exceptions import WatchError

from email_client.credentials import CredentialsCipher, CredentialsUnreadable
from email_client.errors import InvalidInput
from email_client.keys import Keys

log = logging.getLogger(__name__)

# Maximum length of each setting, in characters.
MAX_LENGTHS = {"from_name": 200, "from_email": 254, "gateway_username": 200, "gateway_password": 1000}
FIELDS = tuple(MAX_LENGTHS)
SENDER_FIELDS = ("from_name", "from_email")
CREDENTIAL_FIELDS = ("gateway_username", "gateway_password")
# The hash field of the encrypted credentials record. Versions before the
# encryption kept the credentials in plain text under their own names.
ENCRYPTED_FIELD = "credentials"


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
    """The settings hash in Redis, with the credentials encrypted by `cipher`."""

    def __init__(self, client: redis.Redis, keys: Keys, cipher: CredentialsCipher):
        self._redis = client
        self._key = keys.settings
        self._refusals_key = keys.credential_refusals
        self._cipher = cipher
        # The stored value whose decryption failed last, so that each failure is logged once, not on every send.
        self._unreadable_value: str | None = None

    async def get(self) -> SenderSettings:
        """Return the settings; credentials that cannot be decrypted count as unset and are logged as an error."""
        return self._settings(await self._redis.hgetall(self._key))

    async def update(self, changes: Mapping[str, str | None]) -> SenderSettings:
        """Write validated `changes` in one transaction and return the settings after it.

        A change of the username or password re-encrypts the credentials
        record, so the other one is read and written back in the same
        transaction. Any change also resets the count of credential refusals
        in a row, because the new settings may contain the right credentials.
        """
        credential_changes = {name: value for name, value in changes.items() if name in CREDENTIAL_FIELDS}
        to_set = {name: value for name, value in changes.items() if name in SENDER_FIELDS and value is not None}
        to_clear = [name for name, value in changes.items() if name in SENDER_FIELDS and value is None]
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self._key)
                    if credential_changes:
                        record = self._credentials(await pipe.hget(self._key, ENCRYPTED_FIELD))
                        record.update(credential_changes)
                    pipe.multi()
                    if credential_changes:
                        self._queue_credentials(pipe, record)
                    if to_set:
                        pipe.hset(self._key, mapping=to_set)
                    if to_clear:
                        pipe.hdel(self._key, *to_clear)
                    if changes:
                        pipe.delete(self._refusals_key)
                    pipe.hgetall(self._key)
                    *_, stored = await pipe.execute()
                    return self._settings(stored)
                except WatchError:
                    # Another process changed the settings between the read and the write: read them again.
                    continue

    async def encrypt_plaintext_credentials(self) -> bool:
        """Encrypt credentials that a version before the encryption stored in plain text; return whether any were."""
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self._key)
                    plaintext = await pipe.hmget(self._key, list(CREDENTIAL_FIELDS))
                    if all(value is None for value in plaintext):
                        return False
                    pipe.multi()
                    self._queue_credentials(pipe, dict(zip(CREDENTIAL_FIELDS, plaintext)))
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def rotate_key(self, new_cipher: CredentialsCipher) -> bool:
        """Re-encrypt the stored credentials with `new_cipher` in one transaction; return False if none are stored.

        Raises CredentialsUnreadable, changing nothing, when this store's key
        cannot decrypt them.
        """
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self._key)
                    value = await pipe.hget(self._key, ENCRYPTED_FIELD)
                    if value is None:
                        return False
                    record = self._cipher.decrypt(value)
                    pipe.multi()
                    pipe.hset(self._key, ENCRYPTED_FIELD, new_cipher.encrypt(record))
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    def _queue_credentials(self, pipe, record: Mapping[str, str | None]) -> None:
        """Queue the writes that store `record` encrypted, or delete it when both values are unset."""
        record = {name: record.get(name) for name in CREDENTIAL_FIELDS}
        if any(value is not None for value in record.values()):
            pipe.hset(self._key, ENCRYPTED_FIELD, self._cipher.encrypt(record))
        else:
            pipe.hdel(self._key, ENCRYPTED_FIELD)
        pipe.hdel(self._key, *CREDENTIAL_FIELDS)

    def _settings(self, stored: Mapping[str, str]) -> SenderSettings:
        return SenderSettings(
            **{name: stored.get(name) for name in SENDER_FIELDS},
            **self._credentials(stored.get(ENCRYPTED_FIELD)),
        )

    def _credentials(self, value: str | None) -> dict[str, str | None]:
        """Return the decrypted username and password; both None when none are stored or they cannot be decrypted."""
        unset: dict[str, str | None] = dict.fromkeys(CREDENTIAL_FIELDS)
        if value is None:
            return unset
        try:
            record = self._cipher.decrypt(value)
        except CredentialsUnreadable as error:
            if value != self._unreadable_value:
                self._unreadable_value = value
                log.error(
                    "the stored gateway credentials cannot be decrypted with the configured credentials key: %s. "
                    "They count as unset until email_client gets the key they were encrypted with, or they are "
                    "set again with PUT /api/v1/settings",
                    error,
                )
            return unset
        return {name: record[name] if isinstance(record.get(name), str) else None for name in CREDENTIAL_FIELDS}
