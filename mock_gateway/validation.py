"""Validation of the request body of POST /v1/messages.

The body is `{"from": {"name", "email"}, "to": {"name", "email"}, "subject",
"text", "html", "headers"}`. `from.email`, `to.email` and `subject` are
required, and so is at least one of `text` and `html`. Names, bodies and
headers may be left out or null.
"""

import json
from typing import Any

from email_validator import EmailNotValidError, validate_email

from mock_gateway.store import Address, Message


class InvalidMessage(ValueError):
    """A request body is not a valid message.

    `field` is the dotted name of the invalid field, or None when the body as a
    whole is invalid.
    """

    def __init__(self, field: str | None, message: str):
        self.field = field
        super().__init__(message)


def parse_message(body: bytes) -> Message:
    """Return the message in a JSON request body.

    Raises InvalidMessage saying which field is wrong and how.
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidMessage(None, f"request body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidMessage(None, "request body must be a JSON object with from, to, subject and text or html")

    sender = _address(data, "from")
    recipient = _address(data, "to")
    subject = _optional_string(data, "subject")
    if not subject:
        raise InvalidMessage("subject", "subject is missing; give the message a non-empty subject")
    text = _optional_string(data, "text")
    html = _optional_string(data, "html")
    if not text and not html:
        raise InvalidMessage("text", "text and html are both missing; give the message at least one body")

    return Message(
        sender=sender,
        recipient=recipient,
        subject=subject,
        text=text,
        html=html,
        headers=_headers(data.get("headers")),
    )


def _optional_string(data: dict, name: str, prefix: str = "") -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidMessage(prefix + name, f"{prefix}{name} must be a string, got {type(value).__name__}")
    return value


def _address(data: dict, name: str) -> Address:
    value = data.get(name)
    if value is None:
        raise InvalidMessage(name, f'{name} is missing; send it as {{"name": ..., "email": ...}}')
    if not isinstance(value, dict):
        shown_type = type(value).__name__
        raise InvalidMessage(name, f'{name} must be an object {{"name": ..., "email": ...}}, got {shown_type}')
    email = _optional_string(value, "email", f"{name}.")
    if not email:
        raise InvalidMessage(f"{name}.email", f"{name}.email is missing")
    try:
        # A test environment allows reserved domains such as `.test`, which
        # demos use; deliverability is not checked because that needs DNS.
        validate_email(email, check_deliverability=False, test_environment=True)
    except EmailNotValidError as error:
        raise InvalidMessage(f"{name}.email", f"{name}.email {email!r} is not a valid address: {error}") from None
    return Address(email=email, name=_optional_string(value, "name", f"{name}."))


def _headers(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidMessage("headers", f"headers must be an object of strings, got {type(value).__name__}")
    for name, header_value in value.items():
        if not isinstance(header_value, str):
            raise InvalidMessage(
                f"headers.{name}", f"headers.{name} must be a string, got {type(header_value).__name__}"
            )
        # A line break would let a header value inject further headers.
        if any(character in name + header_value for character in "\r\n"):
            raise InvalidMessage(f"headers.{name}", f"headers.{name} must not contain line breaks")
    return dict(value)
