"""roundtrip: enqueue, SRS answers, SRS POSTs the update back, the wait resolves.

One :class:`~benchmarks._servers.SipsServer` process answers
``POST /orders/v2/submit/async`` with ``Order Queued`` (``orderID`` =
``queueID``, as SRS does) and then POSTs an ``OA`` update for the order to
the webhook URL the client registered (``POST /bench/callback``, outside the
timed section). Two client processes take turns:

* ``sdk``: ``SipsClient(webhook=WebhookConfig(secret=..., port=0))``;
  ``pending = await client.orders.enqueue(order)`` then
  ``await pending.wait(timeout=30)``;
* ``bare``: the same flow by hand: an aiohttp ``ClientSession`` with the
  bearer header, an aiohttp web server with one handler
  (:func:`benchmarks._servers.bare_webhook_app`: secret check, msgspec decode)
  and a ``dict`` of futures, the future registered before the POST leaves and
  awaited under ``asyncio.timeout(30)``.

Concurrency 1 and 64 (orders in flight). Reported: completed orders/s,
p50/p99 from the start of the enqueue to the resolved wait, and the client
process's CPU per order (HTTP client and webhook receiver together).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, Final

import aiohttp
import msgspec

from sips_async import OrderRequest, SipsClient, WebhookConfig

from ._harness import (
    Options,
    OrderClient,
    Spec,
    available_loops,
    bare_body,
    interleave,
    median,
    run_load,
    server_loop,
    workers,
)
from ._report import Outcome, Table, Target, ms, ratio, ratios, summarize, us
from ._servers import (
    CLIENT_ID,
    CLIENT_SECRET,
    HOOK_SECRET,
    BareEvent,
    bare_webhook_app,
    serve,
)
from .submit import POOL, Answer

__all__ = ["BareRoundTrip", "SdkRoundTrip", "run"]

CONCURRENCY: Final = (1, 64)
WAIT: Final = 30.0
_PATH: Final = "/orders/v2/submit/async"
_answer: Final = msgspec.json.Decoder(Answer)


async def _register(url: str, webhook_url: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/bench/callback", json={"url": webhook_url}) as resp,
    ):
        resp.raise_for_status()


class SdkRoundTrip(OrderClient):
    """``enqueue`` + ``wait`` through ``SipsClient`` and its receiver."""

    async def run(
        self, url: str, orders: list[OrderRequest], ops: int, concurrency: int
    ) -> dict[str, Any]:
        async with SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=url,
            max_connections=POOL,
            webhook=WebhookConfig(host="127.0.0.1", port=0, secret=HOOK_SECRET),
        ) as client:
            assert client.webhook_url is not None
            await _register(url, client.webhook_url)
            enqueue = client.orders.enqueue

            async def op(index: int) -> None:
                pending = await enqueue(orders[index])
                await pending.wait(timeout=WAIT)

            trial = await run_load(op, ops=ops, concurrency=concurrency)
        return trial.as_dict()


class BareRoundTrip(OrderClient):
    """The same flow on bare aiohttp: session, web server, dict of futures."""

    async def run(
        self, url: str, orders: list[OrderRequest], ops: int, concurrency: int
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[BareEvent]] = {}
        runner, port = await serve(bare_webhook_app(futures, HOOK_SECRET))
        try:
            connector = aiohttp.TCPConnector(limit=POOL)
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.post(
                    url + "/authentication/token",
                    data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
                ) as resp:
                    token = msgspec.json.decode(await resp.read())["access_token"]
                await _register(
                    url, f"http://127.0.0.1:{port}/srs/webhook/{HOOK_SECRET}"
                )
                headers = {
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                }
                enqueue_url = url + _PATH

                async def op(index: int) -> None:
                    order = orders[index]
                    future: asyncio.Future[BareEvent] = loop.create_future()
                    futures[order.transaction_id] = future
                    body = bare_body(order)
                    async with session.post(
                        enqueue_url, data=body, headers=headers
                    ) as r:
                        data = await r.read()
                        status = r.status
                    if status != 200:
                        raise RuntimeError(f"HTTP {status}")
                    _answer.decode(data)
                    async with asyncio.timeout(WAIT):
                        await future

                trial = await run_load(op, ops=ops, concurrency=concurrency)
        finally:
            await runner.cleanup()
        return trial.as_dict()


SIDES: Final = {
    "sdk": "benchmarks.roundtrip:SdkRoundTrip",
    "bare": "benchmarks.roundtrip:BareRoundTrip",
}


def run(opts: Options) -> Outcome:
    """Run the round-trip comparison on every available loop."""
    sizes = {1: opts.size(1500, 150), 64: opts.size(6000, 500)}
    table = Table(
        "roundtrip: medians per side; ratio = SDK/bare (range over pairs)",
        [
            "loop",
            "conc.",
            "side",
            "orders/s",
            "p50 ms",
            "p99 ms",
            "CPU µs/order",
            "GC µs",
            "SDK/bare orders/s",
            "SDK/bare p50",
        ],
    )
    targets: list[Target] = []
    raw: dict[str, Any] = {}
    pairs: dict[str, Any] = {}
    with workers([("benchmarks._servers:SipsServer", server_loop(), {})]) as [server]:
        url: str = server.info["url"]
        for loop in available_loops():
            specs: list[Spec] = [(path, loop, {}) for path in SIDES.values()]
            with workers(specs) as procs:
                by_name = dict(zip(SIDES, procs, strict=True))
                for conc in CONCURRENCY:
                    print(
                        f"  roundtrip loop={loop} concurrency={conc} ops={sizes[conc]}"
                    )
                    trials = interleave(
                        {
                            name: partial(
                                proc.call,
                                "run",
                                url=url,
                                ops=sizes[conc],
                                concurrency=conc,
                            )
                            for name, proc in by_name.items()
                        },
                        rounds=opts.rounds,
                        warmup=opts.warmup,
                    )
                    failed = server.call("stats")["failed_deliveries"]
                    if failed:
                        raise RuntimeError(f"{failed} webhook deliveries failed")
                    raw[f"{loop}/{conc}"] = trials
                    rate = ratios(trials["sdk"], trials["bare"], "rate")
                    p50 = ratios(trials["sdk"], trials["bare"], "p50")
                    pairs[f"{loop}/{conc}"] = {"rate": rate, "p50": p50}
                    for name in SIDES:
                        s = summarize(trials[name])
                        sdk = name == "sdk"
                        table.rows.append(
                            [
                                loop,
                                str(conc),
                                name,
                                f"{s['rate']:,.0f}",
                                ms(s["p50"]),
                                ms(s["p99"]),
                                us(s["cpu_per_op"]),
                                us(s["gc_per_op"]),
                                ratio(rate) if sdk else "",
                                ratio(p50) if sdk else "",
                            ]
                        )
                    label = f"{loop} c={conc}"
                    targets += [
                        Target(f"{label} orders/s vs bare", median(rate), 0.90, True),
                        Target(
                            f"{label} p50 latency vs bare", median(p50), 1.10, False
                        ),
                    ]
    return Outcome(
        name="roundtrip",
        title="enqueue to resolved wait vs the same flow on bare aiohttp",
        method=__doc__ or "",
        tables=[table],
        targets=targets,
        data={"sizes": sizes, "pair_ratios": pairs, "trials": raw},
    )
