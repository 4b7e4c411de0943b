"""The secrets shared by every service that the tests start, and clients that sign requests with them.

Import this module as `tests.service_secrets` everywhere, so that there is
one copy of the secrets per test session.
"""

import base64
import json as json_module
import os
import secrets
from typing import Any

import aiohttp
from yarl import URL

from common import signing

#: The service secret of every web and email_client the tests start (WEB_SERVICE_SECRET, EMAIL_CLIENT_SERVICE_SECRET).
SERVICE_SECRET = secrets.token_urlsafe(32)
#: The credentials key of every email_client the tests start (EMAIL_CLIENT_CREDENTIALS_KEY).
CREDENTIALS_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def web_secrets() -> dict[str, str]:
    """Return the environment variables that give web the test secret."""
    return {"WEB_SERVICE_SECRET": SERVICE_SECRET}


def email_client_secrets() -> dict[str, str]:
    """Return the environment variables that give email_client the test secret and credentials key."""
    return {"EMAIL_CLIENT_SERVICE_SECRET": SERVICE_SECRET, "EMAIL_CLIENT_CREDENTIALS_KEY": CREDENTIALS_KEY}


def signed_headers(method: str, url: str | URL, body: bytes = b"", secret: str = SERVICE_SECRET) -> dict[str, str]:
    """Return the headers that sign a request to `url`, as web and email_client sign theirs."""
    return signing.sign(secret.encode("utf-8"), method, URL(url).raw_path_qs, body)


class SignedSession:
    """An aiohttp session whose requests are signed with SERVICE_SECRET, as web's and email_client's are.

    Takes `json=` or bytes in `data=`, and returns what aiohttp's request
    methods return, so `async with http.post(url, json=body) as response:`
    works as with a plain session.
    """

    def __init__(self, session: aiohttp.ClientSession, secret: str = SERVICE_SECRET):
        self.session = session
        self._secret = secret

    def request(self, method: str, url: str, *, json: Any = None, data: bytes | None = None,
                params: dict | None = None, headers: dict | None = None, **kwargs):
        target = URL(url)
        if params:
            target = target.update_query(params)
        headers = dict(headers or {})
        if json is not None:
            data = json_module.dumps(json).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        if isinstance(data, str):
            data = data.encode("utf-8")
        if data is not None and not isinstance(data, bytes):
            raise TypeError("SignedSession signs bytes or json= bodies only")
        headers.update(signed_headers(method, target, data or b"", self._secret))
        return self.session.request(method, target, data=data, headers=headers, **kwargs)

    def get(self, url: str, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs):
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs):
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs):
        return self.request("DELETE", url, **kwargs)
