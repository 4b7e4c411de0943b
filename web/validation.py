"""Checks on user input; each raises InvalidInput with a message that explains what to fix."""

import functools
import json
import re
from typing import Any

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from web.errors import InvalidInput

MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 200
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise InvalidInput("the request body is empty; send a JSON object")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(f"the request body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object")
    return data


def reject_unknown_keys(data: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidInput(
            f"unknown field(s) {', '.join(unknown)}; expected: {', '.join(sorted(known))}", field=unknown[0]
        )


def text(data: dict[str, Any], name: str, *, required: bool = False, max_length: int = MAX_NAME_LENGTH,
         default: str | None = "") -> str | None:
    """Return the string `data[name]`, stripped; `default` when it is absent and not required."""
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"{name} is required", field=name)
        return default
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", field=name)
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{name} must not be empty", field=name)
    if len(value) > max_length:
        raise InvalidInput(f"{name} is {len(value)} characters long; the maximum is {max_length}", field=name)
    if "\x00" in value:
        raise InvalidInput(f"{name} contains a NUL character", field=name)
    return value


# An ASCII dot-atom local part: the common case, which email-validator
# accepts and leaves unchanged (except the RFC 2142 mailbox names such as
# "Postmaster", which it lowercases). Anything else takes the full check.
_PLAIN_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_MAX_LOCAL_PART_LENGTH = 64


@functools.lru_cache(maxsize=4096)
def _normalized_domain(domain: str) -> str:
    """Check a domain once with email-validator; an import repeats a few domains many times."""
    return validate_email(f"x@{domain}", check_deliverability=False).domain


def _normalize(value: str) -> str:
    local_part, at, domain = value.rpartition("@")
    plain = (
        at and len(local_part) <= _MAX_LOCAL_PART_LENGTH and domain.isascii()
        and _PLAIN_LOCAL_PART.fullmatch(local_part) and local_part.lower() not in CASE_INSENSITIVE_MAILBOX_NAMES
    )
    if plain:
        return f"{local_part}@{_normalized_domain(domain)}"
    return validate_email(value, check_deliverability=False).normalized


def email_address(value: Any, field: str = "email") -> str:
    """Return `value` as a normalized address, or raise InvalidInput saying why it is not one.

    The checks are email-validator's (without DNS lookups); plain ASCII
    addresses take a faster path with the same outcome.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} is required", field=field)
    value = value.strip()
    if len(value) > MAX_EMAIL_LENGTH:
        raise InvalidInput(f"{field} is longer than {MAX_EMAIL_LENGTH} characters", field=field)
    try:
        return _normalize(value)
    except EmailNotValidError as error:
        raise InvalidInput(f"{field} {value!r} is not a valid email address: {error}", field=field) from None


def attributes(data: dict[str, Any], name: str = "attributes") -> dict[str, Any]:
    value = data.get(name, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} must be a JSON object", field=name)
    if len(json.dumps(value)) > 64 * 1024:
        raise InvalidInput(f"{name} is larger than 64 KiB", field=name)
    return value


def positive_id(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidInput(f"{field} must be a positive integer", field=field)
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a positive integer, not {value!r}", field=field) from None
    if number <= 0 or number > 2**63 - 1:
        raise InvalidInput(f"{field} must be a positive integer, not {value!r}", field=field)
    return number


def id_list(data: dict[str, Any], name: str, max_items: int = 10_000) -> list[int]:
    value = data.get(name)
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{name} must be a non-empty list of ids", field=name)
    if len(value) > max_items:
        raise InvalidInput(f"{name} contains {len(value)} ids; send at most {max_items} per request", field=name)
    return sorted({positive_id(item, name) for item in value})


def page(limit: str | None, after: str | None) -> tuple[int, int]:
    """Read `?limit=&after=`: a page size from 1 to MAX_PAGE_SIZE and the id to continue after."""
    if limit in (None, ""):
        size = DEFAULT_PAGE_SIZE
    else:
        try:
            size = int(limit)
        except ValueError:
            raise InvalidInput(f"limit must be an integer, not {limit!r}", field="limit") from None
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
    cursor = 0 if after in (None, "") else positive_id(after, "after")
    return size, cursor
