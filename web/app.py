"""The web application: routes, shared services, start and stop."""

import logging
from pathlib import Path

import tornado.web

from common import signing
from web import accounts, auth, csv_import, migrations
from web.db import Database
from web.dispatcher import Dispatcher
from web.email_client_api import EmailClientAPI, SettingsStatus
from web.handlers import api_campaigns, api_contacts, api_internal, api_segments, api_settings, api_templates, pages
from web.handlers.base import Access, ApiHandler, ApiNotFoundHandler, StaticFiles
from web.unsubscribe import UnsubscribeLinks

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent
ID = r"([0-9]+)"


class HealthHandler(ApiHandler):
    access = Access.PUBLIC

    async def get(self):
        await self.db.fetch_value("SELECT 1")
        self.write_json({"status": "ok"})


def api_routes() -> list:
    prefix = "/api/v1"
    return [
        (rf"{prefix}/contacts", api_contacts.ContactsHandler),
        (rf"{prefix}/contacts/import", api_contacts.ContactImportHandler),
        (rf"{prefix}/contacts/export", api_contacts.ContactExportHandler),
        (rf"{prefix}/contacts/{ID}", api_contacts.ContactHandler),
        (rf"{prefix}/segments", api_segments.SegmentsHandler),
        (rf"{prefix}/segments/{ID}", api_segments.SegmentHandler),
        (rf"{prefix}/segments/{ID}/contacts", api_segments.SegmentContactsHandler),
        (rf"{prefix}/templates", api_templates.TemplatesHandler),
        (rf"{prefix}/templates/{ID}", api_templates.TemplateHandler),
        (rf"{prefix}/templates/{ID}/preview", api_templates.TemplatePreviewHandler),
        (rf"{prefix}/campaigns", api_campaigns.CampaignsHandler),
        (rf"{prefix}/campaigns/{ID}", api_campaigns.CampaignHandler),
        (rf"{prefix}/campaigns/{ID}/(send|pause|resume|cancel|retry-failed)", api_campaigns.CampaignActionHandler),
        (rf"{prefix}/campaigns/{ID}/jobs", api_campaigns.CampaignJobsHandler),
        (rf"{prefix}/settings", api_settings.SettingsHandler),
        (rf"{prefix}/internal/job-results", api_internal.JobResultsHandler),
        (rf"{prefix}/.*", ApiNotFoundHandler),
        (r"/healthz", HealthHandler),
    ]


def make_app(config, db: Database, email_client: EmailClientAPI, dispatcher: Dispatcher, links: UnsubscribeLinks,
             cookie_secret: str, service_secret: bytes) -> tornado.web.Application:
    return tornado.web.Application(
        api_routes() + pages.routes(),
        cookie_secret=cookie_secret,
        # Every POST, PUT and DELETE made with a session cookie needs the CSRF token; see
        # BaseHandler.check_xsrf_cookie for the requests that are exempt.
        xsrf_cookies=True,
        xsrf_cookie_kwargs={"httponly": True, "samesite": "Lax"},
        # Checks the signature of the requests from email_client (see api_internal).
        service_secret=service_secret,
        config=config,
        db=db,
        email_client=email_client,
        dispatcher=dispatcher,
        unsubscribe_links=links,
        settings_status=SettingsStatus(email_client),
        jinja=pages.make_environment(WEB_DIR / "templates"),
        template_path=str(WEB_DIR / "templates"),
        static_path=str(WEB_DIR / "static"),
        static_handler_class=StaticFiles,
        default_handler_class=pages.NotFoundPage,
    )


class WebService:
    """The web process's parts, started and stopped together."""

    def __init__(self, config):
        self.config = config
        self.db: Database | None = None
        self.email_client: EmailClientAPI | None = None
        self.dispatcher: Dispatcher | None = None
        self.server = None

    async def start(self, port: int | None = None) -> None:
        """Migrate the database, create the admin user if configured, and listen.

        Raises ConfigError, before touching the database, when no usable cookie
        secret or service secret is set or the admin settings are incomplete or invalid.
        """
        cookie_secret = auth.cookie_secret(self.config)
        links = UnsubscribeLinks(self.config.public_url, cookie_secret)
        admin = accounts.admin_account(self.config)
        service_secret = signing.service_secret(self.config, "web")
        migrations.migrate(self.config.database_url)
        self.db = await Database.connect(self.config.database_url)
        if admin is not None and await accounts.ensure_user(self.db, *admin):
            log.info("created user %s from WEB_ADMIN_EMAIL", admin[0])
        self.email_client = EmailClientAPI(self.config.email_client_url, service_secret)
        self.dispatcher = Dispatcher(self.db, self.email_client, links, self.config.dispatch_chunk_size,
                                     self.config.dispatch_backlog_limit)
        app = make_app(self.config, self.db, self.email_client, self.dispatcher, links, cookie_secret, service_secret)
        self.server = app.listen(port if port is not None else self.config.port, address=self.config.host,
                                 xheaders=False)
        self.dispatcher.start()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self.email_client is not None:
            await self.email_client.close()
        # Statistics refreshed after an import take well under a second; a longer one is cancelled.
        await csv_import.finish_background_work(timeout=5.0)
        if self.db is not None:
            await self.db.close()
