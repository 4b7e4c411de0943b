"""JSON API: segments and their members."""

from web import inputs, validation
from web.errors import NotFound
from web.handlers.base import ApiHandler
from web.repositories import contacts, segments


class SegmentsHandler(ApiHandler):
    async def get(self):
        limit, after = validation.page(self.get_argument("limit", None), self.get_argument("after", None))
        self.write_json(await segments.list_page(self.db, limit=limit, after=after))

    async def post(self):
        name = inputs.segment_name(validation.parse_json_object(self.request.body))
        self.write_json(await segments.create(self.db, name), status=201)


class SegmentHandler(ApiHandler):
    async def get(self, segment_id):
        self.write_json(await segments.get(self.db, validation.positive_id(segment_id, "id")))

    async def put(self, segment_id):
        name = inputs.segment_name(validation.parse_json_object(self.request.body))
        self.write_json(await segments.rename(self.db, validation.positive_id(segment_id, "id"), name))

    async def delete(self, segment_id):
        await segments.delete(self.db, validation.positive_id(segment_id, "id"))
        self.set_status(204)
        self.finish()


class SegmentContactsHandler(ApiHandler):
    async def get(self, segment_id):
        segment_id = validation.positive_id(segment_id, "id")
        await segments.get(self.db, segment_id)
        limit, after = validation.page(self.get_argument("limit", None), self.get_argument("after", None))
        search = self.get_argument("search", "").strip()
        self.write_json(
            await contacts.list_page(self.db, search=search, limit=limit, after=after, segment_id=segment_id)
        )

    async def post(self, segment_id):
        segment_id, contact_ids = await self._ids(segment_id)
        async with self.db.transaction() as transaction:
            missing = sorted(set(contact_ids) - await contacts.existing_ids(transaction, contact_ids))
            if missing:
                shown = ", ".join(str(contact_id) for contact_id in missing[:10])
                raise NotFound(f"{len(missing)} contact(s) not found: {shown}", field="contact_ids")
            added = await segments.add_contacts(transaction, segment_id, contact_ids)
        self.write_json({"added": added, "segment": await segments.get(self.db, segment_id)})

    async def delete(self, segment_id):
        segment_id, contact_ids = await self._ids(segment_id)
        removed = await segments.remove_contacts(self.db, segment_id, contact_ids)
        self.write_json({"removed": removed, "segment": await segments.get(self.db, segment_id)})

    async def _ids(self, segment_id: str) -> tuple[int, list[int]]:
        segment_id = validation.positive_id(segment_id, "id")
        contact_ids = validation.id_list(validation.parse_json_object(self.request.body), "contact_ids")
        await segments.get(self.db, segment_id)
        return segment_id, contact_ids
