"""Embed the webhook receiver in an aiohttp service you already run.

Your application keeps its own routes and server; the receiver is mounted
as a sub-application, and the client resolves orders from the posts that land
on your server. Stops by itself once the order is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from _common import example_order, sips_settings
from aiohttp import web

from sips_async import OrderStatus, SipsClient, WebhookConfig, WebhookReceiver


async def health(request: web.Request) -> web.Response:
    """One of 'your' existing routes."""
    return web.json_response({"ok": True})


async def main() -> None:
    secret = secrets.token_urlsafe(24)
    receiver = WebhookReceiver(WebhookConfig(path="/srs", secret=secret))
    app = web.Application()
    app.router.add_get("/health", health)
    app.add_subapp("/hooks", receiver.app)  # POST /hooks/srs/<secret>

    runner = web.AppRunner(app, access_log=None)  # the path carries the secret
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        my_url = f"http://{host}:{port}/hooks/srs/{secret}"

        async with contextlib.AsyncExitStack() as stack:
            sips = await sips_settings(stack)
            client = await stack.enter_async_context(
                SipsClient(
                    client_id=sips.client_id,
                    client_secret=sips.client_secret,
                    base_url=sips.base_url,
                    webhook=receiver,  # use the receiver your app serves
                )
            )
            if sips.sandbox is not None:
                sips.sandbox.webhook_url = my_url
            pending = await client.orders.enqueue(example_order("EXAMPLE-EMBED-1"))
            done = await pending.wait_for(OrderStatus.DELIVERED, timeout=30)
            print("delivered via my own server:", done.transaction_id)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
