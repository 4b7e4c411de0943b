"""Encryption of the gateway credentials that email_client keeps in Redis.

The username and password are stored together as one JSON record, encrypted
with AES-256-GCM. The key comes from the `credentials_key` or
`credentials_key_file` setting and never from Redis, so a copy of the Redis
data alone does not reveal the credentials. A stored value reads as
`v1.` followed by the URL-safe base64 of a 12-byte nonce and the ciphertext.
"""

import base64
import binascii
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common.config import Config, ConfigError, read_secret

KEY_BYTES = 32
VERSION = "v1."
# Bound to every ciphertext, so that a value encrypted for another purpose with the same key is rejected.
ASSOCIATED_DATA = b"postmill gateway credentials"
NONCE_BYTES = 12

KEY_HELP = (
    "set EMAIL_CLIENT_CREDENTIALS_KEY_FILE to the path of a file holding 32 random bytes in URL-safe base64, "
    "such as one made with python -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())' "
    "(or set EMAIL_CLIENT_CREDENTIALS_KEY to such a value). `python -m stack` generates one in "
    ".stack/secrets/credentials-key; every email_client process on one Redis needs the same key"
)


class CredentialsUnreadable(Exception):
    """A stored value cannot be decrypted: the key is not the one it was encrypted with, or the value is damaged."""


def parse_key(text: str, source: str) -> bytes:
    """Return the key encoded in `text`; raise ConfigError, naming `source` but not the value, if it is invalid."""
    try:
        key = base64.b64decode(text.strip(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{source} is not URL-safe base64: {KEY_HELP}") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{source} decodes to {len(key)} bytes, but a key must be exactly {KEY_BYTES}: {KEY_HELP}")
    return key


def load_key(config: Config) -> bytes:
    """Return the key from `credentials_key` or the file `credentials_key_file`.

    Raises ConfigError, saying how to make one, when neither is set, both are,
    the file cannot be read or the key is not 32 bytes in URL-safe base64.
    """
    text = read_secret(config, "credentials_key")
    if text is None:
        raise ConfigError(f"no credentials key is set, so email_client cannot store gateway credentials: {KEY_HELP}")
    source = f"the file {config.credentials_key_file}" if config.credentials_key_file else "credentials_key"
    return parse_key(text, source)


class CredentialsCipher:
    """Encrypts and decrypts credential records with one key; the key never appears in `repr`."""

    def __init__(self, key: bytes):
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "CredentialsCipher(key=***)"

    def encrypt(self, record: dict[str, Any]) -> str:
        nonce = os.urandom(NONCE_BYTES)
        plaintext = json.dumps(record, ensure_ascii=False).encode("utf-8")
        sealed = self._aead.encrypt(nonce, plaintext, ASSOCIATED_DATA)
        return VERSION + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, value: str) -> dict[str, Any]:
        """Return the record in `value`; raise CredentialsUnreadable if this key cannot decrypt it."""
        if not value.startswith(VERSION):
            raise CredentialsUnreadable("the stored value has an unknown format")
        try:
            raw = base64.urlsafe_b64decode(value[len(VERSION):])
            plaintext = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], ASSOCIATED_DATA)
            record = json.loads(plaintext)
        except InvalidTag:
            raise CredentialsUnreadable("the value was encrypted with another key, or it is damaged") from None
        except (binascii.Error, ValueError):
            raise CredentialsUnreadable("the stored value is damaged") from None
        if not isinstance(record, dict):
            raise CredentialsUnreadable("the stored value is not a credentials record")
        return record
