"""A minimal fake SIPS server and posting helpers for the webhook tests.

:class:`FakeSips` answers ``POST /authentication/token`` and
``POST /orders/v2/submit/async`` ("Order Queued") on 127.0.0.1, port 0. A test
can hold the enqueue answer (:meth:`FakeSips.hold`) until it has posted a
webhook, and learn what arrived through :meth:`FakeSips.next_enqueued`.
Nothing here sleeps: every step is signalled with an event or a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
from aiohttp import web

from sips_async.webhooks import SECRET_HEADER

__all__ = ["TOKEN", "Enqueued", "FakeSips", "Reply", "post", "raw_http"]

TOKEN: Final = "fake-access-token"
_JSON: Final = "application/json"


@dataclass(frozen=True, slots=True)
class Enqueued:
    """One order the fake received on its enqueue endpoint."""

    transaction_id: str
    order_id: str
    queue_id: str
    body: dict[str, Any]


class FakeSips:
    """A fake SIPS host: token and asynchronous submit, nothing else."""

    def __init__(self) -> None:
        #: Set: enqueue answers go out at once. Cleared by :meth:`hold`.
        self.release = asyncio.Event()
        self.release.set()
        self.enqueued: list[Enqueued] = []
        self.tokens_issued = 0
        self._arrivals: asyncio.Queue[Enqueued] = asyncio.Queue()
        self._ids = itertools.count(874)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The base URL to give ``SipsClient(base_url=...)``."""
        assert self._url is not None, "FakeSips is not started"
        return self._url

    def hold(self) -> None:
        """Keep every enqueue answer back until :attr:`release` is set."""
        self.release.clear()

    async def next_enqueued(self) -> Enqueued:
        """The next order that reached the enqueue endpoint (its answer may be held)."""
        return await self._arrivals.get()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/authentication/token", self._token)
        app.router.add_post("/orders/v2/submit/async", self._enqueue)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"
        return self._url

    async def aclose(self) -> None:
        self.release.set()  # never leave a held handler behind
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "client_credentials" or not form.get("client_id"):
            return web.json_response({"error": "invalid_request"}, status=400)
        self.tokens_issued += 1
        return web.json_response(
            {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600}
        )

    async def _enqueue(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        body = await request.json()
        n = next(self._ids)
        order = Enqueued(
            transaction_id=str(body["transactionID"]),
            order_id=str(n),
            queue_id=f"Q-{n}",
            body=body,
        )
        self.enqueued.append(order)
        self._arrivals.put_nowait(order)
        await self.release.wait()
        return web.json_response(
            {
                "message": "Order Queued",
                "transactionID": order.transaction_id,
                "orderID": order.order_id,
                "queueID": order.queue_id,
            }
        )


@dataclass(frozen=True, slots=True)
class Reply:
    """A webhook answer: status and decoded JSON body."""

    status: int
    body: dict[str, Any]


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    secret: str | None = None,
    headers: Mapping[str, str] | None = None,
    content_type: str = _JSON,
) -> Reply:
    """POST ``body`` to ``url``; ``secret`` goes in the secret header."""
    sent: dict[str, str] = {"Content-Type": content_type}
    if secret is not None:
        sent[SECRET_HEADER] = secret
    sent.update(headers or {})
    async with session.post(url, data=body, headers=sent) as resp:
        data = await resp.read()
        try:
            decoded = json.loads(data) if data else {}
        except ValueError:
            decoded = {"_text": data.decode("utf-8", "replace")}
        return Reply(resp.status, decoded if isinstance(decoded, dict) else {})


async def raw_http(host: str, port: int, request: bytes) -> tuple[int, bytes, bytes]:
    """Write ``request`` on a fresh socket; return status, header block and body.

    The body is read up to Content-Length (or EOF), so a server that answers
    before reading everything it was promised is observable.
    """
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        body = (
            await reader.readexactly(length)
            if length is not None
            else await reader.read()
        )
        return status, head, body
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
