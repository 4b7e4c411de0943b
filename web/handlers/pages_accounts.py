"""Pages: signing in and out, and the users, API tokens and password forms of the settings page."""

import logging

from web import accounts, auth
from web.errors import Conflict, DomainError, TooManyRequests
from web.handlers.base import Access
from web.handlers.pages_base import PageHandler, id_from_path, split_error
from web.handlers.pages_settings import SettingsPageBase
from web.repositories import accounts as accounts_repository

log = logging.getLogger(__name__)


class SignInPage(PageHandler):
    """`/login?next=PATH`: after signing in, the browser goes to PATH if it is a path on this site, else to /."""

    access = Access.PUBLIC

    def render_form(self, email: str = "", error: DomainError | None = None) -> None:
        if isinstance(error, TooManyRequests):
            self.set_header("Retry-After", str(error.retry_after))
        self.render_page("login.html", status=error.status_code if error else 200, email=email,
                         next_path=auth.local_path(self.get_argument("next", None)),
                         form_error=error.message if error else None)

    async def get(self):
        if self.current_user is not None:
            self.redirect(auth.local_path(self.get_argument("next", None)))
            return
        self.render_form()

    async def post(self):
        email = self.get_body_argument("email", "")
        password = self.get_body_argument("password", "", strip=False)
        try:
            user = await accounts.sign_in(self.db, email, password, self.request.remote_ip)
        except DomainError as error:
            self.render_form(email, error)
            return
        self.start_session(user["id"], user["session_version"])
        self.redirect(auth.local_path(self.get_body_argument("next", None)), status=303)


class SignOutPage(PageHandler):
    """Ends every session of the user, in this browser and any other."""

    async def post(self):
        await accounts_repository.end_sessions(self.db, self.current_user.user_id)
        self.end_session()
        log.info("user %d signed out", self.current_user.user_id)
        self.redirect_with_flash("/login", "You are signed out.")


class PasswordPage(SettingsPageBase):
    async def post(self):
        try:
            version = await accounts.change_password(
                self.db, self.current_user.user_id,
                self.get_body_argument("current_password", "", strip=False),
                self.get_body_argument("new_password", "", strip=False),
                self.get_body_argument("new_password_again", "", strip=False),
            )
        except DomainError as error:
            errors, form_error = split_error(error, ("current_password", "new_password", "new_password_again"))
            await self.render_settings(error.status_code, password_form={"errors": errors, "form_error": form_error})
            return
        self.start_session(self.current_user.user_id, version)
        self.redirect_with_flash("/settings", "Password changed. Your other sessions are signed out.")


class AddUserPage(SettingsPageBase):
    async def post(self):
        email = self.get_body_argument("email", "")
        try:
            user = await accounts.create_user(self.db, email, self.get_body_argument("password", "", strip=False))
        except DomainError as error:
            errors, form_error = split_error(error, ("email", "password"))
            await self.render_settings(error.status_code, user_form={"email": email, "errors": errors,
                                                                     "form_error": form_error})
            return
        log.info("user %d added user %d", self.current_user.user_id, user["id"])
        self.redirect_with_flash("/settings", f"User {user['email']} added.")


class DeleteUserPage(PageHandler):
    def render_confirmation(self, user: dict, error: DomainError | None = None) -> None:
        self.render_page("confirm_delete.html", status=error.status_code if error else 200, kind="user",
                         label=user["email"], action=f"/settings/users/{user['id']}/delete", cancel_url="/settings",
                         consequence="The user is signed out and can no longer sign in. The API tokens they "
                                     "created stop working.",
                         error=error.message if error else None)

    async def get(self, user_id):
        self.render_confirmation(await accounts_repository.get_user(self.db, id_from_path(user_id, "user")))

    async def post(self, user_id):
        user = await accounts_repository.get_user(self.db, id_from_path(user_id, "user"))
        if user["id"] == self.current_user.user_id:
            self.render_confirmation(user, Conflict("you cannot delete your own account; another user can"))
            return
        await accounts_repository.delete_user(self.db, user["id"])
        log.info("user %d deleted user %d", self.current_user.user_id, user["id"])
        self.redirect_with_flash("/settings", f"User {user['email']} deleted.")


class CreateTokenPage(SettingsPageBase):
    """Shows the new token once, in this response; only its digest is stored."""

    async def post(self):
        name = self.get_body_argument("name", "")
        try:
            token, row = await accounts.create_token(self.db, name, self.current_user.user_id)
        except DomainError as error:
            errors, form_error = split_error(error, ("name",))
            await self.render_settings(error.status_code, token_form={
                "name": name, "errors": errors, "form_error": form_error, "new_token": None})
            return
        await self.render_settings(token_form={"name": "", "errors": {}, "form_error": None,
                                               "new_token": {"name": row["name"], "token": token}})


class RevokeTokenPage(PageHandler):
    async def get(self, token_id):
        token = await accounts_repository.get_token(self.db, id_from_path(token_id, "API token"))
        self.render_page("confirm_delete.html", kind="API token", label=token["name"],
                         action=f"/settings/tokens/{token['id']}/revoke", cancel_url="/settings",
                         consequence="Requests that send this token are refused from then on.")

    async def post(self, token_id):
        token = await accounts_repository.get_token(self.db, id_from_path(token_id, "API token"))
        await accounts_repository.delete_token(self.db, token["id"])
        log.info("user %d revoked API token %d", self.current_user.user_id, token["id"])
        self.redirect_with_flash("/settings", f"API token {token['name']} revoked.")


def routes(id_pattern: str) -> list:
    return [
        (r"/login", SignInPage),
        (r"/logout", SignOutPage),
        (r"/settings/password", PasswordPage),
        (r"/settings/users", AddUserPage),
        (rf"/settings/users/{id_pattern}/delete", DeleteUserPage),
        (r"/settings/tokens", CreateTokenPage),
        (rf"/settings/tokens/{id_pattern}/revoke", RevokeTokenPage),
    ]
