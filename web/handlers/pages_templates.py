"""Pages: email templates, their form and their preview for one contact."""

from web import inputs
from web.errors import DomainError, NotFound
from web.handlers.api_templates import render_preview
from web.handlers.pages_base import PageHandler, id_from_path, page_url, split_error
from web.repositories import contacts, templates

FIELDS = ("name", "html", "text")
STARTER_HTML = "<p>Hello {{ first_name | default(\"there\") }},</p>\n"


class TemplatesPage(PageHandler):
    async def get(self):
        limit, after = self.page_size()
        page = await templates.list_page(self.db, limit=limit, after=after)
        next_url = page_url("/templates", after=page["next"]) if page["next"] is not None else None
        self.render_page("template_list.html", templates=page["items"], next_url=next_url,
                         first_url="/templates" if after else None)


class TemplateFormPage(PageHandler):
    def form_values(self) -> dict:
        return {name: self.get_body_argument(name, "", strip=False) for name in FIELDS}

    def render_form(self, values: dict, template_id: int | None = None, error: DomainError | None = None) -> None:
        errors, form_error = split_error(error, FIELDS) if error else ({}, None)
        self.render_page("template_form.html", status=error.status_code if error else 200,
                         values=values, template_id=template_id, errors=errors, form_error=form_error)


class NewTemplatePage(TemplateFormPage):
    async def get(self):
        self.render_form({"name": "", "html": STARTER_HTML, "text": ""})

    async def post(self):
        values = self.form_values()
        try:
            template = await templates.create(self.db, inputs.template(values))
        except DomainError as error:
            self.render_form(values, error=error)
            return
        self.redirect_with_flash(f"/templates/{template['id']}", f"Template {template['name']} created.")


class TemplatePage(TemplateFormPage):
    async def get(self, template_id):
        template = await templates.get(self.db, id_from_path(template_id, "template"))
        self.render_form({name: template[name] for name in FIELDS}, template["id"])

    async def post(self, template_id):
        template_id = id_from_path(template_id, "template")
        await templates.get(self.db, template_id)
        values = self.form_values()
        try:
            template = await templates.update(self.db, template_id, inputs.template(values))
        except DomainError as error:
            self.render_form(values, template_id, error)
            return
        self.redirect_with_flash(f"/templates/{template_id}", f"Template {template['name']} saved.")


class DeleteTemplatePage(PageHandler):
    async def get(self, template_id):
        template = await templates.get(self.db, id_from_path(template_id, "template"))
        self.render_page("confirm_delete.html", kind="template", label=template["name"],
                         action=f"/templates/{template['id']}/delete", cancel_url=f"/templates/{template['id']}",
                         consequence="Campaigns sent already keep their copy of it. Draft campaigns that use it "
                                     "cannot be sent until another template is chosen.")

    async def post(self, template_id):
        template = await templates.get(self.db, id_from_path(template_id, "template"))
        await templates.delete(self.db, template["id"])
        self.redirect_with_flash("/templates", f"Template {template['name']} deleted.")


class TemplatePreviewPage(PageHandler):
    """`?contact=` takes a contact id or address; without it a sample contact is used."""

    async def get(self, template_id):
        template = await templates.get(self.db, id_from_path(template_id, "template"))
        chosen = self.get_argument("contact", "").strip()
        try:
            contact_id = await self.contact_id(chosen)
            preview = await render_preview(self.db, self.unsubscribe_links, template, contact_id)
        except DomainError as error:
            self.render_page("template_preview.html", status=error.status_code, template=template, contact=chosen,
                             contact_error=error.message, preview=None)
            return
        self.render_page("template_preview.html", template=template, contact=chosen, contact_error=None,
                         preview=preview)

    async def contact_id(self, chosen: str) -> int | None:
        """Return the id of the contact typed as an id or an address; None for the sample contact."""
        if not chosen:
            return None
        if chosen.isdigit():
            return id_from_path(chosen, "contact")
        ids = await contacts.ids_by_email(self.db, [chosen])
        if chosen.lower() not in ids:
            raise NotFound(f"no contact has the address {chosen}", field="contact")
        return ids[chosen.lower()]


def routes(id_pattern: str) -> list:
    return [
        (r"/templates", TemplatesPage),
        (r"/templates/new", NewTemplatePage),
        (rf"/templates/{id_pattern}", TemplatePage),
        (rf"/templates/{id_pattern}/delete", DeleteTemplatePage),
        (rf"/templates/{id_pattern}/preview", TemplatePreviewPage),
    ]
