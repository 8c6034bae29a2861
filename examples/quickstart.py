"""Quickstart: enqueue an order in SRS's queue and await its delivery.

Steps: open a client with an embedded webhook receiver, enqueue one order,
await the acknowledgement, then follow every update until it is delivered.
Runs against the bundled sandbox unless SIPS_* variables are set (see
``_common.py``); against SRS, the receiver must be reachable at
``client.webhook_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from _common import example_order, sips_settings

from sips_async import OrderStatus, SipsClient, WebhookConfig


async def main() -> None:
    async with contextlib.AsyncExitStack() as stack:
        sips = await sips_settings(stack)
        client = await stack.enter_async_context(
            SipsClient(
                client_id=sips.client_id,
                client_secret=sips.client_secret,
                base_url=sips.base_url,
                webhook=WebhookConfig(secret=secrets.token_urlsafe(24)),
            )
        )
        if sips.sandbox is not None:
            sips.sandbox.webhook_url = client.webhook_url  # SRS: register it once

        pending = await client.orders.enqueue(example_order())
        print("queued:", pending.result)
        ack = await pending.wait(timeout=30)  # raises OrderRejectedError
        print("acknowledged:", ack.event_type, ack.event_status)
        async for update in pending.updates():  # past updates first, then live
            print(f"  {update.event_type} {update.status}")
        assert pending.status == OrderStatus.DELIVERED
        print("delivered:", pending.transaction_id)


if __name__ == "__main__":
    asyncio.run(main())
