"""Synchronous submit: the order goes straight to SRS's ERP.

Shows the result on success, then what an invalid order and a business-rule
failure look like (typed errors, nothing to parse by hand).
"""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
from _common import example_order, sips_settings

from sips_async import (
    FieldsMissingError,
    OrderProcessingError,
    OrderRequest,
    SipsClient,
)


async def main() -> None:
    async with contextlib.AsyncExitStack() as stack:
        sips = await sips_settings(stack)
        client = await stack.enter_async_context(
            SipsClient(
                client_id=sips.client_id,
                client_secret=sips.client_secret,
                base_url=sips.base_url,
            )
        )
        result = await client.orders.submit(example_order("EXAMPLE-SYNC-1"))
        print(f"{result.message}: order {result.order_id} (queued={result.queued})")

        try:  # caught locally: nothing is sent
            await client.orders.submit(OrderRequest(customer_code="DEMO001"))
        except FieldsMissingError as exc:
            print("missing fields:", ", ".join(exc.fields))

        if sips.sandbox is not None:  # the sandbox knows BRRIV, not NOWHERE
            try:
                await client.orders.submit(
                    msgspec.structs.replace(
                        example_order("EXAMPLE-SYNC-2"), branch_code="NOWHERE"
                    )
                )
            except OrderProcessingError as exc:
                print("SRS refused it:", exc.code, "-", exc.description)


if __name__ == "__main__":
    asyncio.run(main())
