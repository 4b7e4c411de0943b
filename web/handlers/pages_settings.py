"""Pages: the dashboard and the settings page, whose sender and gateway settings email_client keeps."""

import logging

from web import inputs
from web.errors import DomainError, ServiceUnavailable
from web.handlers.pages_base import PageHandler, split_error
from web.repositories import accounts, campaigns, contacts

log = logging.getLogger(__name__)

# The form shows the stored value of these; the password field always starts empty.
PREFILLED_FIELDS = ("from_name", "from_email", "gateway_username")
FIELDS = (*PREFILLED_FIELDS, "gateway_password")
RECENT_CAMPAIGNS = 10


class DashboardPage(PageHandler):
    async def get(self):
        self.render_page("dashboard.html", totals=await campaigns.totals(self.db),
                         contacts_total=await contacts.count(self.db),
                         campaigns=await campaigns.recent(self.db, RECENT_CAMPAIGNS),
                         paused=await campaigns.paused(self.db))


class SettingsPageBase(PageHandler):
    """The settings page: sender and gateway (kept by email_client), the user's password, users and API tokens.

    Each form of the page posts to its own handler, which renders the whole page again when its input is refused.
    """

    async def render_settings(self, status: int = 200, gateway: dict | None = None, **forms) -> None:
        """Render the page; `forms` replaces the empty state of `user_form`, `token_form` or `password_form`."""
        if gateway is None:
            gateway = await self.gateway_form()
        context = {
            "user_form": {"email": "", "errors": {}, "form_error": None},
            "token_form": {"name": "", "errors": {}, "form_error": None, "new_token": None},
            "password_form": {"errors": {}, "form_error": None},
            **forms,
        }
        self.render_page("settings.html", status=status, **gateway, **context,
                         users=await accounts.list_users(self.db), tokens=await accounts.list_tokens(self.db))

    async def gateway_form(self, values: dict | None = None, error: DomainError | None = None) -> dict:
        """Return the sender and gateway form: `values` as typed, or the stored ones when None."""
        if values is None:
            try:
                settings = await self.email_client.get_settings()
            except ServiceUnavailable as unavailable:
                log.warning("settings page: reading the settings failed: %s", unavailable.message)
                values, password_set, error = dict.fromkeys(PREFILLED_FIELDS, ""), None, unavailable
            else:
                values = {name: settings.get(name) or "" for name in PREFILLED_FIELDS}
                password_set = bool(settings.get("gateway_password_set"))
        else:
            password_set = await self.password_set()
        errors, form_error = split_error(error, FIELDS) if error else ({}, None)
        return {"values": values, "password_set": password_set, "errors": errors, "form_error": form_error,
                "unreachable": isinstance(error, ServiceUnavailable)}

    async def password_set(self) -> bool | None:
        """Return whether a gateway password is stored; None when email_client cannot be reached."""
        try:
            settings = await self.email_client.get_settings()
        except ServiceUnavailable:
            return None
        return bool(settings.get("gateway_password_set"))


class SettingsPage(SettingsPageBase):
    """The gateway password is never shown: an empty field keeps it, the "clear" box removes it."""

    async def get(self):
        gateway = await self.gateway_form()
        await self.render_settings(ServiceUnavailable.status_code if gateway["unreachable"] else 200, gateway)

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
            await self.render_settings(error.status_code, await self.gateway_form(values, error))
            return
        self.application.settings["settings_status"].forget()
        self.redirect_with_flash("/settings", "Settings saved.")


def routes() -> list:
    return [
        (r"/", DashboardPage),
        (r"/settings", SettingsPage),
    ]
