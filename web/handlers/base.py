"""Base handlers: access to the database and services, and the mapping of domain errors to HTTP."""

import datetime
import json
import logging
from typing import Any

import tornado.web

from web.errors import DomainError

log = logging.getLogger(__name__)


def to_json(value: Any) -> str:
    def default(item):
        if isinstance(item, (datetime.datetime, datetime.date)):
            return item.isoformat()
        raise TypeError(f"cannot encode {type(item).__name__} as JSON")

    return json.dumps(value, default=default, ensure_ascii=False)


class BaseHandler(tornado.web.RequestHandler):
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
    """A JSON endpoint: answers JSON, errors included, as `{"error": ..., "field": ...}`."""

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
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(to_json(body))


class ApiNotFoundHandler(ApiHandler):
    def prepare(self):
        raise tornado.web.HTTPError(404, f"no API endpoint at {self.request.path}")
