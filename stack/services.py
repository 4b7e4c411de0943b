"""The command line and environment of each service that `python -m stack` starts.

`service_commands` is the one description of how the services are started.
The compose files start them with the same `python -m <service>` commands and
set the same environment variables, and tests/test_compose_files.py checks
that they agree.
"""

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit, urlunsplit

from common.config import CONFIG_DIR
from stack.secrets import secret_environment

MODES = ("mock", "test")

LOCAL_HOST = "127.0.0.1"


@dataclass(frozen=True)
class Ports:
    """TCP ports the services listen on."""

    web: int
    email_client: int
    mock_gateway: int


@dataclass(frozen=True)
class ServiceCommand:
    """How to start one service as a child process.

    `env` contains only the variables that the stack sets. The child inherits
    the rest of the environment.
    """

    name: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    port: int

    @property
    def health_url(self) -> str:
        return f"http://{LOCAL_HOST}:{self.port}/healthz"


def service_commands(mode: str, ports: Ports, database_url: str, redis_url: str,
                     secret_files: Mapping[str, Path]) -> list[ServiceCommand]:
    """Return the services to start in `mode`, in start order.

    `secret_files` maps the names of `stack.secrets.SECRETS` to their files.
    In `mock` mode email_client sends to the mock gateway started alongside.
    In `test` mode no mock gateway runs, and email_client keeps the gateway URL
    of `config/email_client.json` or `EMAIL_CLIENT_GATEWAY_URL`.
    Every service listens on 127.0.0.1 only. Raises ValueError for an unknown mode.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")

    web_url = f"http://{LOCAL_HOST}:{ports.web}"
    email_client_url = f"http://{LOCAL_HOST}:{ports.email_client}"
    gateway_url = f"http://{LOCAL_HOST}:{ports.mock_gateway}"

    email_client_env = {
        "REDIS_URL": redis_url,
        "EMAIL_CLIENT_WEB_URL": web_url,
        **secret_environment("email_client", secret_files),
    }
    if mode == "mock":
        email_client_env["EMAIL_CLIENT_GATEWAY_URL"] = gateway_url

    specs = []
    if mode == "mock":
        specs.append(_command("mock_gateway", ports.mock_gateway, {}))
    specs.append(_command("email_client", ports.email_client, email_client_env))
    specs.append(
        _command(
            "web",
            ports.web,
            {
                "DATABASE_URL": database_url,
                "WEB_EMAIL_CLIENT_URL": email_client_url,
                # Unsubscribe links point at this machine unless WEB_PUBLIC_URL is set.
                "WEB_PUBLIC_URL": os.environ.get("WEB_PUBLIC_URL") or f"http://{LOCAL_HOST}:{ports.web}",
                **secret_environment("web", secret_files),
            },
        )
    )
    return specs


def _command(name: str, port: int, env: dict[str, str]) -> ServiceCommand:
    prefix = name.upper()
    env = {
        f"{prefix}_HOST": LOCAL_HOST,
        f"{prefix}_PORT": str(port),
        **env,
    }
    return ServiceCommand(name=name, command=(sys.executable, "-m", name), env=env, port=port)


def configured_value(service: str, key: str, environ: Mapping[str, str] | None = None) -> str:
    """Return a setting of `service` as the service reads it.

    The value comes from the environment variable `<SERVICE>_<KEY>`, else from
    `config/<service>.json`. Raises KeyError when neither has it.
    """
    environ = os.environ if environ is None else environ
    env_name = f"{service}_{key}".upper()
    if env_name in environ:
        return environ[env_name]
    with open(CONFIG_DIR / f"{service}.json", encoding="utf-8") as file:
        return str(json.load(file)[key])


def without_password(url: str) -> str:
    """Return `url` with the password of its user info, if any, replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
