"""HTML pages of the user interface."""

import tornado.web

from web.handlers.base import BaseHandler


class NotFoundPage(BaseHandler):
    def prepare(self):
        raise tornado.web.HTTPError(404)


def routes() -> list:
    return []
