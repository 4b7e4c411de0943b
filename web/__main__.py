"""`python -m web`: run the web service until SIGTERM or Ctrl-C."""

import asyncio
import logging
import signal
import sys

from common.config import ConfigError
from web.app import WebService
from web.config import load_config

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


def main() -> int:
    try:
        config = load_config()
    except ConfigError as error:
        print(f"web: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
