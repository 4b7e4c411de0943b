"""Pages: the unsubscribe link of every email, open to anyone who has the link."""

import logging

from web.errors import NotFound
from web.handlers.base import Access
from web.handlers.pages_base import PageHandler
from web.repositories import contacts

log = logging.getLogger(__name__)

INVALID_LINK = "This unsubscribe link is not valid. Copy the whole link from the email, or ask the sender."


class UnsubscribePage(PageHandler):
    """`GET /unsubscribe/{token}` shows a confirmation form; `POST` unsubscribes.

    The POST may also come from a mail program's one-click unsubscribe.
    """

    access = Access.PUBLIC

    def check_xsrf_cookie(self) -> None:
        # Mail programs post the one-click unsubscribe (RFC 8058) without a CSRF token.
        # The token in the URL is what allows the request, and it allows nothing else.
        return

    async def get(self, token):
        contact = await self._contact(token)
        if contact is not None:
            self.render_page("unsubscribe.html", contact=contact, token=token, done=False)

    async def post(self, token):
        contact = await self._contact(token)
        if contact is None:
            return
        if contact["unsubscribed_at"] is None:
            contact = await contacts.unsubscribe(self.db, contact["id"])
            log.info("contact %d unsubscribed", contact["id"])
        self.render_page("unsubscribe.html", contact=contact, token=token, done=True)

    async def _contact(self, token: str) -> dict | None:
        """Return the contact of the link, or render the invalid link page and return None."""
        contact_id = self.unsubscribe_links.contact_id(token)
        if contact_id is not None:
            try:
                return await contacts.get(self.db, contact_id)
            except NotFound:
                pass  # deleted since the email was sent
        self.render_page("unsubscribe.html", status=404, contact=None, token=token, error=INVALID_LINK)
        return None


def routes() -> list:
    return [(r"/unsubscribe/([0-9]+-[A-Za-z0-9_-]+)", UnsubscribePage)]
