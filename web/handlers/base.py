"""Base handlers: security headers, who is calling, access to the services, and domain errors mapped to HTTP."""

import datetime
import enum
import json
import logging
from typing import Any

import tornado.web

from web import accounts, auth
from web.errors import DomainError, TooManyRequests, Unauthenticated

log = logging.getLogger(__name__)

# The template preview shows the email in an <iframe sandbox srcdoc>, which inherits this policy: emails
# style themselves inline and load remote images, hence style-src and img-src. The sandbox keeps scripts
# in the email from running, and script-src keeps them out of the pages.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
    "frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class Access(enum.Enum):
    """The callers that a handler lets through."""

    #: A signed-in user (session cookie) or, for the JSON API, an API token.
    USER = "user"
    #: Anyone: the sign-in page and /healthz. Forms still need their CSRF token.
    PUBLIC = "public"
    #: Another Postmill service, without a user and without a CSRF token.
    INTERNAL = "internal"


class SecurityHeaders(tornado.web.RequestHandler):
    """Sends SECURITY_HEADERS with every response, error pages included."""

    def set_default_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)


class StaticFiles(SecurityHeaders, tornado.web.StaticFileHandler):
    """web/static, served to anyone with the security headers."""


def to_json(value: Any) -> str:
    def default(item):
        if isinstance(item, (datetime.datetime, datetime.date)):
            return item.isoformat()
        raise TypeError(f"cannot encode {type(item).__name__} as JSON")

    return json.dumps(value, default=default, ensure_ascii=False)


class BaseHandler(SecurityHeaders):
    """Every handler of web. Unless `access` is set otherwise, `prepare` lets only a signed-in caller through."""

    access = Access.USER
    #: Whether `Authorization: Bearer TOKEN` is accepted in place of a session cookie.
    accepts_bearer = False
    #: Set by `authenticate`: a session cookie came but is expired, ended or not validly signed.
    session_rejected = False

    def set_default_headers(self) -> None:
        super().set_default_headers()
        # Responses contain contacts and, once, a new API token, so no cache may store them.
        self.set_header("Cache-Control", "no-store")

    async def prepare(self):
        self.current_user = await self.authenticate()
        if self.current_user is None and self.access is Access.USER:
            self.reject_unauthenticated()

    def bearer_token(self) -> str | None:
        """Return the token of an `Authorization: Bearer` header; "" when the header is malformed."""
        header = self.request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, token = header.strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

    async def authenticate(self) -> auth.Caller | None:
        """Return the caller of a valid API token (where accepted) or session cookie, else None.

        A request that carries a bearer token is judged by that token alone, never by its cookies.
        """
        self.session_rejected = False
        token = self.bearer_token() if self.accepts_bearer else None
        if token is not None:
            return await accounts.caller_from_token(self.db, token) if token else None
        raw = self.get_signed_cookie(auth.SESSION_COOKIE, max_age_days=self.config.session_hours / 24)
        session = auth.read_session(raw, self.config.session_hours)
        caller = await accounts.caller_from_session(self.db, session) if session else None
        self.session_rejected = caller is None and self.get_cookie(auth.SESSION_COOKIE) is not None
        return caller

    def reject_unauthenticated(self) -> None:
        raise Unauthenticated("sign in first, or send an API token in the header Authorization: Bearer TOKEN")

    def check_xsrf_cookie(self) -> None:
        """Check the CSRF token of a state-changing request, except where no cookie can be abused.

        Exempt: internal endpoints, requests with a bearer token to an endpoint that
        accepts one (browsers do not add that header to cross-site requests), and
        requests without a session cookie to a handler that needs a user, which
        `prepare` rejects anyway.
        """
        if self.access is Access.INTERNAL:
            return
        if self.accepts_bearer and self.bearer_token() is not None:
            return
        if self.access is Access.USER and self.get_cookie(auth.SESSION_COOKIE) is None:
            return
        try:
            super().check_xsrf_cookie()
        except tornado.web.HTTPError as error:
            log.info("%s %s: CSRF check failed: %s", self.request.method, self.request.path, error.log_message)
            raise tornado.web.HTTPError(
                403, "the CSRF token is missing or wrong: send the value of the _xsrf cookie in the X-XSRFToken "
                     "header (or the _xsrf form field), or authenticate with Authorization: Bearer TOKEN"
            ) from None

    def start_session(self, user_id: int, session_version: int) -> None:
        """Set the session cookie of a user who just signed in or changed their password."""
        self.set_signed_cookie(
            auth.SESSION_COOKIE, auth.session_value(user_id, session_version), expires_days=None,
            expires=datetime.datetime.now(datetime.timezone.utc)
            + datetime.timedelta(hours=self.config.session_hours),
            path="/", httponly=True, samesite="Lax", secure=self.request.protocol == "https",
        )

    def end_session(self) -> None:
        self.clear_cookie(auth.SESSION_COOKIE, path="/")

    @property
    def db(self):
        return self.application.settings["db"]

    @property
    def email_client(self):
        return self.application.settings["email_client"]

    @property
    def dispatcher(self):
        return self.application.settings["dispatcher"]

    @property
    def config(self):
        return self.application.settings["config"]

    @property
    def unsubscribe_links(self):
        return self.application.settings["unsubscribe_links"]

    def log_exception(self, typ, value, tb):
        if isinstance(value, DomainError):
            log.info("%s %s: %d %s", self.request.method, self.request.path, value.status_code, value.message)
        else:
            super().log_exception(typ, value, tb)

    def domain_error(self, kwargs: dict) -> DomainError | None:
        """Return the DomainError behind this error response, after setting its status."""
        exc_info = kwargs.get("exc_info")
        if exc_info and isinstance(exc_info[1], DomainError):
            self.set_status(exc_info[1].status_code)
            return exc_info[1]
        return None


class ApiHandler(BaseHandler):
    """A JSON endpoint: returns JSON, errors included, as `{"error": ..., "field": ...}`."""

    accepts_bearer = True

    def reject_unauthenticated(self) -> None:
        if self.bearer_token() is not None:
            raise Unauthenticated("the API token is malformed, unknown or revoked; create one on the settings page")
        if self.session_rejected:
            raise Unauthenticated("the session has expired or was ended; sign in again")
        super().reject_unauthenticated()

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(to_json(value))

    def write_error(self, status_code: int, **kwargs) -> None:
        error = self.domain_error(kwargs)
        if error is not None:
            body = {"error": error.message}
            if error.field:
                body["field"] = error.field
        else:
            exc_info = kwargs.get("exc_info")
            reason = exc_info[1].log_message if exc_info and isinstance(exc_info[1], tornado.web.HTTPError) else None
            body = {"error": reason or self._reason}
        if self.get_status() == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="postmill"')
        if isinstance(error, TooManyRequests):
            self.set_header("Retry-After", str(error.retry_after))
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(to_json(body))


class ApiNotFoundHandler(ApiHandler):
    async def prepare(self):
        await super().prepare()
        raise tornado.web.HTTPError(404, f"no API endpoint at {self.request.path}")
