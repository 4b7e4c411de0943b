"""JSON API: contacts, their CSV import and export."""

import csv
import io
import json
import tempfile

import tornado.web

from web import csv_import, inputs, validation
from web.errors import InvalidInput
from web.handlers.base import ApiHandler
from web.repositories import contacts

CSV_TYPES = {"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel", "application/octet-stream"}
SPOOL_IN_MEMORY_BYTES = 1024 * 1024


class ContactsHandler(ApiHandler):
    async def get(self):
        limit, after = validation.page(self.get_argument("limit", None), self.get_argument("after", None))
        search = self.get_argument("search", "").strip()
        self.write_json(await contacts.list_page(self.db, search=search, limit=limit, after=after))

    async def post(self):
        contact = inputs.contact(validation.parse_json_object(self.request.body))
        self.write_json(await contacts.create(self.db, contact), status=201)


class ContactHandler(ApiHandler):
    async def get(self, contact_id):
        self.write_json(await contacts.get(self.db, validation.positive_id(contact_id, "id")))

    async def put(self, contact_id):
        contact = inputs.contact(validation.parse_json_object(self.request.body))
        self.write_json(await contacts.update(self.db, validation.positive_id(contact_id, "id"), contact))

    async def delete(self, contact_id):
        await contacts.delete(self.db, validation.positive_id(contact_id, "id"))
        self.set_status(204)
        self.finish()


@tornado.web.stream_request_body
class ContactImportHandler(ApiHandler):
    """Takes the CSV file as the request body, spooled to disk as it arrives."""

    async def prepare(self):
        # Tornado reads the body only after prepare() ends, so the body of a request without a user is never read.
        await super().prepare()
        max_bytes = self.config.import_max_bytes
        self.request.connection.set_max_body_size(max_bytes)
        length = self.request.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise InvalidInput(f"the file is {int(length)} bytes; the largest import is {max_bytes} bytes")
        content_type = self.request.headers.get("Content-Type", "text/csv").split(";")[0].strip().lower()
        if content_type not in CSV_TYPES:
            raise InvalidInput(f"send the CSV file as the request body with Content-Type text/csv, not {content_type}")
        segment = self.get_argument("segment_id", "")
        self.segment_id = validation.positive_id(segment, "segment_id") if segment else None
        self.upload = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)
        self.received = 0

    def data_received(self, chunk: bytes) -> None:
        self.received += len(chunk)
        self.upload.write(chunk)

    async def post(self):
        try:
            if self.received == 0:
                raise InvalidInput("the request body is empty; send the CSV file as the body")
            self.upload.seek(0)
            report = await csv_import.import_contacts(self.db, self.upload, self.segment_id)
        finally:
            self.upload.close()
        self.write_json(report.as_dict())

    def on_finish(self):
        upload = getattr(self, "upload", None)
        if upload is not None:
            upload.close()


class ContactExportHandler(ApiHandler):
    """Streams every contact as CSV: the fields, then one column per attribute name."""

    async def get(self):
        attribute_names = await contacts.attribute_names(self.db)
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="contacts.csv"')
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["email", "name", "first_name", "last_name", *attribute_names])
        async for batch in contacts.iterate_all(self.db):
            for contact in batch:
                attributes = contact["attributes"] or {}
                writer.writerow([
                    contact["email"], contact["name"], contact["first_name"], contact["last_name"],
                    *(_cell(attributes.get(name)) for name in attribute_names),
                ])
            self.write(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()
            await self.flush()
        self.write(buffer.getvalue())
        self.finish()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
