"""The raw ceiling: a plain asyncio HTTP client posting emails straight to the mock gateway.

It does only what no pipeline can avoid, one POST per email with the same
concurrency as email_client, so end-to-end speed divided by this speed shows
what the whole pipeline costs.
"""

import asyncio
import time

import aiohttp


async def post_directly(gateway_url: str, count: int, concurrency: int) -> float:
    """Post `count` messages with `concurrency` in flight; return messages per second."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(count):
        queue.put_nowait(number)
    auth = aiohttp.BasicAuth("bench", "bench")
    connector = aiohttp.TCPConnector(limit=concurrency)

    async with aiohttp.ClientSession(connector=connector, auth=auth) as session:
        async def sender() -> None:
            while not queue.empty():
                number = queue.get_nowait()
                message = {
                    "from": {"name": "Bench", "email": "bench@example.com"},
                    "to": {"name": f"Person {number}", "email": f"person{number}@example.com"},
                    "subject": f"Hello First{number}",
                    "text": f"Hello First{number}",
                    "html": f"<h1>Hello First{number}</h1>",
                    "headers": {},
                }
                headers = {"Idempotency-Key": f"ceiling-{number}"}
                async with session.post(f"{gateway_url}/v1/messages", json=message, headers=headers) as response:
                    if response.status != 202:
                        raise RuntimeError(f"the mock gateway returned status {response.status}; expected 202")
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)
