"""Run email_client: `python -m email_client`, stopped by SIGTERM or SIGINT."""

import asyncio
import logging
import signal
import sys

from redis.exceptions import RedisError

from common.config import ConfigError
from email_client.config import load_config
from email_client.service import Service

log = logging.getLogger("email_client")


async def serve() -> None:
    try:
        config = load_config()
    except ConfigError as error:
        print(f"email_client: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(
        stream=sys.stderr,
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    service = Service(config)
    try:
        await service.start()
    except (RedisError, OSError) as error:
        log.error("email_client could not start: %s", error)
        await service.stop(grace=0)
        raise SystemExit(1) from None
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop_requested.set)
    await stop_requested.wait()
    log.info("stopping on signal")
    await service.stop()


if __name__ == "__main__":
    asyncio.run(serve())
