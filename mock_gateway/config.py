"""Settings of the mock gateway, read from `config/mock_gateway.json`.

Each key can be overridden by the environment variable `MOCK_GATEWAY_<KEY>`,
such as `MOCK_GATEWAY_PORT=5099` or `MOCK_GATEWAY_OUTCOMES='{"202": 1}'`.
"""

from typing import Mapping

from common import config
from common.config import Config, ConfigError, Setting
from mock_gateway.outcomes import parse_outcomes

SERVICE = "mock_gateway"

SETTINGS: tuple[Setting, ...] = (
    Setting("host", str, "address to listen on (MOCK_GATEWAY_HOST)"),
    Setting("port", int, "TCP port to listen on (MOCK_GATEWAY_PORT)"),
    # common.config passes null through unchanged, so `int` reads both the
    # file's null and an integer from the environment.
    Setting(
        "seed",
        int,
        "seed of the random outcome draws, for repeatable runs; null seeds from the "
        "operating system (MOCK_GATEWAY_SEED)",
    ),
    Setting(
        "latency_ms",
        int,
        "delay before each response to POST /v1/messages, in milliseconds (MOCK_GATEWAY_LATENCY_MS)",
    ),
    Setting(
        "outcomes",
        dict,
        'relative weight of each response to POST /v1/messages, keyed by status code, such as '
        '{"202": 0.9, "500": 0.1}; codes: 202 (accept), 400, 401, 403, 429, 500, 502, 503 '
        "(MOCK_GATEWAY_OUTCOMES, as JSON)",
    ),
    Setting(
        "max_stored_messages",
        int,
        "maximum number of accepted messages kept for GET /messages; the oldest are dropped "
        "first (MOCK_GATEWAY_MAX_STORED_MESSAGES)",
    ),
    Setting("log_level", str, "logging level: DEBUG, INFO, WARNING or ERROR (MOCK_GATEWAY_LOG_LEVEL)"),
)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Load and check the mock gateway's settings.

    Raises ConfigError, naming the setting, when a value is missing, has the
    wrong type or is out of range.
    """
    loaded = config.load(SERVICE, SETTINGS, environ)
    _check(loaded)
    return loaded


def _check(loaded: Config) -> None:
    if not loaded.host:
        raise ConfigError("host: must not be empty; set it to an address such as 127.0.0.1")
    if loaded.port is None or not 1 <= loaded.port <= 65535:
        raise ConfigError(f"port: must be between 1 and 65535, got {loaded.port!r}")
    if loaded.latency_ms is None or loaded.latency_ms < 0:
        raise ConfigError(f"latency_ms: must be 0 or more milliseconds, got {loaded.latency_ms!r}")
    if loaded.max_stored_messages is None or loaded.max_stored_messages < 1:
        raise ConfigError(f"max_stored_messages: must be at least 1, got {loaded.max_stored_messages!r}")
    if loaded.log_level is None or loaded.log_level.upper() not in LOG_LEVELS:
        raise ConfigError(f"log_level: must be one of {', '.join(LOG_LEVELS)}, got {loaded.log_level!r}")
    parse_outcomes(loaded.outcomes, "outcomes (MOCK_GATEWAY_OUTCOMES)")
