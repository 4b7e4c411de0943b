"""HTTP client of the email_client service; every request is signed with the service secret."""

import json
import logging
import time
from typing import Any

import aiohttp
from yarl import URL

from common import signing
from web.errors import Conflict, InvalidInput, ServiceUnavailable

log = logging.getLogger(__name__)


class EmailClientAPI:
    def __init__(self, base_url: str, service_secret: bytes, timeout: float = 30.0):
        self._base_url = base_url.rstrip("/")
        self._service_secret = service_secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        url = URL(self._base_url + path)
        payload = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = signing.sign(self._service_secret, method, url.raw_path_qs, payload)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._client().request(method, url, data=payload or None, headers=headers) as response:
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    data = None
                if response.status == 400:
                    error = (data or {}).get("error", "email_client rejected the request")
                    raise InvalidInput(error, field=(data or {}).get("field"))
                if response.status == 409:
                    raise Conflict((data or {}).get("error", "email_client rejected the change in the campaign's current state"))
                if response.status == 401:
                    reason = (data or {}).get("error", "no reason given")
                    raise ServiceUnavailable(
                        f"email_client rejected the signature of web's request ({reason}); web and email_client "
                        "need the same service secret (WEB_SERVICE_SECRET_FILE, EMAIL_CLIENT_SERVICE_SECRET_FILE) "
                        "and clocks less than 5 minutes apart"
                    )
                if response.status >= 300:
                    raise ServiceUnavailable(f"email_client returned status {response.status} to {method} {path}")
                return data
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ServiceUnavailable(
                f"the email service at {self._base_url} is unreachable ({type(error).__name__}); try again shortly"
            ) from None

    async def queue_jobs(self, campaign: dict, jobs: list[dict], dispatch_round: int = 0) -> dict:
        """Hand one chunk of jobs over; return email_client's `{"queued", "ignored", "backlog"}`."""
        return await self._request("POST", f"/api/v1/campaigns/{campaign['id']}/jobs",
                                   {"campaign": campaign, "round": dispatch_round, "jobs": jobs})

    async def pause(self, campaign_id: int) -> dict:
        return await self._request("POST", f"/api/v1/campaigns/{campaign_id}/pause")

    async def resume(self, campaign_id: int) -> dict:
        return await self._request("POST", f"/api/v1/campaigns/{campaign_id}/resume")

    async def cancel(self, campaign_id: int) -> dict:
        return await self._request("POST", f"/api/v1/campaigns/{campaign_id}/cancel")

    async def get_settings(self) -> dict:
        return await self._request("GET", "/api/v1/settings")

    async def put_settings(self, settings: dict) -> dict:
        return await self._request("PUT", "/api/v1/settings", settings)


class SettingsStatus:
    """The gateway settings that are missing, as shown in the warning on every page.

    Cached for a few seconds per web process, and refreshed at once when the
    settings are saved through this process.
    """

    TTL_SECONDS = 10.0

    def __init__(self, api: EmailClientAPI):
        self._api = api
        self._missing: list[str] | None = None
        self._read_at = float("-inf")

    def forget(self) -> None:
        self._read_at = float("-inf")

    async def missing(self) -> list[str] | None:
        """Return the names of the missing settings, or None when email_client cannot be reached."""
        now = time.monotonic()
        if now - self._read_at < self.TTL_SECONDS:
            return self._missing
        try:
            settings = await self._api.get_settings()
        except ServiceUnavailable:
            self._missing = None
        else:
            self._missing = []
            if not settings.get("from_email"):
                self._missing.append("From address")
            if not settings.get("gateway_username") or not settings.get("gateway_password_set"):
                self._missing.append("gateway credentials")
        self._read_at = now
        return self._missing
