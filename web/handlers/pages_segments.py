"""Pages: segments, their members, and adding members by address."""

from web import inputs
from web.errors import DomainError, InvalidInput
from web.handlers.pages_base import PageHandler, count_of, id_from_path, page_url, split_error
from web.repositories import contacts, segments

# The JSON API takes at most this many contact ids per request too.
MAX_ADDRESSES = 10_000
MAX_SHOWN_UNKNOWN = 50


class SegmentsPage(PageHandler):
    async def get(self):
        limit, after = self.page_size()
        page = await segments.list_page(self.db, limit=limit, after=after)
        next_url = page_url("/segments", after=page["next"]) if page["next"] is not None else None
        self.render_page("segment_list.html", segments=page["items"], next_url=next_url,
                         first_url="/segments" if after else None)


class SegmentNamePage(PageHandler):
    """The form that creates a segment or renames one."""

    def render_form(self, name: str, segment: dict | None = None, error: DomainError | None = None) -> None:
        errors, form_error = split_error(error, ("name",)) if error else ({}, None)
        self.render_page("segment_form.html", status=error.status_code if error else 200,
                         name=name, segment=segment, errors=errors, form_error=form_error)


class NewSegmentPage(SegmentNamePage):
    async def get(self):
        self.render_form("")

    async def post(self):
        name = self.get_body_argument("name", "")
        try:
            segment = await segments.create(self.db, inputs.segment_name({"name": name}))
        except DomainError as error:
            self.render_form(name, error=error)
            return
        self.redirect_with_flash(f"/segments/{segment['id']}", f"Segment {segment['name']} created.")


class RenameSegmentPage(SegmentNamePage):
    async def get(self, segment_id):
        segment = await segments.get(self.db, id_from_path(segment_id, "segment"))
        self.render_form(segment["name"], segment)

    async def post(self, segment_id):
        segment = await segments.get(self.db, id_from_path(segment_id, "segment"))
        name = self.get_body_argument("name", "")
        try:
            renamed = await segments.rename(self.db, segment["id"], inputs.segment_name({"name": name}))
        except DomainError as error:
            self.render_form(name, segment, error)
            return
        self.redirect_with_flash(f"/segments/{segment['id']}", f"Segment renamed to {renamed['name']}.")


class DeleteSegmentPage(PageHandler):
    async def get(self, segment_id):
        segment = await segments.get(self.db, id_from_path(segment_id, "segment"))
        self.render_page("confirm_delete.html", kind="segment", label=segment["name"],
                         action=f"/segments/{segment['id']}/delete", cancel_url=f"/segments/{segment['id']}",
                         consequence="Its contacts stay. Campaigns that name this segment lose it and cannot "
                                     "be sent until another segment is chosen.")

    async def post(self, segment_id):
        segment = await segments.get(self.db, id_from_path(segment_id, "segment"))
        await segments.delete(self.db, segment["id"])
        self.redirect_with_flash("/segments", f"Segment {segment['name']} deleted.")


class SegmentMembersPage(PageHandler):
    """A segment's members, a page at a time, with the form that adds members by address."""

    async def render_segment(self, segment: dict, status: int = 200, addresses: str = "",
                             add_message: str | None = None, add_error: str | None = None) -> None:
        limit, after = self.page_size()
        path = f"/segments/{segment['id']}"
        page = await contacts.list_page(self.db, limit=limit, after=after, segment_id=segment["id"])
        previous_url = next_url = None
        if after:
            previous = await contacts.previous_cursor(self.db, limit=limit, after=after, segment_id=segment["id"])
            previous_url = page_url(path, after=previous, limit=self.get_argument("limit", ""))
        if page["next"] is not None:
            next_url = page_url(path, after=page["next"], limit=self.get_argument("limit", ""))
        self.render_page("segment.html", status=status, segment=segment, contacts=page["items"], after=after,
                         next_url=next_url, previous_url=previous_url, addresses=addresses,
                         add_message=add_message, add_error=add_error)


class SegmentPage(SegmentMembersPage):
    async def get(self, segment_id):
        segment = await segments.get(self.db, id_from_path(segment_id, "segment"))
        await self.render_segment(segment)


class AddSegmentContactsPage(SegmentMembersPage):
    """Adds the contacts whose addresses are typed one per line; reports the unknown addresses."""

    async def post(self, segment_id):
        segment = await segments.get(self.db, id_from_path(segment_id, "segment"))
        text = self.get_body_argument("addresses", "")
        addresses = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
        if not addresses:
            await self.render_segment(segment, 400, text, add_error="Type at least one address, one per line.")
            return
        if len(addresses) > MAX_ADDRESSES:
            error = InvalidInput(f"{len(addresses)} addresses typed; add at most {MAX_ADDRESSES} at a time, "
                                 "or import a CSV file")
            await self.render_segment(segment, error.status_code, text, add_error=error.message)
            return

        async with self.db.transaction() as transaction:
            ids = await contacts.ids_by_email(transaction, addresses)
            added = await segments.add_contacts(transaction, segment["id"], sorted(set(ids.values())))
        unknown = [address for address in addresses if address.lower() not in ids]
        message = f"{count_of(added, 'contact')} added; {len(ids) - added:,} already in the segment."
        if unknown:
            listed = ", ".join(unknown[:MAX_SHOWN_UNKNOWN])
            more = f" and {len(unknown) - MAX_SHOWN_UNKNOWN} more" if len(unknown) > MAX_SHOWN_UNKNOWN else ""
            # The unknown addresses stay in the form, so that they can be corrected and sent again.
            await self.render_segment(await segments.get(self.db, segment["id"]), 200, "\n".join(unknown),
                                      add_message=message,
                                      add_error=f"No contact has these addresses: {listed}{more}.")
            return
        self.redirect_with_flash(f"/segments/{segment['id']}", message)


class RemoveSegmentContactPage(PageHandler):
    async def post(self, segment_id):
        segment = await segments.get(self.db, id_from_path(segment_id, "segment"))
        contact = await contacts.get(self.db, id_from_path(self.get_body_argument("contact_id", ""), "contact"))
        await segments.remove_contacts(self.db, segment["id"], [contact["id"]])
        after = self.get_body_argument("after", "")
        back = page_url(f"/segments/{segment['id']}", after=after if after.isdigit() else None)
        self.redirect_with_flash(back, f"{contact['email']} removed from {segment['name']}.")


def routes(id_pattern: str) -> list:
    return [
        (r"/segments", SegmentsPage),
        (r"/segments/new", NewSegmentPage),
        (rf"/segments/{id_pattern}", SegmentPage),
        (rf"/segments/{id_pattern}/rename", RenameSegmentPage),
        (rf"/segments/{id_pattern}/delete", DeleteSegmentPage),
        (rf"/segments/{id_pattern}/contacts/add", AddSegmentContactsPage),
        (rf"/segments/{id_pattern}/contacts/remove", RemoveSegmentContactPage),
    ]
