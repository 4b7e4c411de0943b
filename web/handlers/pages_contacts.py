"""Pages: contacts, their form, deletion and the CSV import page."""

import json

from web import inputs
from web.errors import DomainError, InvalidInput
from web.handlers.pages_base import PageHandler, id_from_path, page_url, split_error
from web.repositories import contacts, segments

FIELDS = ("email", "name", "first_name", "last_name", "attributes")


def contact_form_values(contact: dict) -> dict:
    """Return a stored contact as the strings its form shows."""
    attributes = contact.get("attributes") or {}
    return {
        "email": contact["email"],
        "name": contact["name"],
        "first_name": contact["first_name"],
        "last_name": contact["last_name"],
        "attributes": json.dumps(attributes, ensure_ascii=False, indent=2) if attributes else "",
    }


def parse_attributes(text: str) -> dict:
    """Read the attributes field, a JSON object; empty means none."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"attributes are not valid JSON: {error}", field="attributes") from None
    if not isinstance(value, dict):
        raise InvalidInput('attributes must be a JSON object, such as {"city": "Oslo"}', field="attributes")
    return value


class ContactFormPage(PageHandler):
    def form_values(self) -> dict:
        return {name: self.get_body_argument(name, "") for name in FIELDS}

    def checked_contact(self, values: dict) -> dict:
        data = {name: values[name] for name in ("email", "name", "first_name", "last_name")}
        data["attributes"] = parse_attributes(values["attributes"])
        return inputs.contact(data)

    def render_form(self, values: dict, contact_id: int | None = None, error: DomainError | None = None,
                    unsubscribed_at=None) -> None:
        errors, form_error = split_error(error, FIELDS) if error else ({}, None)
        self.render_page("contact_form.html", status=error.status_code if error else 200,
                         values=values, contact_id=contact_id, errors=errors, form_error=form_error,
                         unsubscribed_at=unsubscribed_at)


class ContactsPage(PageHandler):
    async def get(self):
        limit, after = self.page_size()
        search = self.get_argument("search", "").strip()
        page = await contacts.list_page(self.db, search=search, limit=limit, after=after)
        previous_url = None
        if after:
            previous = await contacts.previous_cursor(self.db, search=search, limit=limit, after=after)
            previous_url = page_url("/contacts", search=search, after=previous, limit=self.get_argument("limit", ""))
        next_url = None
        if page["next"] is not None:
            next_url = page_url("/contacts", search=search, after=page["next"], limit=self.get_argument("limit", ""))
        self.render_page("contact_list.html", contacts=page["items"], search=search,
                         total=await contacts.count(self.db), next_url=next_url, previous_url=previous_url)


class NewContactPage(ContactFormPage):
    async def get(self):
        self.render_form(dict.fromkeys(FIELDS, ""))

    async def post(self):
        values = self.form_values()
        try:
            contact = await contacts.create(self.db, self.checked_contact(values))
        except DomainError as error:
            self.render_form(values, error=error)
            return
        self.redirect_with_flash("/contacts", f"Contact {contact['email']} added.")


class ContactPage(ContactFormPage):
    async def get(self, contact_id):
        contact = await contacts.get(self.db, id_from_path(contact_id, "contact"))
        self.render_form(contact_form_values(contact), contact["id"], unsubscribed_at=contact["unsubscribed_at"])

    async def post(self, contact_id):
        contact_id = id_from_path(contact_id, "contact")
        stored = await contacts.get(self.db, contact_id)
        values = self.form_values()
        try:
            contact = await contacts.update(self.db, contact_id, self.checked_contact(values))
        except DomainError as error:
            self.render_form(values, contact_id, error, unsubscribed_at=stored["unsubscribed_at"])
            return
        self.redirect_with_flash("/contacts", f"Contact {contact['email']} saved.")


class DeleteContactPage(PageHandler):
    async def get(self, contact_id):
        contact = await contacts.get(self.db, id_from_path(contact_id, "contact"))
        self.render_page("confirm_delete.html", kind="contact", label=contact["email"],
                         action=f"/contacts/{contact['id']}/delete", cancel_url=f"/contacts/{contact['id']}",
                         consequence="The contact leaves every segment. Jobs of campaigns sent already keep "
                                     "the address.")

    async def post(self, contact_id):
        contact = await contacts.get(self.db, id_from_path(contact_id, "contact"))
        await contacts.delete(self.db, contact["id"])
        self.redirect_with_flash("/contacts", f"Contact {contact['email']} deleted.")


class ImportContactsPage(PageHandler):
    """The CSV import form; static/import.js sends the file to the JSON API and shows the report."""

    async def get(self):
        selected = self.get_argument("segment_id", "")
        self.render_page("contact_import.html", segments=await segments.list_all(self.db),
                         selected=int(selected) if selected.isdigit() else None)


def routes(id_pattern: str) -> list:
    return [
        (r"/contacts", ContactsPage),
        (r"/contacts/new", NewContactPage),
        (r"/contacts/import", ImportContactsPage),
        (rf"/contacts/{id_pattern}", ContactPage),
        (rf"/contacts/{id_pattern}/delete", DeleteContactPage),
    ]
