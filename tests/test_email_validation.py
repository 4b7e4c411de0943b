"""Address checks: the fast path for plain addresses must agree with email-validator on every input."""

import random

import pytest
from email_validator import EmailNotValidError, validate_email

from web.errors import InvalidInput
from web.validation import email_address

PIECES = ["a", "Z", "0", "9", ".", "..", "-", "_", "+", "!", "#", "'", "`", "~", "|", "{", "}", "=", "?", "^",
          "@", "@@", " ", "\"", "(", ")", ",", ":", ";", "<", ">", "[", "]", "\\", "é", "ü", "山", "xn--", "--",
          "com", "Example", "ORG", "localhost", "test", "local", "arpa", "invalid", "x" * 63, "y" * 64, "1", "123"]


def reference(address: str) -> str | None:
    """email-validator's verdict on the address as web reads it: without surrounding blanks."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def ours(address: str) -> str | None:
    try:
        return email_address(address)
    except InvalidInput:
        return None


PLAUSIBLE_PIECES = ["a", "Z", "0", ".", "-", "_", "+", "'", "é", "news", "Info", "x" * 63]
TOP_LEVEL_DOMAINS = ["com", "ORG", "de", "test", "local", "123", "xn--p1ai", "co.uk"]


def random_address(generator: random.Random) -> str:
    """Half the time a plausible address with small faults, else a random jumble."""
    if generator.random() < 0.5:
        local = "".join(generator.choice(PLAUSIBLE_PIECES) for _ in range(generator.randint(1, 3)))
        domain = "".join(generator.choice(PLAUSIBLE_PIECES) for _ in range(generator.randint(1, 2)))
        return f"{local}@{domain}.{generator.choice(TOP_LEVEL_DOMAINS)}"
    local = "".join(generator.choice(PIECES) for _ in range(generator.randint(1, 4)))
    labels = ["".join(generator.choice(PIECES) for _ in range(generator.randint(1, 3)))
              for _ in range(generator.randint(1, 3))]
    return f"{local}@{'.'.join(labels)}"


def test_fast_path_agrees_with_email_validator():
    generator = random.Random(20261204)
    addresses = [random_address(generator) for _ in range(30_000)]
    disagreements = [(address, ours(address), reference(address))
                     for address in addresses if ours(address) != reference(address)]
    assert disagreements == []
    assert sum(1 for address in addresses if reference(address) is not None) > 3000


@pytest.mark.parametrize("address, expected", [
    ("Zoe@Example.COM", "Zoe@example.com"),
    ("Postmaster@Example.com", "postmaster@example.com"),
    ("first.last+tag@sub.example.org", "first.last+tag@sub.example.org"),
    ("山田@example.jp", "山田@example.jp"),
    ("a@bücher.de", "a@bücher.de"),
])
def test_normalized_addresses(address, expected):
    assert email_address(address) == expected


@pytest.mark.parametrize("address", [
    "no-at-sign", "a@b", "a..b@example.com", ".a@example.com", "a@-example.com", "a@example..com",
    "a@localhost", "a@example.test", "a b@example.com", "x" * 250 + "@example.com",
])
def test_invalid_addresses(address):
    with pytest.raises(InvalidInput):
        email_address(address)
