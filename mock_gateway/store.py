"""In-memory record of what the mock gateway accepted and rejected.

Nothing survives a restart. Accepted messages are kept up to a maximum, the
oldest dropped first. Every accepted idempotency key is kept until the process
stops or `reset` is called, so a duplicate is detected even after its message
has been dropped from the list.
"""

import itertools
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Address:
    email: str
    name: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "email": self.email}


@dataclass(frozen=True)
class Message:
    """One message as POST /v1/messages received it, after validation."""

    sender: Address
    recipient: Address
    subject: str
    text: str | None
    html: str | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredMessage:
    message_id: str
    idempotency_key: str
    message: Message
    accepted_at: datetime

    def summary(self) -> dict:
        """Return the fields listed by GET /messages."""
        return {
            "message_id": self.message_id,
            "idempotency_key": self.idempotency_key,
            "from": self.message.sender.to_json(),
            "to": self.message.recipient.to_json(),
            "subject": self.message.subject,
            "accepted_at": self.accepted_at.isoformat(),
        }

    def detail(self) -> dict:
        """Return the summary plus the bodies and headers, for GET /messages/{id}."""
        return {
            **self.summary(),
            "text": self.message.text,
            "html": self.message.html,
            "headers": dict(self.message.headers),
        }


class MessageStore:
    """Accepted messages, accepted idempotency keys and the response counts."""

    def __init__(self, max_messages: int):
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, got {max_messages}")
        self._max_messages = max_messages
        self.reset()

    def reset(self) -> None:
        """Forget every message, idempotency key and count."""
        self._messages: OrderedDict[str, StoredMessage] = OrderedDict()
        self._message_ids_by_key: dict[str, str] = {}
        self.accepted = 0
        self.duplicates = 0
        self.rejected_by_status: Counter[int] = Counter()

    def message_id_for(self, idempotency_key: str) -> str | None:
        """Return the id of the message accepted with this key, or None."""
        return self._message_ids_by_key.get(idempotency_key)

    def add(self, stored: StoredMessage) -> None:
        """Store an accepted message, dropping the oldest beyond the maximum."""
        self._messages[stored.message_id] = stored
        self._message_ids_by_key[stored.idempotency_key] = stored.message_id
        self.accepted += 1
        while len(self._messages) > self._max_messages:
            self._messages.popitem(last=False)

    def count_duplicate(self) -> None:
        self.duplicates += 1

    def count_rejection(self, status: int) -> None:
        self.rejected_by_status[status] += 1

    def get(self, message_id: str) -> StoredMessage | None:
        return self._messages.get(message_id)

    def latest(self, limit: int, offset: int = 0) -> list[StoredMessage]:
        """Return up to `limit` stored messages, newest first, skipping `offset`."""
        return list(itertools.islice(reversed(self._messages.values()), offset, offset + limit))

    def __len__(self) -> int:
        return len(self._messages)

    def stats(self) -> dict:
        """Return the counts served by GET /stats."""
        return {
            "accepted": self.accepted,
            "rejected": sum(self.rejected_by_status.values()),
            "duplicates": self.duplicates,
            "rejected_by_status": {str(status): count for status, count in sorted(self.rejected_by_status.items())},
        }
