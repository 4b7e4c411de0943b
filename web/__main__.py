"""`python -m web`: run the web service until SIGTERM or Ctrl-C, or manage users and API tokens.

    python -m web                                   serve the pages and the JSON API
    python -m web create-user EMAIL [--password-stdin]
    python -m web create-token NAME                 print a new API token once
"""

import argparse
import asyncio
import getpass
import logging
import signal
import sys

import psycopg2

from common.config import ConfigError
from web import accounts, migrations
from web.app import WebService
from web.config import load_config
from web.db import Database
from web.errors import DomainError, InvalidInput

log = logging.getLogger("web")


async def serve(config) -> None:
    service = WebService(config)
    await service.start()
    log.info("web listening on http://%s:%d", config.host, config.port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stopping.set)
    await stopping.wait()
    log.info("web stopping")
    await service.stop()


def read_password(from_stdin: bool) -> str:
    """Return the new user's password: the first line of stdin, or typed twice without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    try:
        password = getpass.getpass("Password: ")
        repeated = getpass.getpass("Password again: ")
    except EOFError:
        raise InvalidInput("no password was typed; use --password-stdin to pass it on stdin") from None
    if repeated != password:
        raise InvalidInput("the two passwords differ")
    return password


async def create_user(database_url: str, email: str, password: str) -> dict:
    db = await Database.connect(database_url, minsize=1, maxsize=1)
    try:
        return await accounts.create_user(db, email, password)
    finally:
        await db.close()


async def create_token(database_url: str, name: str) -> str:
    db = await Database.connect(database_url, minsize=1, maxsize=1)
    try:
        token, _ = await accounts.create_token(db, name, user_id=None)
        return token
    finally:
        await db.close()


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m web",
        description="Run the web service, or add a user or an API token. Settings come from config/web.json "
                    "and WEB_* environment variables (DATABASE_URL for the database).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    user_parser = commands.add_parser("create-user", help="add a user who can sign in")
    user_parser.add_argument("email", help="the user's email address, which they sign in with")
    user_parser.add_argument("--password-stdin", action="store_true",
                             help="read the password from the first line of stdin instead of asking for it")
    token_parser = commands.add_parser("create-token", help="create an API token and print it once")
    token_parser.add_argument("name", help="what the token is for, shown on the settings page")
    return parser.parse_args(argv)


def run_command(arguments: argparse.Namespace, config) -> int:
    """Run create-user or create-token against the configured database; return the exit status."""
    try:
        migrations.migrate(config.database_url)
    except psycopg2.OperationalError as error:
        print(f"web: cannot reach the database: {error}".strip(), file=sys.stderr)
        return 1
    try:
        if arguments.command == "create-user":
            password = read_password(arguments.password_stdin)
            user = asyncio.run(create_user(config.database_url, arguments.email, password))
            print(f"created user {user['email']}")
        else:
            token = asyncio.run(create_token(config.database_url, arguments.name))
            print(token)
            print("Store this API token now: it is not shown again.", file=sys.stderr)
    except DomainError as error:
        print(f"web: {error.message}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        config = load_config()
    except ConfigError as error:
        print(f"web: {error}", file=sys.stderr)
        return 2
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    if arguments.command is not None:
        logging.basicConfig(level=logging.WARNING, format=log_format)
        return run_command(arguments, config)
    logging.basicConfig(level=config.log_level.upper(), format=log_format)
    try:
        asyncio.run(serve(config))
    except ConfigError as error:
        print(f"web: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
