"""Email templates: Jinja2 in a sandbox, rendered for one contact.

Web checks a template with `compile_template` when it is saved; email_client
renders it for every job with `render_message`. Both use the same rules, so a
template that saves cleanly behaves the same when sent.

A template can use the contact's fields (`email`, `name`, `first_name`,
`last_name`), its `attributes` (a dict), each attribute by name unless a
field has that name, and `unsubscribe_url`, the contact's unsubscribe link.
A field or attribute that is missing or empty is undefined, and rendering
it raises `TemplateRenderError` instead of sending a blank: write
`{{ first_name | default("there") }}` or `{% if city %}...{% endif %}` to
allow for it.
"""

from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

CONTACT_FIELDS = ("email", "name", "first_name", "last_name", "unsubscribe_url")



class MissingValue(jinja2.StrictUndefined):
    """A value the contact lacks: false in a test such as `{% if city %}`, an error wherever it is output."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False


_html_environment = SandboxedEnvironment(autoescape=True, undefined=MissingValue)
_text_environment = SandboxedEnvironment(autoescape=False, undefined=MissingValue)


class TemplateError(ValueError):
    """A template that does not compile; `part` and `line` locate the error."""

    def __init__(self, part: str, line: int | None, message: str):
        self.part = part
        self.line = line
        self.message = message
        where = f"{part}, line {line}" if line else part
        super().__init__(f"{where}: {message}")


class TemplateRenderError(ValueError):
    """A template cannot be rendered for one contact, such as for a missing variable."""


@dataclass(frozen=True)
class Message:
    subject: str
    html: str
    text: str


@dataclass
class CompiledTemplate:
    subject: jinja2.Template
    html: jinja2.Template
    text: jinja2.Template | None


def _compile(environment: SandboxedEnvironment, part: str, source: str) -> jinja2.Template:
    try:
        return environment.from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(part, error.lineno, error.message or str(error)) from None
    except jinja2.TemplateError as error:
        raise TemplateError(part, None, str(error)) from None


def compile_template(subject: str, html: str, text: str | None = None) -> CompiledTemplate:
    """Compile the three parts of an email; raise TemplateError on the first invalid one."""
    return CompiledTemplate(
        subject=_compile(_text_environment, "subject", subject),
        html=_compile(_html_environment, "html", html),
        text=_compile(_text_environment, "text", text) if text else None,
    )


def contact_context(contact: dict[str, Any]) -> dict[str, Any]:
    """Build the variables a template can use for `contact`, leaving empty values undefined."""
    attributes = {
        key: value
        for key, value in (contact.get("attributes") or {}).items()
        if value not in (None, "")
    }
    context: dict[str, Any] = dict(attributes)
    context["attributes"] = attributes
    for field in CONTACT_FIELDS:
        value = contact.get(field)
        if value not in (None, ""):
            context[field] = value
        else:
            context.pop(field, None)
    return context


def _render(template: jinja2.Template, part: str, context: dict[str, Any]) -> str:
    try:
        return template.render(context)
    except jinja2.UndefinedError as error:
        raise TemplateRenderError(f"{part}: {error.message}; the contact has no such value") from None
    except jinja2.exceptions.SecurityError as error:
        raise TemplateRenderError(f"{part}: not allowed in a template: {error}") from None
    except Exception as error:  # a template can raise anything its expressions do, e.g. 1/0
        raise TemplateRenderError(f"{part}: {type(error).__name__}: {error}") from None


def render_message(template: CompiledTemplate, contact: dict[str, Any]) -> Message:
    """Render subject, HTML and text for `contact`; raise TemplateRenderError if any part fails."""
    context = contact_context(contact)
    subject = _render(template.subject, "subject", context).strip()
    html = _render(template.html, "html", context)
    text = _render(template.text, "text", context) if template.text else ""
    return Message(subject=subject, html=html, text=text)
