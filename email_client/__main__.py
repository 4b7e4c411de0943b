"""Run email_client, or re-encrypt the stored gateway credentials with a new key.

    python -m email_client                                          serve until SIGTERM or SIGINT
    python -m email_client rotate-credentials-key --new-key-file PATH
"""

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

import redis.asyncio as redis
from redis.exceptions import RedisError

from common.config import Config, ConfigError
from email_client.config import load_config
from email_client.credentials import CredentialsCipher, CredentialsUnreadable, load_key, parse_key
from email_client.keys import Keys
from email_client.service import Service
from email_client.settings_store import SettingsStore

log = logging.getLogger("email_client")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


async def serve(config: Config) -> int:
    """Run the service until SIGTERM or SIGINT; return the exit status."""
    try:
        service = Service(config)
    except ConfigError as error:
        print(f"email_client: {error}", file=sys.stderr)
        return 2
    try:
        await service.start()
    except (RedisError, OSError) as error:
        log.error("email_client could not start: %s", error)
        await service.stop(grace=0)
        return 1
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop_requested.set)
    await stop_requested.wait()
    log.info("stopping on signal")
    await service.stop()
    return 0


async def rotate_credentials_key(config: Config, new_key_file: Path) -> int:
    """Re-encrypt the stored credentials with the key in `new_key_file`; return the exit status.

    The current key comes from the usual settings. Nothing changes when
    either key is invalid or the current key cannot decrypt the credentials.
    """
    try:
        old_cipher = CredentialsCipher(load_key(config))
        new_text = new_key_file.read_text(encoding="utf-8")
        new_cipher = CredentialsCipher(parse_key(new_text, f"the new key file {new_key_file}"))
    except ConfigError as error:
        print(f"email_client: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"email_client: cannot read the new key file {new_key_file}: {error.strerror}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"email_client: the new key file {new_key_file} is not UTF-8 text", file=sys.stderr)
        return 2

    client = redis.Redis.from_url(config.redis_url, decode_responses=True)
    try:
        store = SettingsStore(client, Keys(config.redis_prefix), old_cipher)
        await store.encrypt_plaintext_credentials()
        rotated = await store.rotate_key(new_cipher)
    except CredentialsUnreadable as error:
        print(
            f"email_client: the current credentials key cannot decrypt the stored gateway credentials ({error}); "
            "nothing was changed. Set EMAIL_CLIENT_CREDENTIALS_KEY_FILE to the key they were encrypted with",
            file=sys.stderr,
        )
        return 1
    except RedisError as error:
        print(f"email_client: Redis failed: {error}; nothing was changed", file=sys.stderr)
        return 1
    finally:
        await client.aclose()

    if rotated:
        print(f"Re-encrypted the gateway credentials with the key in {new_key_file}.")
    else:
        print("No gateway credentials are stored; there was nothing to re-encrypt.")
    print(
        f"Now start every email_client process with EMAIL_CLIENT_CREDENTIALS_KEY_FILE={new_key_file} "
        "(or put the new key in the current key file) and restart it."
    )
    return 0


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m email_client",
        description="Run email_client, or re-encrypt the stored gateway credentials with a new key. Settings come "
                    "from config/email_client.json and EMAIL_CLIENT_* environment variables (REDIS_URL for Redis).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    rotate = commands.add_parser(
        "rotate-credentials-key",
        help="re-encrypt the stored gateway credentials with a new key, in one atomic Redis step",
        description="Decrypt the stored gateway credentials with the current key (EMAIL_CLIENT_CREDENTIALS_KEY or "
                    "EMAIL_CLIENT_CREDENTIALS_KEY_FILE) and store them encrypted with the new one.",
    )
    rotate.add_argument("--new-key-file", type=Path, required=True,
                        help="file holding the new key: 32 random bytes in URL-safe base64")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        config = load_config()
    except ConfigError as error:
        print(f"email_client: {error}", file=sys.stderr)
        return 2
    if arguments.command == "rotate-credentials-key":
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format=LOG_FORMAT)
        return asyncio.run(rotate_credentials_key(config, arguments.new_key_file))
    logging.basicConfig(stream=sys.stderr, level=config.log_level.upper(), format=LOG_FORMAT)
    return asyncio.run(serve(config))


if __name__ == "__main__":
    sys.exit(main())
