"""Adapters that hand one rendered message to the email gateway.

`Gateway` is the contract; `HttpGateway` speaks the gateway's HTTP JSON API.
An adapter either returns the gateway's message id or raises one of the
`GatewayError` subclasses below, which tell the worker whether to retry.
"""

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from yarl import URL

# Maximum number of characters of a gateway response quoted in a failure reason.
_MAX_QUOTED = 300


class GatewayError(Exception):
    """A message the gateway did not accept; `reason` explains why and contains no secret."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class PermanentGatewayError(GatewayError):
    """The gateway rejected the message itself; sending it again cannot succeed."""


class CredentialsRejected(GatewayError):
    """The gateway rejected the username or password; `status` is 401 or 403."""

    def __init__(self, reason: str, status: int):
        super().__init__(reason)
        self.status = status


class TemporaryGatewayError(GatewayError):
    """The gateway was busy, failing or unreachable; a later attempt may succeed."""


@dataclass(frozen=True)
class Address:
    email: str
    name: str = ""


@dataclass(frozen=True)
class Credentials:
    """Gateway username and password; the password never appears in `repr`."""

    username: str
    password: str = field(repr=False)

    def basic_auth_header(self) -> str:
        """Return the value of an HTTP basic auth `Authorization` header, UTF-8 encoded."""
        pair = f"{self.username}:{self.password}".encode("utf-8")
        return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass(frozen=True)
class OutgoingMessage:
    """One rendered email for one job, with what the gateway needs to accept it once."""

    idempotency_key: str
    sender: Address
    recipient: Address
    subject: str
    html: str
    text: str
    credentials: Credentials | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Gateway(Protocol):
    async def send(self, message: OutgoingMessage) -> str:
        """Send `message` and return the gateway's message id.

        Raises PermanentGatewayError, CredentialsRejected or TemporaryGatewayError.
        """
        ...

    async def close(self) -> None:
        """Release connections; `send` must not be called afterwards."""
        ...


def idempotency_key(campaign_id: int, job_id: int) -> str:
    """Return the key that lets the gateway recognise a job sent twice."""
    return f"postmill-{campaign_id}-{job_id}"


class HttpGateway:
    """Gateway adapter for `POST {gateway_url}/v1/messages` with HTTP basic auth.

    Credentials in the URL (`http://user:password@host`) are used for messages
    that carry none. One aiohttp session is shared by every send, opened on the
    first one.
    """

    def __init__(self, gateway_url: str, timeout: float):
        url = URL(gateway_url)
        self._url_credentials = None
        if url.user is not None:
            self._url_credentials = Credentials(url.user, url.password or "")
            url = url.with_user(None)
        self._url = str(url).rstrip("/") + "/v1/messages"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"HttpGateway({self._url!r})"

    async def send(self, message: OutgoingMessage) -> str:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = {
            "from": {"name": message.sender.name, "email": message.sender.email},
            "to": {"name": message.recipient.name, "email": message.recipient.email},
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "headers": message.headers,
        }
        headers = {"Idempotency-Key": message.idempotency_key}
        credentials = message.credentials or self._url_credentials
        if credentials is not None:
            headers["Authorization"] = credentials.basic_auth_header()
        try:
            async with self._session.post(self._url, json=body, headers=headers) as response:
                response_body = await _read_response(response)
                return _message_id_or_raise(response.status, response_body)
        except asyncio.TimeoutError:
            raise TemporaryGatewayError(f"gateway timed out after {self._timeout.total} s") from None
        except aiohttp.ClientError as error:
            # Refused or dropped connections and unreadable responses alike.
            raise TemporaryGatewayError(f"gateway connection failed: {type(error).__name__}: {error}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_response(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """Return the response's JSON object, or `{"error": <text>}` when it is not one."""
    text = await response.text(errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        return {"error": text[:_MAX_QUOTED]}
    if not isinstance(body, dict):
        return {"error": text[:_MAX_QUOTED]}
    return body


def _message_id_or_raise(status: int, body: dict[str, Any]) -> str:
    message_id = body.get("message_id")
    error = str(body.get("error") or "no error message")[:_MAX_QUOTED]
    if 200 <= status < 300:
        if isinstance(message_id, str) and message_id:
            return message_id
        # Sending again with the same idempotency key brings the id in a 409.
        raise TemporaryGatewayError(f"gateway responded {status} without a message_id")
    if status == 409:
        if isinstance(message_id, str) and message_id:
            return message_id
        raise PermanentGatewayError(f"gateway responded 409 without a message_id: {error}")
    if status in (401, 403):
        raise CredentialsRejected(f"gateway rejected the credentials ({status}): {error}", status)
    if status == 429 or status >= 500:
        raise TemporaryGatewayError(f"gateway responded {status}: {error}")
    raise PermanentGatewayError(f"gateway responded {status}: {error}")
