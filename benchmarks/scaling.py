"""scaling: round trips with 1k, 10k and 100k orders in flight at once.

One :class:`~benchmarks._servers.SipsServer` process answers
``POST /orders/v2/submit/async`` with ``Order Queued`` and *holds* the ``OA``
webhook of each order (the ``hold`` command) until it is told to deliver them
all (``release``, 64 connections). Each trial runs in a fresh client
process (so its resident memory says what the orders cost):

1. **enqueue**: ``N`` orders are placed, 64 requests at a time, each leaving
   a task that waits for its order (``sdk``: ``await pending.wait()`` on
   ``client.orders.enqueue(order)``; ``bare``: the flow of
   :mod:`benchmarks.roundtrip` by hand, a ``dict`` of futures and an aiohttp
   receiver). When the last is placed, ``N`` orders are in flight; the
   process's resident-memory growth since before the first is divided by
   ``N``;
2. **deliver**: the server posts the ``N`` webhooks; the phase ends when the
   last waiting task has woken.

Reported per side and ``N``: orders/s of each phase and of the whole round
trip (``N`` over both phases), resident bytes per order in flight (the
waiting tasks included, on both sides) and client CPU per order. Orders are
built before timing. The two sides alternate; medians over the pairs.
"""

from __future__ import annotations

import asyncio
import os
import time
from functools import partial
from typing import Any, Final

import aiohttp
import msgspec

from sips_async import OrderRequest, SipsClient, WebhookConfig
from tests.factories import make_order

from ._harness import (
    Options,
    Worker,
    bare_body,
    interleave,
    median,
    server_loop,
    workers,
)
from ._report import Outcome, Table, Target, ratio, ratios, us
from ._servers import (
    CLIENT_ID,
    CLIENT_SECRET,
    HOOK_SECRET,
    BareEvent,
    bare_webhook_app,
    serve,
)
from .roundtrip import _register
from .submit import POOL, Answer

__all__ = ["ScaleBare", "ScaleSdk", "run"]

SIDES: Final = {
    "sdk": "benchmarks.scaling:ScaleSdk",
    "bare": "benchmarks.scaling:ScaleBare",
}
#: Enqueue requests in flight at once during phase 1.
CONCURRENCY: Final = 64
#: How long a waiting task waits for its webhook (phase 1 + phase 2).
WAIT: Final = 600.0
_PATH: Final = "/orders/v2/submit/async"
_answer: Final = msgspec.json.Decoder(Answer)
_PAGE: Final = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    """This process's resident bytes (``/proc/self/statm``)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


async def _pool(count: int, place: Any) -> None:
    """Run ``place(0..count-1)`` with :data:`CONCURRENCY` workers."""
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            await place(index)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


class _Side:
    """Worker role: ``enqueue`` (phase 1) then ``finish`` (after phase 2)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.waiting: list[asyncio.Task[None]] = []
        self.last_woken = 0.0
        self.cpu0 = 0.0

    async def start(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        return None

    async def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name == "enqueue":
            orders = [make_order() for _ in range(args["count"])]
            return await self.enqueue(args["url"], orders)
        if name == "finish":
            await asyncio.gather(*self.waiting)
            cpu = time.process_time() - self.cpu0
            self.waiting = []
            await self.stop()
            return {"last_woken": self.last_woken, "cpu": cpu}
        raise ValueError(f"unknown command {name!r}")

    def woken(self) -> None:
        self.last_woken = max(self.last_woken, time.monotonic())

    async def enqueue(self, url: str, orders: list[OrderRequest]) -> dict[str, Any]:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError


class ScaleSdk(_Side):
    """``client.orders.enqueue`` + ``pending.wait`` per order."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._client: SipsClient | None = None

    async def enqueue(self, url: str, orders: list[OrderRequest]) -> dict[str, Any]:
        client = self._client = SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=url,
            max_connections=POOL,
            webhook=WebhookConfig(host="127.0.0.1", port=0, secret=HOOK_SECRET),
        )
        await client.__aenter__()
        assert client.webhook_url is not None
        await _register(url, client.webhook_url)
        enqueue = client.orders.enqueue

        async def wait(pending: Any) -> None:
            await pending.wait(timeout=WAIT)
            self.woken()

        async def place(index: int) -> None:
            pending = await enqueue(orders[index])
            self.waiting.append(asyncio.ensure_future(wait(pending)))

        rss0 = _rss()
        self.cpu0 = time.process_time()
        t0 = time.monotonic()
        await _pool(len(orders), place)
        seconds = time.monotonic() - t0
        return {"seconds": seconds, "rss": _rss() - rss0}

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None


class ScaleBare(_Side):
    """The same on bare aiohttp: a session, a receiver, a dict of futures."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._runner: Any = None
        self._session: aiohttp.ClientSession | None = None

    async def enqueue(self, url: str, orders: list[OrderRequest]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[BareEvent]] = {}
        self._runner, port = await serve(bare_webhook_app(futures, HOOK_SECRET))
        session = self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=POOL)
        )
        async with session.post(
            url + "/authentication/token",
            data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        ) as resp:
            token = msgspec.json.decode(await resp.read())["access_token"]
        await _register(url, f"http://127.0.0.1:{port}/srs/webhook/{HOOK_SECRET}")
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        }
        enqueue_url = url + _PATH

        async def wait(future: asyncio.Future[BareEvent]) -> None:
            async with asyncio.timeout(WAIT):
                await future
            self.woken()

        async def place(index: int) -> None:
            order = orders[index]
            future: asyncio.Future[BareEvent] = loop.create_future()
            futures[order.transaction_id] = future
            async with session.post(
                enqueue_url, data=bare_body(order), headers=headers
            ) as r:
                data = await r.read()
                status = r.status
            if status != 200:
                raise RuntimeError(f"HTTP {status}")
            _answer.decode(data)
            self.waiting.append(asyncio.ensure_future(wait(future)))

        rss0 = _rss()
        self.cpu0 = time.process_time()
        t0 = time.monotonic()
        await _pool(len(orders), place)
        seconds = time.monotonic() - t0
        return {"seconds": seconds, "rss": _rss() - rss0}

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()


