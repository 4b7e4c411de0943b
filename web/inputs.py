"""Turn request data (JSON objects or form fields) into checked values for the repositories.

The JSON API and the pages share these, so a value refused by one is refused
by the other with the same message.
"""

from typing import Any

from common.templating import TemplateError, compile_template
from web import validation
from web.errors import InvalidInput

MAX_TEMPLATE_LENGTH = 512 * 1024
MAX_SUBJECT_LENGTH = 500


def contact(data: dict[str, Any]) -> dict[str, Any]:
    validation.reject_unknown_keys(data, {"email", "name", "first_name", "last_name", "attributes"})
    first_name = validation.text(data, "first_name")
    last_name = validation.text(data, "last_name")
    name = validation.text(data, "name") or " ".join(part for part in (first_name, last_name) if part)
    return {
        "email": validation.email_address(data.get("email")),
        "name": name,
        "first_name": first_name,
        "last_name": last_name,
        "attributes": validation.attributes(data),
    }


def segment_name(data: dict[str, Any]) -> str:
    validation.reject_unknown_keys(data, {"name"})
    return validation.text(data, "name", required=True)


def template(data: dict[str, Any]) -> dict[str, Any]:
    """Check a template's fields and that its bodies compile; raise InvalidInput naming the line."""
    validation.reject_unknown_keys(data, {"name", "html", "text"})
    checked = {
        "name": validation.text(data, "name", required=True),
        "html": validation.text(data, "html", required=True, max_length=MAX_TEMPLATE_LENGTH),
        "text": validation.text(data, "text", max_length=MAX_TEMPLATE_LENGTH),
    }
    try:
        compile_template("", checked["html"], checked["text"])
    except TemplateError as error:
        raise InvalidInput(f"template syntax error: {error}", field=error.part) from None
    return checked


def campaign(data: dict[str, Any]) -> dict[str, Any]:
    validation.reject_unknown_keys(data, {"name", "segment_id", "template_id", "subject"})
    subject = validation.text(data, "subject", required=True, max_length=MAX_SUBJECT_LENGTH)
    try:
        compile_template(subject, "")
    except TemplateError as error:
        raise InvalidInput(f"subject syntax error: {error}", field="subject") from None
    if data.get("segment_id") in (None, ""):
        raise InvalidInput("segment_id is required", field="segment_id")
    if data.get("template_id") in (None, ""):
        raise InvalidInput("template_id is required", field="template_id")
    return {
        "name": validation.text(data, "name", required=True),
        "segment_id": validation.positive_id(data["segment_id"], "segment_id"),
        "template_id": validation.positive_id(data["template_id"], "template_id"),
        "subject": subject,
    }


def gateway_settings(data: dict[str, Any]) -> dict[str, Any]:
    """Check the settings kept by email_client; values it rejects come back as its own 400s."""
    known = {"from_name", "from_email", "gateway_username", "gateway_password"}
    validation.reject_unknown_keys(data, known)
    checked: dict[str, Any] = {}
    for key in known & set(data):
        value = data[key]
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{key} must be a string", field=key)
        checked[key] = value
    if checked.get("from_email"):
        checked["from_email"] = validation.email_address(checked["from_email"], "from_email")
    return checked
