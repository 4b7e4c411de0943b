"""Settings of the email_client service, read from `config/email_client.json`.

Every key can be overridden by the environment variable `EMAIL_CLIENT_<KEY>`,
except `redis_url`, which is read from `REDIS_URL`.
"""

import os
import socket
from typing import Mapping

from common.config import Config, ConfigError, Setting, load

SERVICE = "email_client"

SETTINGS: tuple[Setting, ...] = (
    Setting("host", str, "address the HTTP server listens on"),
    Setting("port", int, "TCP port the HTTP server listens on; 0 picks a free port"),
    Setting("redis_url", str, "URL of the Redis server that holds settings and queues", env="REDIS_URL", secret=True),
    Setting("redis_prefix", str, "prefix of every Redis key this service writes"),
    Setting("web_url", str, "base URL of the web service that receives job results"),
    Setting("gateway_url", str, "base URL of the email gateway API"),
    Setting("concurrency", int, "maximum number of sends in flight per process"),
    Setting(
        "rate_limit",
        int,
        "maximum number of gateway attempts per second, shared by all email_client processes on one Redis; "
        "0 means unlimited. Every process should have the same value",
    ),
    Setting("max_attempts", int, "maximum number of gateway attempts per job, the first included"),
    Setting("retry_base_delay", float, "delay before the first retry, in seconds; doubled for each later retry"),
    Setting("retry_max_delay", float, "maximum delay between two attempts, in seconds"),
    Setting("gateway_timeout", float, "time limit of one gateway request, in seconds"),
    Setting(
        "pause_after_refusals",
        int,
        "number of credential refusals (401, 403) in a row, counted across all processes, "
        "after which the campaign of the refused job is paused",
    ),
    Setting(
        "claim_idle_seconds",
        float,
        "seconds a job or result must have gone untouched before another process takes it over "
        "from a process that stopped",
    ),
    Setting("report_batch_size", int, "maximum number of job results posted to web in one request"),
    Setting("consumer_name", str, "name of this process in the Redis consumer groups; empty means hostname-pid"),
    Setting("log_level", str, "minimum level of logged messages: DEBUG, INFO, WARNING or ERROR"),
    Setting(
        "service_secret",
        str,
        "key shared with web that signs the requests between the two services, at least 32 characters; "
        "set this or service_secret_file",
        secret=True,
    ),
    Setting("service_secret_file", str, "path of a file holding the service secret, in place of service_secret"),
    Setting(
        "credentials_key",
        str,
        "key that encrypts the gateway credentials kept in Redis: 32 random bytes in URL-safe base64; "
        "set this or credentials_key_file",
        secret=True,
    ),
    Setting("credentials_key_file", str, "path of a file holding the credentials key, in place of credentials_key"),
)

_POSITIVE = ("concurrency", "max_attempts", "report_batch_size", "pause_after_refusals")
_NOT_NEGATIVE = ("retry_base_delay", "retry_max_delay", "rate_limit")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Load the settings and fill in `consumer_name` when it is empty.

    Raises ConfigError when a value is missing, of the wrong type or out of range.
    """
    config = load(SERVICE, SETTINGS, environ)
    for name in _POSITIVE:
        if config[name] < 1:
            raise ConfigError(f"{name} must be at least 1, got {config[name]}")
    for name in _NOT_NEGATIVE:
        if config[name] < 0:
            raise ConfigError(f"{name} must not be negative, got {config[name]}")
    if config.gateway_timeout <= 0:
        raise ConfigError(f"gateway_timeout must be more than 0 seconds, got {config.gateway_timeout}")
    if config.claim_idle_seconds <= 0:
        raise ConfigError(f"claim_idle_seconds must be more than 0 seconds, got {config.claim_idle_seconds}")
    if config.log_level.upper() not in _LOG_LEVELS:
        raise ConfigError(f"log_level must be one of {', '.join(_LOG_LEVELS)}, got {config.log_level!r}")
    if not config.consumer_name:
        values = dict(config)
        values["consumer_name"] = f"{socket.gethostname()}-{os.getpid()}"
        config = Config(SERVICE, SETTINGS, values)
    return config
