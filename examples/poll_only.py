"""Poll-only: follow a queued order without any webhook receiver.

For partners without a public URL: ``webhook=None`` plus a ``PollConfig``
makes ``wait()``, ``wait_for()`` and ``updates()`` ask SRS (``GET
/orders/{id}``) once an order has been quiet for ``after`` seconds. Then, as
after a restart, ``reconcile()`` asks once about everything still outstanding.
Runs against the bundled sandbox unless SIPS_* variables are set (see
``_common.py``).
"""

from __future__ import annotations

import asyncio
import contextlib

from _common import example_order, sips_settings

from sips_async import OrderStatus, PollConfig, SipsClient


async def main() -> None:
    async with contextlib.AsyncExitStack() as stack:
        sips = await sips_settings(stack)
        client = await stack.enter_async_context(
            SipsClient(
                client_id=sips.client_id,
                client_secret=sips.client_secret,
                base_url=sips.base_url,
                webhook=None,  # no receiver at all
                poll=PollConfig(after=0.2, every=0.2),  # SRS: minutes, not 0.2 s
            )
        )
        pending = await client.orders.enqueue(example_order())
        print("queued:", pending.transaction_id)
        ack = await pending.wait(timeout=30)
        print("acknowledged by a poll:", ack.status, f"(source={ack.source})")
        done = await pending.wait_for(OrderStatus.DELIVERED, timeout=60)
        print("delivered:", done.status, f"(source={done.source})")

        # Another order nobody waits on: reconcile() asks about it once.
        other = await client.orders.enqueue(example_order())
        if sips.sandbox is not None:
            await sips.sandbox.wait_idle()
        report = await client.orders.reconcile()
        for row in report.resolved:
            print("reconciled:", row.transaction_id == other.transaction_id, row.status)
        print(f"still outstanding: {len(report.pending) + len(report.not_found)}")


if __name__ == "__main__":
    asyncio.run(main())
