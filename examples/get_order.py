"""Fetch a sales order by id (``GET /orders/{id}``).

Places one order on the sandbox first so there is something to fetch; with
SIPS_* variables set, pass an order id as the first argument instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from _common import example_order, sips_settings

from sips_async import SipsClient, SipsNotFoundError


async def main(order_id: str | None = None) -> None:
    async with contextlib.AsyncExitStack() as stack:
        sips = await sips_settings(stack)
        client = await stack.enter_async_context(
            SipsClient(
                client_id=sips.client_id,
                client_secret=sips.client_secret,
                base_url=sips.base_url,
            )
        )
        if order_id is None:
            placed = await client.orders.submit(example_order("EXAMPLE-GET-1"))
            assert placed.order_id is not None
            order_id = placed.order_id
        order = await client.orders.get(order_id)
        print(f"order {order.id} ({order.order_no}) status: {order.status}")
        for product in order.products:
            print(f"  {product.quantity} x {product.name}")
        try:
            await client.orders.get(999999999)
        except SipsNotFoundError as exc:
            print("unknown id:", exc.code, "-", exc.description)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
