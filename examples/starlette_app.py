"""Receive SRS's webhooks in a Starlette (or FastAPI) service.

No aiohttp server here: the route hands the body to
``receiver.process(body, headers, peer=..., token=...)``, which runs the same
guard -> decode -> tracker path as the aiohttp handler and returns the status
and JSON body to answer. In FastAPI, the same two routes work unchanged
(``app.add_route`` or ``@app.post`` with a ``Request`` parameter).

Served by uvicorn on 127.0.0.1, on a port the OS picks; stops by itself once
the order is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket

import uvicorn
from _common import example_order, sips_settings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sips_async import OrderStatus, SipsClient, WebhookConfig, WebhookReceiver

SECRET = secrets.token_urlsafe(24)
receiver = WebhookReceiver(WebhookConfig(path="/srs/webhook", secret=SECRET))


async def srs_webhook(request: Request) -> Response:
    """POST /srs/webhook[/{token}]: one update from SRS."""
    cap = receiver.config.max_body_size
    body = b""
    async for chunk in request.stream():  # stop reading once over the cap
        body += chunk
        if len(body) > cap:
            break
    answer = await receiver.process(
        body,
        request.headers,
        peer=request.client.host if request.client else None,
        token=request.path_params.get("token"),
    )
    return Response(answer.body, answer.status, media_type="application/json")


app = Starlette(
    routes=[
        Route("/srs/webhook", srs_webhook, methods=["POST"]),
        Route("/srs/webhook/{token}", srs_webhook, methods=["POST"]),
    ]
)


async def main() -> None:
    # Bind first, so the URL is known before the server runs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    host, port = sock.getsockname()[:2]
    # No access log: the path carries the secret.
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with contextlib.AsyncExitStack() as stack:
            sips = await sips_settings(stack)
            client = await stack.enter_async_context(
                SipsClient(
                    client_id=sips.client_id,
                    client_secret=sips.client_secret,
                    base_url=sips.base_url,
                    webhook=receiver,  # served by Starlette, not by the SDK
                )
            )
            if sips.sandbox is not None:
                sips.sandbox.webhook_url = f"http://{host}:{port}/srs/webhook/{SECRET}"
            pending = await client.orders.enqueue(example_order("EXAMPLE-ASGI-1"))
            done = await pending.wait_for(OrderStatus.DELIVERED, timeout=30)
            print("delivered via Starlette:", done.transaction_id)
    finally:
        server.should_exit = True
        await serving
        await receiver.aclose()
        sock.close()


if __name__ == "__main__":
    asyncio.run(main())
