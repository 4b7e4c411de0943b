"""Simulated responses of the gateway: which status code a send receives.

The `outcomes` setting maps status codes, as strings, to relative weights:
`{"202": 0.7, "500": 0.3}` accepts about 70% of messages and responds to the
rest with 500. Weights need not sum to 1.
"""

import random
from typing import Any

from common.config import ConfigError

ACCEPTED = 202

#: Error text sent with each simulated rejection, worded as a real gateway would.
REJECTION_ERRORS = {
    400: "message rejected: the recipient's mail server refused it as invalid",
    401: "invalid credentials",
    403: "this account may not send from this address",
    429: "rate limit exceeded, retry later",
    500: "internal gateway error",
    502: "upstream mail server did not answer",
    503: "gateway temporarily unavailable, retry later",
}

KNOWN_CODES = (ACCEPTED, *REJECTION_ERRORS)


def parse_outcomes(raw: Any, source: str = "outcomes") -> dict[int, float]:
    """Return the weight of each status code in `raw`, keyed by int.

    Raises ConfigError, naming `source`, when a key is not one of
    KNOWN_CODES, a weight is not a non-negative number, or the weights sum
    to zero.
    """
    known = ", ".join(str(code) for code in KNOWN_CODES)
    if not isinstance(raw, dict):
        raise ConfigError(f'{source}: expected a JSON object such as {{"202": 0.9, "500": 0.1}}, got {raw!r}')
    weights: dict[int, float] = {}
    for key, weight in raw.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) in KNOWN_CODES):
            raise ConfigError(f"{source}: unknown status code {key!r}; use one of {known}")
        # bool is a subclass of int, but `true` as a weight is a mistake.
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ConfigError(f"{source}: weight of {key} must be a non-negative number, got {weight!r}")
        weights[int(key)] = float(weight)
    if sum(weights.values()) <= 0:
        raise ConfigError(f"{source}: the weights sum to 0; give at least one status code a positive weight")
    return weights


class OutcomeDraw:
    """Draws status codes by weight from a generator seeded with `seed`.

    With the same seed and the same order of requests, the draws repeat.
    A seed of None seeds from the operating system.
    """

    def __init__(self, weights: dict[int, float], seed: int | None):
        self._codes = list(weights)
        self._weights = list(weights.values())
        self._random = random.Random(seed)

    def draw(self) -> int:
        return self._random.choices(self._codes, self._weights)[0]
