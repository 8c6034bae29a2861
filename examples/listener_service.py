"""A background listener service: receive SRS's updates, hand them to a worker.

The receiver runs in the background of an asyncio program; an async callback
puts every new update on a queue that a worker consumes (where you would
write to your database). Orders are placed by a client that does not wait on
them. Stops by itself once every order is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from _common import example_order, sips_settings

from sips_async import (
    OrderStatus,
    OrderUpdate,
    SipsClient,
    WebhookConfig,
    WebhookReceiver,
)

ORDERS = 3


async def worker(queue: asyncio.Queue[OrderUpdate], delivered: set[str]) -> None:
    """Consume updates; here you would store them."""
    while len(delivered) < ORDERS:
        update = await queue.get()
        print(f"  {update.po_number}: {update.event_type} {update.status}")
        if update.status == OrderStatus.DELIVERED and update.transaction_id:
            delivered.add(update.transaction_id)


async def main() -> None:
    queue: asyncio.Queue[OrderUpdate] = asyncio.Queue(maxsize=1000)
    receiver = WebhookReceiver(WebhookConfig(secret=secrets.token_urlsafe(24)))

    @receiver.on_update
    async def enqueue_update(update: OrderUpdate) -> None:
        await queue.put(update)

    delivered: set[str] = set()
    async with contextlib.AsyncExitStack() as stack:
        sips = await sips_settings(stack)
        await stack.enter_async_context(receiver)
        if sips.sandbox is not None:
            sips.sandbox.webhook_url = receiver.url
        client = await stack.enter_async_context(
            SipsClient(
                client_id=sips.client_id,
                client_secret=sips.client_secret,
                base_url=sips.base_url,
            )
        )
        consumer = asyncio.create_task(worker(queue, delivered))
        for number in range(1, ORDERS + 1):
            pending = await client.orders.enqueue(example_order(f"LISTEN-{number}"))
            print("queued", pending.transaction_id)
        await asyncio.wait_for(consumer, timeout=30)
    print(f"{len(delivered)} orders delivered")


if __name__ == "__main__":
    asyncio.run(main())
