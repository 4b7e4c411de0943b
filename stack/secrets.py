"""Secrets that a one-machine stack generates for itself, kept in files of its data folder.

`python -m stack` creates them on first start and reuses them afterwards, so
sessions and encrypted settings survive a restart. In production they come
from the environment instead (see docker-compose.prod.yml).

    python -m stack.secrets FOLDER    # create the missing ones, as the compose files do
"""

import base64
import os
import secrets
import sys
from pathlib import Path

#: File name of each secret, and the environment variables through which each service reads it.
SECRETS = {
    # Signs web's session cookies.
    "cookie-secret": {"web": "WEB_COOKIE_SECRET_FILE"},
    # Signs the requests between web and email_client.
    "service-secret": {"web": "WEB_SERVICE_SECRET_FILE", "email_client": "EMAIL_CLIENT_SERVICE_SECRET_FILE"},
    # Encrypts the gateway credentials that email_client keeps in Redis.
    "credentials-key": {"email_client": "EMAIL_CLIENT_CREDENTIALS_KEY_FILE"},
}


def _new_secret() -> str:
    # 32 random bytes, URL-safe base64: usable as an HMAC key, a cookie
    # secret and an AES-256 key alike.
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def ensure_secrets(folder: Path) -> dict[str, Path]:
    """Create each missing secret file in `folder`, readable by its owner only; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    paths = {}
    for name in SECRETS:
        path = folder / name
        if not path.exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii") as file:
                file.write(_new_secret() + "\n")
        paths[name] = path
    return paths


def secret_environment(service: str, paths: dict[str, Path]) -> dict[str, str]:
    """Return the variables that point `service` at its secret files."""
    return {
        variables[service]: str(paths[name])
        for name, variables in SECRETS.items()
        if service in variables
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m stack.secrets FOLDER")
    for created in ensure_secrets(Path(sys.argv[1])).values():
        print(created)
