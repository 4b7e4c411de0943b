"""HTML pages of the user interface: their routes, and the page for unknown addresses."""

from web.handlers import (pages_accounts, pages_campaigns, pages_contacts, pages_segments, pages_settings,
                          pages_templates, pages_unsubscribe)
from web.handlers.pages_base import NotFoundPage, make_environment

__all__ = ["NotFoundPage", "make_environment", "routes"]

ID = r"([0-9]+)"


def routes() -> list:
    return [
        *pages_settings.routes(),
        *pages_accounts.routes(ID),
        *pages_contacts.routes(ID),
        *pages_segments.routes(ID),
        *pages_templates.routes(ID),
        *pages_campaigns.routes(ID),
        *pages_unsubscribe.routes(),
    ]
