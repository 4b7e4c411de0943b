"""Run the mock gateway: `python -m mock_gateway`.

Settings come from config/mock_gateway.json and MOCK_GATEWAY_* variables.
Exits with status 2 when a setting is invalid and 1 when the address cannot
be bound; stops cleanly on SIGTERM or SIGINT.
"""

import asyncio
import logging
import signal
import sys

from common.config import Config, ConfigError
from mock_gateway.app import make_app
from mock_gateway.config import load_config

log = logging.getLogger("mock_gateway")


async def serve(config: Config) -> None:
    """Serve until SIGTERM or SIGINT, then close the listening socket and open connections."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)

    server = make_app(config).listen(config.port, config.host)
    log.info(
        "mock gateway listening on http://%s:%d (outcomes %s, seed %s, latency %d ms)",
        config.host,
        config.port,
        config.outcomes,
        config.seed,
        config.latency_ms,
    )
    await stop.wait()

    log.info("stopping")
    server.stop()
    await server.close_all_connections()
    log.info("stopped")


def main() -> int:
    try:
        config = load_config()
    except ConfigError as error:
        print(f"mock_gateway: invalid configuration: {error}", file=sys.stderr)
        return 2

    logging.basicConfig(
        level=config.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(serve(config))
    except OSError as error:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
