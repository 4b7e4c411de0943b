"""Pages: the dashboard and the sender and gateway settings, which email_client keeps."""

import logging

from web import inputs
from web.errors import DomainError, ServiceUnavailable
from web.handlers.pages_base import PageHandler, split_error
from web.repositories import campaigns

log = logging.getLogger(__name__)

# The form shows the stored value of these; the password field always starts empty.
PREFILLED_FIELDS = ("from_name", "from_email", "gateway_username")
FIELDS = (*PREFILLED_FIELDS, "gateway_password")
RECENT_CAMPAIGNS = 10


class DashboardPage(PageHandler):
    async def get(self):
        self.render_page("dashboard.html", totals=await campaigns.totals(self.db),
                         campaigns=await campaigns.recent(self.db, RECENT_CAMPAIGNS),
                         paused=await campaigns.paused(self.db))


class SettingsPage(PageHandler):
    """The password is never shown: an empty field keeps it, the "clear" box removes it."""

    def render_form(self, values: dict, password_set: bool | None, error: DomainError | None = None) -> None:
        errors, form_error = split_error(error, FIELDS) if error else ({}, None)
        self.render_page("settings.html", status=error.status_code if error else 200, values=values,
                         password_set=password_set, errors=errors, form_error=form_error,
                         unreachable=isinstance(error, ServiceUnavailable))

    async def get(self):
        try:
            settings = await self.email_client.get_settings()
        except ServiceUnavailable as error:
            log.warning("settings page: reading the settings failed: %s", error.message)
            self.render_form(dict.fromkeys(PREFILLED_FIELDS, ""), None, error)
            return
        values = {name: settings.get(name) or "" for name in PREFILLED_FIELDS}
        self.render_form(values, bool(settings.get("gateway_password_set")))

    async def post(self):
        values = {name: self.get_body_argument(name, "") for name in PREFILLED_FIELDS}
        changes = dict(values)
        password = self.get_body_argument("gateway_password", "", strip=False)
        if self.get_body_argument("clear_password", ""):
            changes["gateway_password"] = None
        elif password:
            changes["gateway_password"] = password
        try:
            await self.email_client.put_settings(inputs.gateway_settings(changes))
        except DomainError as error:
            if isinstance(error, ServiceUnavailable):
                log.warning("settings page: saving the settings failed: %s", error.message)
            self.render_form(values, await self.password_set(), error)
            return
        self.application.settings["settings_status"].forget()
        self.redirect_with_flash("/settings", "Settings saved.")

    async def password_set(self) -> bool | None:
        """Return whether a gateway password is stored; None when email_client cannot be reached."""
        try:
            settings = await self.email_client.get_settings()
        except ServiceUnavailable:
            return None
        return bool(settings.get("gateway_password_set"))


def routes() -> list:
    return [
        (r"/", DashboardPage),
        (r"/settings", SettingsPage),
    ]
