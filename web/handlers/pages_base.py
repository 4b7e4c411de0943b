"""Shared parts of the HTML pages: Jinja2 rendering, the settings banner, flash messages, error pages."""

import datetime
from pathlib import Path
from urllib.parse import quote, unquote, urlencode

import jinja2
import tornado.web
from markupsafe import Markup

from web import validation
from web.errors import DomainError, InvalidInput, NotFound
from web.handlers.base import BaseHandler

FLASH_COOKIE = "postmill_flash"
# BaseHandler.check_xsrf_cookie rejects a form with a missing or wrong CSRF token with 403.
ERROR_MESSAGES = {
    403: "The form has expired or was sent from another site. Reload the page and submit it again.",
    404: "There is no page at this address.",
    405: "This page does not accept that kind of request.",
}


def format_time(value: datetime.datetime | None) -> str:
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M")


def count_of(number: int, noun: str) -> str:
    """Return "1 contact" or "3 contacts": the number with the noun in singular or plural (an added s)."""
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def make_environment(template_dir: Path) -> jinja2.Environment:
    """Build the Jinja2 environment of the pages; everything rendered is HTML-escaped unless marked safe."""
    environment = jinja2.Environment(
        autoescape=True,
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["time"] = format_time
    environment.filters["count_of"] = count_of
    return environment


def page_url(path: str, **params) -> str:
    """Return `path` with `params` as its query string, leaving out None, "" and 0 (the first page's cursor)."""
    query = urlencode({name: value for name, value in params.items() if value not in (None, "", 0)})
    return f"{path}?{query}" if query else path


def id_from_path(value: str, kind: str) -> int:
    """Return the id in a page's path; raise NotFound, not InvalidInput, when it cannot be one."""
    try:
        return validation.positive_id(value, "id")
    except InvalidInput:
        raise NotFound(f"{kind} {value} not found") from None


# Words for the fields whose API name does not read as words, used in messages.
FIELD_WORDS = {
    "email": "email address",
    "from_email": "from address",
    "html": "HTML",
    "segment_id": "segment",
    "template_id": "template",
    "text": "text part",
}


def split_error(error: DomainError, fields: tuple[str, ...]) -> tuple[dict[str, str], str | None]:
    """Place a domain error next to its form field, or return it as the form's general message.

    A message that starts with the field's API name, such as "segment_id is
    required", names the field in words instead: "Segment is required".
    """
    if error.field not in fields:
        return {}, error.message
    message = error.message
    if message.startswith(error.field + " "):
        words = FIELD_WORDS.get(error.field, error.field.replace("_", " "))
        message = words[:1].upper() + words[1:] + message[len(error.field):]
    return {error.field: message}, None


class PageHandler(BaseHandler):
    """An HTML page. Every page shows a banner while settings needed to send are missing."""

    missing_settings: list[str] | None = None
    settings_checked = False

    async def prepare(self):
        await super().prepare()
        if self.current_user is not None and not self._finished:
            await self.check_settings()

    def reject_unauthenticated(self) -> None:
        """Send the browser to the sign-in page, which brings it back here afterwards."""
        if self.session_rejected:
            self.end_session()
            self.flash("Your session has ended. Sign in again.")
        if self.request.method in ("GET", "HEAD"):
            self.redirect(page_url("/login", next=self.request.uri))
        else:
            # The form cannot be sent again from the sign-in page, so the browser comes back to the page's address.
            self.redirect(page_url("/login", next=self.request.path), status=303)

    async def check_settings(self) -> None:
        self.missing_settings = await self.application.settings["settings_status"].missing()
        self.settings_checked = True

    @property
    def jinja(self) -> jinja2.Environment:
        return self.application.settings["jinja"]

    def page_size(self) -> tuple[int, int]:
        """Read `?limit=&after=`; raise InvalidInput for values that are not a page size or an id."""
        return validation.page(self.get_argument("limit", None), self.get_argument("after", None))

    def flash(self, message: str) -> None:
        """Show `message` once, on the next page this browser renders."""
        self.set_cookie(FLASH_COOKIE, quote(message), path="/", httponly=True, samesite="Lax")

    def take_flash(self) -> str | None:
        value = self.get_cookie(FLASH_COOKIE)
        if value is None:
            return None
        self.clear_cookie(FLASH_COOKIE, path="/")
        return unquote(value)

    def redirect_with_flash(self, url: str, message: str) -> None:
        self.flash(message)
        self.redirect(url, status=303)

    def render_page(self, template_name: str, status: int = 200, **context) -> None:
        """Render a template of web/templates with `context` plus the layout's values, and finish."""
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        layout = {
            "path": self.request.path,
            "flash": self.take_flash(),
            "settings_checked": self.settings_checked,
            "missing_settings": self.missing_settings,
            "current_user": self.current_user,
            "xsrf_input": Markup(self.xsrf_form_html()),
            "xsrf_token": self.xsrf_token.decode("ascii"),
            "static_url": self.static_url,
            "page_url": page_url,
        }
        self.finish(self.jinja.get_template(template_name).render({**layout, **context}))

    def write_error(self, status_code: int, **kwargs) -> None:
        error = self.domain_error(kwargs)
        if error is not None:
            status_code = error.status_code
            message = error.message
        elif status_code in ERROR_MESSAGES:
            message = ERROR_MESSAGES[status_code]
        elif status_code < 500:
            message = "The request could not be handled."
        else:
            message = "Something went wrong on the server. Try again; if it keeps failing, see the web service's log."
        self.render_page("error.html", status=status_code, status_code=status_code, reason=self._reason,
                         message=message)


class NotFoundPage(PageHandler):
    async def prepare(self):
        await super().prepare()
        if not self._finished:
            raise tornado.web.HTTPError(404)
