"""Loopback servers shared by the benchmarks (each runs in its own process).

* :class:`SipsServer`: a minimal SIPS on 127.0.0.1, port 0: the token
  endpoint, the synchronous submit (answers ``Order Submitted``) and the
  queued submit (answers ``Order Queued``, then POSTs an ``OA`` update to the
  webhook URL registered with ``POST /bench/callback``).
* :func:`bare_webhook_app`: the hand-written baseline receiver: one aiohttp
  handler that checks the secret path segment, decodes the body with msgspec
  and resolves a ``dict`` of futures.

Neither depends on ``sips_async``: both sides of a comparison talk to exactly
the same server code.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import time
from typing import Any, Final

import aiohttp
import msgspec
from aiohttp import web

from tests.factories import event_body

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "HOOK_SECRET",
    "TOKEN",
    "BareEvent",
    "SipsServer",
    "bare_webhook_app",
    "serve",
]

CLIENT_ID: Final = "bench-client"
CLIENT_SECRET: Final = "bench-client-secret-0123456789"
HOOK_SECRET: Final = "bench-hook-secret-0123456789"
TOKEN: Final = "bench-token-0123456789"

_JSON: Final = "application/json"
_TOKEN_BODY: Final = msgspec.json.encode(
    {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 86400}
)
_BEARER: Final = f"Bearer {TOKEN}"
_WHEN: Final = "2026-05-20T14:03:11"


class _Po(msgspec.Struct):
    poNumber: str | None = None


class _Order(msgspec.Struct):
    """The two fields of a submitted order the server needs."""

    transactionID: str = ""
    poDetails: _Po | None = None


class _Callback(msgspec.Struct):
    url: str


_order_decoder: Final = msgspec.json.Decoder(_Order)
_callback_decoder: Final = msgspec.json.Decoder(_Callback)
_encoder: Final = msgspec.json.Encoder()


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on 127.0.0.1 with a free port; return the runner and port."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    return runner, port


class SipsServer:
    """The fake SIPS: a worker role (see :mod:`benchmarks._harness`)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._callback: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._failed = 0
        # With "hold": webhooks wait here until "release" (benchmarks.scaling).
        self._held: list[tuple[str, bytes]] | None = None

    async def start(self) -> dict[str, Any]:
        app = web.Application()
        app.router.add_post("/authentication/token", self._token)
        app.router.add_post("/orders/v2/submit", self._submit)
        app.router.add_post("/orders/v2/submit/async", self._enqueue)
        app.router.add_post("/bench/callback", self._set_callback)
        self._runner, port = await serve(app)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        return {"url": f"http://127.0.0.1:{port}"}

    async def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name == "stats":
            failed, self._failed = self._failed, 0
            return {"failed_deliveries": failed}
        if name == "hold":
            self._held = []
            return {}
        if name == "release":
            return await self._release()
        raise ValueError(f"unknown command {name!r}")

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _token(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=_TOKEN_BODY, content_type=_JSON)

    async def _read_order(self, request: web.Request) -> _Order | web.Response:
        if request.headers.get("Authorization") != _BEARER:
            return web.Response(status=401, body=b'{"error":"Unauthorized"}')
        return _order_decoder.decode(await request.read())

    async def _submit(self, request: web.Request) -> web.Response:
        order = await self._read_order(request)
        if isinstance(order, web.Response):
            return order
        answer = {
            "message": "Order Submitted",
            "transactionID": order.transactionID,
            "orderID": "123",
            "queueID": None,
        }
        return web.Response(body=_encoder.encode(answer), content_type=_JSON)

    async def _enqueue(self, request: web.Request) -> web.Response:
        order = await self._read_order(request)
        if isinstance(order, web.Response):
            return order
        number = next(self._ids)
        queue_id = f"00000000-0000-4000-8000-{number:012d}"
        answer = {
            "message": "Order Queued",
            "transactionID": order.transactionID,
            "orderID": queue_id,
            "queueID": queue_id,
        }
        if self._callback is not None:
            body = event_body(
                transaction_id=order.transactionID,
                order_id=queue_id,
                event_id=str(number),
                when=_WHEN,
                po=(order.poDetails.poNumber if order.poDetails else None) or "",
            )
            if self._held is not None:
                self._held.append((self._callback, body))
            else:
                task = asyncio.create_task(self._deliver(self._callback, body))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return web.Response(body=_encoder.encode(answer), content_type=_JSON)

    async def _release(self) -> dict[str, Any]:
        """Deliver every held webhook, 64 at a time; stop holding.

        64: below a receiver's listen backlog (128), so a fresh receiver's
        accept burst never drops a SYN (a 1 s retransmit that would swamp
        the figures).
        """
        held, self._held = self._held or [], None
        pending = iter(held)

        async def sender() -> None:
            for url, body in pending:
                await self._deliver(url, body)

        started = time.monotonic()
        await asyncio.gather(*(sender() for _ in range(64)))
        return {"started": started, "delivered": len(held)}

    async def _deliver(self, url: str, body: bytes) -> None:
        assert self._session is not None
        try:
            async with self._session.post(
                url, data=body, headers={"Content-Type": _JSON}
            ) as resp:
                await resp.read()
                if resp.status != 200:
                    self._failed += 1
        except aiohttp.ClientError:
            self._failed += 1

    async def _set_callback(self, request: web.Request) -> web.Response:
        self._callback = _callback_decoder.decode(await request.read()).url
        return web.Response(body=b'{"ok":true}', content_type=_JSON)


class BareEvent(msgspec.Struct, frozen=True):
    """An SRS webhook body, as a hand-written receiver would declare it."""

    eventId: str | int | None = None
    eventType: str | None = None
    eventStatus: str | None = None
    eventDateTime: str | None = None
    subscriberReferenceNum: str | int | None = None
    subscriberReferenceNum2: str | int | None = None
    subscriberReferenceNum3: str | int | None = None


_OK: Final = b'{"ok":true}'


def bare_webhook_app(
    futures: dict[str, asyncio.Future[BareEvent]], secret: str
) -> web.Application:
    """The baseline receiver: secret check, msgspec decode, resolve a future."""
    decoder = msgspec.json.Decoder(BareEvent)
    expected = secret.encode()

    async def handle(request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.match_info["token"].encode(), expected):
            return web.Response(status=401)
        try:
            event = decoder.decode(await request.read())
        except msgspec.DecodeError:
            return web.Response(status=400)
        key = event.subscriberReferenceNum3
        future = futures.pop(str(key), None) if key is not None else None
        if future is not None and not future.done():
            future.set_result(event)
        return web.Response(body=_OK, content_type=_JSON)

    app = web.Application()
    app.router.add_post("/srs/webhook/{token}", handle)
    return app
