"""A receiver process on a SQLite store, for the crash tests (run as a module).

    python -m tests._crash_receiver DB ORDERS

Writes the outbox rows of ORDERS orders (``crash-0`` ...) unless the store
has them already (as ``enqueue`` does before sending), starts a
``WebhookReceiver`` on 127.0.0.1 port 0 over the store, prints ``URL <url>``,
then waits on every outstanding order and prints ``resolved <tx>`` when one
reaches Delivered. SIGTERM stops it cleanly; the tests also SIGKILL it.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from sips_async import OrderStatus, PendingOrder, SipsClient, WebhookConfig
from sips_async.stores import SqliteStore
from sips_async.webhooks import WebhookReceiver

from .factories import CLIENT_ID, CLIENT_SECRET, HOOK_SECRET


async def main(db: str, orders: int) -> None:
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET), store=SqliteStore(db))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with receiver:
        tracker = receiver.tracker
        for n in range(orders):
            if await tracker.store.get(f"crash-{n}") is None:
                await tracker.expect(f"crash-{n}", po_number=f"PO-{n}")
        async with SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url="http://127.0.0.1:9",  # never called
            webhook=receiver,
        ) as client:

            async def resolve(pending: PendingOrder) -> None:
                await pending.wait_for(OrderStatus.DELIVERED)
                print("resolved", pending.transaction_id, flush=True)  # noqa: T201

            waiters = [
                asyncio.create_task(resolve(p))
                async for p in client.orders.outstanding()
            ]
            print("URL", receiver.url, flush=True)  # noqa: T201
            await stop.wait()
            for task in waiters:
                task.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
