"""What the mock gateway does with a valid message: the response to POST /v1/messages."""

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from mock_gateway.outcomes import ACCEPTED, REJECTION_ERRORS, OutcomeDraw
from mock_gateway.store import Message, MessageStore, StoredMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendResult:
    """Status code and JSON body of the response to one send."""

    status: int
    body: dict


class Gateway:
    """Accepts or rejects messages by drawn outcome, at most once per idempotency key until the store is reset."""

    def __init__(self, store: MessageStore, draw: OutcomeDraw, latency_ms: int):
        self.store = store
        self._draw = draw
        self._latency = latency_ms / 1000
        # Sends in progress, by idempotency key: a second send with the same
        # key waits for the first, so that the two cannot both be accepted.
        self._in_flight: dict[str, asyncio.Future] = {}

    async def send(self, idempotency_key: str, message: Message) -> SendResult:
        """Decide the response to one send, after the configured latency.

        Returns 409 with the original message id when `idempotency_key` was
        accepted before; otherwise 202 with a new message id, or the drawn
        rejection status with an error.
        """
        while (earlier := self._in_flight.get(idempotency_key)) is not None:
            await earlier

        original_id = self.store.message_id_for(idempotency_key)
        if original_id is not None:
            self.store.count_duplicate()
            log.debug("duplicate idempotency key %s of message %s", idempotency_key, original_id)
            return SendResult(409, {"error": "duplicate idempotency key", "message_id": original_id})

        done = asyncio.get_running_loop().create_future()
        self._in_flight[idempotency_key] = done
        try:
            return await self._respond(idempotency_key, message)
        finally:
            del self._in_flight[idempotency_key]
            done.set_result(None)

    async def _respond(self, idempotency_key: str, message: Message) -> SendResult:
        if self._latency > 0:
            await asyncio.sleep(self._latency)

        status = self._draw.draw()
        if status != ACCEPTED:
            self.store.count_rejection(status)
            log.debug("rejected message with idempotency key %s: %d", idempotency_key, status)
            return SendResult(status, {"error": REJECTION_ERRORS[status]})

        message_id = "msg_" + secrets.token_hex(12)
        accepted_at = datetime.now(timezone.utc)
        self.store.add(StoredMessage(message_id, idempotency_key, message, accepted_at))
        log.debug("accepted message %s with idempotency key %s", message_id, idempotency_key)
        return SendResult(ACCEPTED, {"message_id": message_id})
