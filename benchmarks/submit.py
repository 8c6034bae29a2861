"""submit: ``client.orders.submit(order)`` against the same POST by hand.

One :class:`~benchmarks._servers.SipsServer` process answers
``POST /authentication/token`` and ``POST /orders/v2/submit`` (``{"message":
"Order Submitted", "transactionID": ..., "orderID": "123", "queueID": null}``).
Three client processes take turns against it:

* ``sdk``: ``SipsClient(base_url=server).orders.submit(order)`` (validation,
  token cache, retry policy, typed result);
* ``aiohttp``: a bare ``aiohttp.ClientSession`` POST with the bearer header,
  the same ``OrderRequest`` encoded with ``msgspec.json`` and the answer
  decoded into a msgspec Struct;
* ``httpx``: the same with ``httpx.AsyncClient`` (keep-alive pool as large
  as aiohttp's); it runs 1/8 of the operations per trial, being an order of
  magnitude slower under concurrency on this setup.

Each gets the token once before timing; orders are built before timing
(``tests.factories.make_order``, one fresh ``transactionID`` each).
Concurrency 1, 16 and 64; throughput, p50/p99 latency, client CPU per
request and the part of it spent in the garbage collector. A second table
splits the SDK's client CPU by layer (:class:`SubmitLayers`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Final

import aiohttp
import msgspec

from sips_async import OrderRequest, SipsClient
from tests.factories import make_order

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
from ._servers import CLIENT_ID, CLIENT_SECRET, TOKEN

__all__ = ["AiohttpSubmit", "HttpxSubmit", "SdkSubmit", "SubmitLayers", "run"]

CONCURRENCY: Final = (1, 16, 64)
#: httpx runs an order of magnitude slower under concurrency here: it gets
#: this fraction of the operations so that a run stays within minutes.
SLOW: Final = {"httpx": 8}
#: Concurrency of the layer-by-layer breakdown.
LAYERS_AT: Final = 16
POOL: Final = 100  # SipsClient's default max_connections
_PATH: Final = "/orders/v2/submit"
_JSON: Final = "application/json"
_TOKEN_FORM: Final = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "grant_type": "client_credentials",
    "scope": "ALL",
}


class Answer(msgspec.Struct, frozen=True):
    """The submit answer, as a hand-written client would declare it."""

    message: str = ""
    transactionID: str | None = None
    orderID: str | int | None = None
    queueID: str | int | None = None


class _Token(msgspec.Struct):
    access_token: str


_answer: Final = msgspec.json.Decoder(Answer)
_token: Final = msgspec.json.Decoder(_Token)


def _orders(count: int) -> list[OrderRequest]:
    return [make_order() for _ in range(count)]


class SdkSubmit(OrderClient):
    """``client.orders.submit(order)``."""

    async def run(
        self, url: str, orders: list[OrderRequest], ops: int, concurrency: int
    ) -> dict[str, Any]:
        async with SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=url,
            max_connections=POOL,
        ) as client:
            submit = client.orders.submit

            async def op(index: int) -> None:
                await submit(orders[index])

            trial = await run_load(op, ops=ops, concurrency=concurrency)
        return trial.as_dict()


class AiohttpSubmit(OrderClient):
    """Bare ``aiohttp.ClientSession`` + msgspec."""

    async def run(
        self, url: str, orders: list[OrderRequest], ops: int, concurrency: int
    ) -> dict[str, Any]:
        connector = aiohttp.TCPConnector(limit=POOL)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.post(
                url + "/authentication/token", data=_TOKEN_FORM
            ) as resp:
                token = _token.decode(await resp.read()).access_token
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
            }
            submit_url = url + _PATH

            async def op(index: int) -> None:
                body = bare_body(orders[index])
                async with session.post(submit_url, data=body, headers=headers) as r:
                    data = await r.read()
                    status = r.status
                if status != 200:
                    raise RuntimeError(f"HTTP {status}")
                _answer.decode(data)

            trial = await run_load(op, ops=ops, concurrency=concurrency)
        return trial.as_dict()


class HttpxSubmit(OrderClient):
    """``httpx.AsyncClient`` + msgspec."""

    async def run(
        self, url: str, orders: list[OrderRequest], ops: int, concurrency: int
    ) -> dict[str, Any]:
        import httpx

        limits = httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)
        async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:
            resp = await client.post(url + "/authentication/token", data=_TOKEN_FORM)
            token = _token.decode(resp.content).access_token
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
            }
            submit_url = url + _PATH

            async def op(index: int) -> None:
                body = bare_body(orders[index])
                r = await client.post(submit_url, content=body, headers=headers)
                if r.status_code != 200:
                    raise RuntimeError(f"HTTP {r.status_code}")
                _answer.decode(r.content)

            trial = await run_load(op, ops=ops, concurrency=concurrency)
        return trial.as_dict()


class SubmitLayers(OrderClient):
    """Where the SDK's CPU goes: one request sent at each layer, in turn.

    ``aiohttp`` is the bare session call; ``Transport.send`` adds the SDK's
    HTTP layer (headers, timeouts, error mapping); ``Requester.request`` adds
    the token cache and the retry policy (backoff); ``orders.submit`` adds
    validation and the typed result. Layers are SDK internals, so this is a
    diagnosis, not a target.
    """

    async def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name != "layers":
            raise ValueError(f"unknown command {name!r}")
        url: str = args["url"]
        ops: int = args["ops"]
        concurrency: int = args["concurrency"]
        rounds: int = args["rounds"]
        orders = _orders(ops + concurrency)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": _JSON}
        connector = aiohttp.TCPConnector(limit=POOL)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            SipsClient(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                base_url=url,
                max_connections=POOL,
            ) as client,
        ):
            transport = client._transport
            requester = client.orders._requester
            submit = client.orders.submit

            async def bare(index: int) -> None:
                body = bare_body(orders[index])
                async with session.post(url + _PATH, data=body, headers=headers) as r:
                    data = await r.read()
                _answer.decode(data)

            async def send(index: int) -> None:
                body = bare_body(orders[index])
                resp = await transport.send(
                    "POST", _PATH, token=TOKEN, json=body, timeout=60.0
                )
                _answer.decode(resp.body)

            async def request(index: int) -> None:
                body = bare_body(orders[index])
                resp = await requester.request(
                    "POST", _PATH, json=body, timeout=60.0, places_order=True
                )
                _answer.decode(resp.body)

            async def sdk(index: int) -> None:
                await submit(orders[index])

            layers: dict[str, Callable[[int], Awaitable[None]]] = {
                "aiohttp": bare,
                "Transport.send": send,
                "Requester.request": request,
                "orders.submit": sdk,
            }
            cpu: dict[str, list[float]] = {layer: [] for layer in layers}
            for index in range(rounds + 1):  # the first round warms up
                names = list(layers) if index % 2 == 0 else list(layers)[::-1]
                for layer in names:
                    trial = await run_load(
                        layers[layer], ops=ops, concurrency=concurrency
                    )
                    if index:
                        cpu[layer].append(trial.cpu / trial.ops)
        return {layer: median(values) for layer, values in cpu.items()}


def _httpx_available() -> bool:
    try:
        import httpx  # noqa: F401
    except ImportError:
        return False
    return True


SIDES: Final = {
    "sdk": "benchmarks.submit:SdkSubmit",
    "aiohttp": "benchmarks.submit:AiohttpSubmit",
    "httpx": "benchmarks.submit:HttpxSubmit",
}


def run(opts: Options) -> Outcome:
    """Run the submit comparison on every available loop."""
    sides = dict(SIDES)
    notes = []
    if not _httpx_available():
        del sides["httpx"]
        notes.append("httpx is not installed: its column is skipped.")
    baselines = [name for name in sides if name != "sdk"]
    sizes = {
        1: opts.size(3000, 150),
        16: opts.size(10_000, 300),
        64: opts.size(10_000, 400),
    }
    table = Table(
        "submit: medians per side; ratio = SDK/baseline (range over pairs)",
        [
            "loop",
            "conc.",
            "side",
            "req/s",
            "p50 ms",
            "p99 ms",
            "CPU µs/req",
            "GC µs/req",
        ]
        + [f"SDK/{b} req/s" for b in baselines],
    )
    layers = Table(
        f"submit: client CPU per request, layer by layer (c={LAYERS_AT}, one "
        "process, medians)",
        ["loop", "layer", "CPU µs/req", "added by the layer"],
    )
    targets: list[Target] = []
    raw: dict[str, Any] = {}
    pairs: dict[str, Any] = {}
    with workers([("benchmarks._servers:SipsServer", server_loop(), {})]) as [server]:
        url: str = server.info["url"]
        for loop in available_loops():
            specs: list[Spec] = [(path, loop, {}) for path in sides.values()]
            with workers(specs) as procs:
                by_name = dict(zip(sides, procs, strict=True))
                for conc in CONCURRENCY:
                    print(f"  submit loop={loop} concurrency={conc} ops={sizes[conc]}")
                    trials = interleave(
                        {
                            name: partial(
                                proc.call,
                                "run",
                                url=url,
                                ops=sizes[conc] // SLOW.get(name, 1),
                                concurrency=conc,
                            )
                            for name, proc in by_name.items()
                        },
                        rounds=opts.rounds,
                        warmup=opts.warmup,
                    )
                    raw[f"{loop}/{conc}"] = trials
                    rate_ratios = {
                        b: ratios(trials["sdk"], trials[b], "rate") for b in baselines
                    }
                    pairs[f"{loop}/{conc}"] = rate_ratios
                    for name in sides:
                        s = summarize(trials[name])
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
                            ]
                            + [
                                ratio(rate_ratios[b]) if name == "sdk" else ""
                                for b in baselines
                            ]
                        )
                    limits = {"aiohttp": 0.90, "httpx": 1.0}
                    for b in baselines:
                        targets.append(
                            Target(
                                f"{loop} c={conc} throughput vs {b}",
                                median(rate_ratios[b]),
                                limits[b],
                                at_least=True,
                            )
                        )
            print(f"  submit layers loop={loop} concurrency={LAYERS_AT}")
            layer_spec: list[Spec] = [("benchmarks.submit:SubmitLayers", loop, {})]
            with workers(layer_spec) as [proc]:
                cpu = proc.call(
                    "layers",
                    url=url,
                    ops=sizes[LAYERS_AT],
                    concurrency=LAYERS_AT,
                    rounds=opts.rounds,
                )
            raw[f"{loop}/layers"] = cpu
            previous = None
            for layer, value in cpu.items():
                added = "" if previous is None else f"{(value - previous) * 1e6:+.0f}"
                layers.rows.append([loop, layer, us(value), added])
                previous = value
    return Outcome(
        name="submit",
        title="synchronous submit vs bare aiohttp and httpx",
        method=__doc__ or "",
        tables=[table, layers],
        targets=targets,
        notes=notes,
        data={"sizes": sizes, "pair_ratios": pairs, "trials": raw},
    )