def _trial(server: Worker, side: str, url: str, count: int) -> dict[str, Any]:
    """One trial of ``side`` with ``count`` orders in flight, in a fresh process."""
    client = Worker(SIDES[side], loop="asyncio")
    try:
        client.ready()
        server.call("hold")
        placed = client.call("enqueue", url=url, count=count)
        released = server.call("release")
        done = client.call("finish")
    finally:
        client.stop()
    deliver = done["last_woken"] - released["started"]
    total = placed["seconds"] + deliver
    return {
        "enqueue_rate": count / placed["seconds"],
        "deliver_rate": count / deliver,
        "rate": count / total,
        "bytes_per_order": placed["rss"] / count,
        "cpu_per_op": done["cpu"] / count,
    }


def run(opts: Options) -> Outcome:
    """Both sides at each size, alternating, each trial in a fresh process."""
    # Pairs per size: a trial at 1k in flight takes well under a second (as
    # noisy as any short trial here), one at 100k about a minute.
    pairs = {1_000: 1, 5_000: 1} if opts.quick else {1_000: 7, 10_000: 4, 100_000: 2}
    table = Table(
        "scaling: orders in flight at once (medians over "
        + ", ".join(f"{n} pair(s) at {count:,}" for count, n in pairs.items())
        + "; ratio = SDK/bare)",
        [
            "in flight",
            "side",
            "enqueue orders/s",
            "webhook+wake orders/s",
            "round trip orders/s",
            "RSS bytes/order",
            "CPU µs/order",
            "SDK/bare orders/s",
            "SDK/bare bytes",
        ],
    )
    raw: dict[str, Any] = {}
    targets: list[Target] = []
    with workers([("benchmarks._servers:SipsServer", server_loop(), {})]) as [server]:
        url: str = server.info["url"]
        for count, rounds in pairs.items():
            print(f"  scaling in-flight={count}")
            trials = interleave(
                {side: partial(_trial, server, side, url, count) for side in SIDES},
                rounds=rounds,
                warmup=0,
            )
            failed = server.call("stats")["failed_deliveries"]
            if failed:
                raise RuntimeError(f"{failed} webhook deliveries failed")
            raw[str(count)] = trials
            rate = ratios(trials["sdk"], trials["bare"], "rate")
            size = ratios(trials["sdk"], trials["bare"], "bytes_per_order")
            for side in SIDES:
                rows = trials[side]

                def med(key: str, rows: list[dict[str, Any]] = rows) -> float:
                    return median([float(row[key]) for row in rows])

                sdk = side == "sdk"
                table.rows.append(
                    [
                        f"{count:,}",
                        side,
                        f"{med('enqueue_rate'):,.0f}",
                        f"{med('deliver_rate'):,.0f}",
                        f"{med('rate'):,.0f}",
                        f"{med('bytes_per_order'):,.0f}",
                        us(med("cpu_per_op")),
                        ratio(rate) if sdk else "",
                        ratio(size) if sdk else "",
                    ]
                )
            targets.append(
                Target(
                    f"{count:,} in flight orders/s vs bare", median(rate), 0.90, True
                )
            )
    return Outcome(
        name="scaling",
        title="round trips and memory at 1k, 10k and 100k orders in flight",
        method=__doc__ or "",
        tables=[table],
        targets=targets,
        data={"sizes": list(pairs), "pairs": pairs, "trials": raw},
    )
