"""A receiver process on a shared Redis store, for the multi-instance test.

    python -m tests._redis_receiver REDIS_URL

Starts a ``WebhookReceiver`` on 127.0.0.1 port 0 with ``store=REDIS_URL``
(the URL string, read by ``open_store`` as the CLI's ``--store`` is), prints
``URL <url>`` and serves until SIGTERM. The test also SIGKILLs one.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from sips_async import WebhookConfig
from sips_async.webhooks import WebhookReceiver

from .factories import HOOK_SECRET


async def main(store_url: str) -> None:
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET), store=store_url)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with receiver:
        print("URL", receiver.url, flush=True)  # noqa: T201
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
