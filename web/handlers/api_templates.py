"""JSON API: email templates and their preview."""

from common.templating import TemplateError, TemplateRenderError, compile_template, render_message
from web import inputs, validation
from web.errors import InvalidInput
from web.handlers.base import ApiHandler
from web.repositories import contacts, templates
from web.unsubscribe import UnsubscribeLinks

SAMPLE_CONTACT = {
    "email": "sample@example.com", "name": "Sample Contact", "first_name": "Sample", "last_name": "Contact",
    "attributes": {},
}


async def render_preview(db, links: UnsubscribeLinks, template: dict, contact_id: int | None,
                         subject: str = "") -> dict:
    """Render `template` for a contact (or a sample one); report a render error instead of raising it."""
    if contact_id:
        contact = await contacts.get(db, contact_id)
        contact = {**contact, "unsubscribe_url": links.url(contact["id"])}
    else:
        contact = {**SAMPLE_CONTACT, "unsubscribe_url": links.url(0)}
    try:
        message = render_message(compile_template(subject, template["html"], template["text"]), contact)
    except TemplateError as error:
        raise InvalidInput(f"template syntax error: {error}", field=error.part) from None
    except TemplateRenderError as error:
        return {"contact_email": contact["email"], "error": str(error)}
    return {"contact_email": contact["email"], "subject": message.subject, "html": message.html, "text": message.text}


class TemplatesHandler(ApiHandler):
    async def get(self):
        limit, after = validation.page(self.get_argument("limit", None), self.get_argument("after", None))
        self.write_json(await templates.list_page(self.db, limit=limit, after=after))

    async def post(self):
        template = inputs.template(validation.parse_json_object(self.request.body))
        self.write_json(await templates.create(self.db, template), status=201)


class TemplateHandler(ApiHandler):
    async def get(self, template_id):
        self.write_json(await templates.get(self.db, validation.positive_id(template_id, "id")))

    async def put(self, template_id):
        template = inputs.template(validation.parse_json_object(self.request.body))
        self.write_json(await templates.update(self.db, validation.positive_id(template_id, "id"), template))

    async def delete(self, template_id):
        await templates.delete(self.db, validation.positive_id(template_id, "id"))
        self.set_status(204)
        self.finish()


class TemplatePreviewHandler(ApiHandler):
    """`GET /api/v1/templates/{id}/preview?contact_id=&subject=`: the email as that contact would get it."""

    async def get(self, template_id):
        template = await templates.get(self.db, validation.positive_id(template_id, "id"))
        contact = self.get_argument("contact_id", "")
        contact_id = validation.positive_id(contact, "contact_id") if contact else None
        subject = self.get_argument("subject", "")
        self.write_json(await render_preview(self.db, self.unsubscribe_links, template, contact_id, subject))
