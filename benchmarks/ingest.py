"""ingest: webhooks per second into ``WebhookReceiver`` vs a bare handler.

Two receiver processes take turns, each on the client loop under test:

* ``sdk``: ``WebhookReceiver(WebhookConfig(secret=..., port=0))``, guard on
  (the secret as the last path segment, compared in constant time) and
  tracker on: every order is registered first with ``tracker.expect()``, as
  ``enqueue`` does, so each update is decoded, stored, correlated and wakes
  its entry;
* ``bare``: one aiohttp handler (:func:`benchmarks._servers.bare_webhook_app`)
  that checks the same secret, decodes with msgspec and resolves a ``dict`` of
  futures registered beforehand for the same keys.

A third receiver process, ``sdk-sqlite``, is the ``sdk`` receiver on a
``SqliteStore`` (a fresh file per trial in a temporary directory, WAL,
``synchronous=NORMAL``): every webhook is committed before its 200, with
group commit. It is compared with the ``sdk`` receiver (``MemoryStore``) in
the same run, under the same aiohttp sender.

One load generator process (aiohttp client, 64 concurrent POSTs) sends the
same SRS-shaped bodies (``tests.factories.event_body``: an ``OA`` per order,
distinct ``transactionID`` and ``eventId``) to whichever receiver is being
measured. Each trial starts a fresh receiver, registers its orders, runs
one ``gc.collect()`` (both sides) and then starts the clock. Reported: webhooks/s at the
sender, p50/p99 per POST, and the receiver's CPU per webhook. An aiohttp
sender costs about as much CPU per request as a receiver, so on two cores it
can be the bottleneck; ``wrk``, when installed, is a second load generator
(same bodies and orders, a fixed duration per trial) that is not.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import aiohttp

from sips_async import PendingOrder, WebhookConfig, WebhookReceiver
from sips_async.stores import SqliteStore, Store
from tests.factories import event_body

from ._harness import (
    GcTimer,
    Options,
    Spec,
    Worker,
    available_loops,
    interleave,
    median,
    run_load,
    server_loop,
    workers,
)
from ._report import Outcome, Table, Target, ms, ratio, ratios, summarize, us
from ._servers import HOOK_SECRET, BareEvent, bare_webhook_app, serve

__all__ = ["BareReceiver", "SdkReceiver", "Sender", "run"]

CONCURRENCY: Final = 64
_PATH: Final = "/srs/webhook"


def _settle_heap() -> None:
    """Collect once after preparing, on both sides, before timing starts.

    Preparing makes tens of thousands of objects (the registered orders);
    without this, the first full collections of the trial would scan them,
    a one-off cost of the set-up charged to whichever side made more.
    """
    gc.collect()


def _keys(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:07d}" for i in range(count)]


class SdkReceiver:
    """A fresh ``WebhookReceiver`` per trial, its orders registered first.

    ``config["store"]``: ``"memory"`` (default), ``"sqlite"`` (a new file per
    trial) or a store URL.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self._store_kind: str = config.get("store", "memory")
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._receiver: WebhookReceiver | None = None
        self._pending: list[PendingOrder] = []
        self._cpu = 0.0
        self._gc = GcTimer()

    async def start(self) -> dict[str, Any]:
        return {}

    async def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name == "prepare":
            store: Store | str | None = None
            if self._store_kind == "sqlite":
                self._tmp = tempfile.TemporaryDirectory()
                store = SqliteStore(Path(self._tmp.name) / "orders.db")
            elif self._store_kind != "memory":
                store = self._store_kind  # a store URL (Redis)
            receiver = WebhookReceiver(
                WebhookConfig(host="127.0.0.1", port=0, path=_PATH, secret=HOOK_SECRET),
                store=store,
            )
            url = await receiver.start()
            tracker = receiver.tracker
            keys = _keys(args["prefix"], args["count"])
            entries = []
            for start in range(0, len(keys), 1_000):  # batched outbox writes
                chunk = keys[start : start + 1_000]
                entries += await asyncio.gather(*(tracker.expect(k) for k in chunk))
            self._pending = [
                PendingOrder(key, tracker=tracker, entry=entry)
                for key, entry in zip(keys, entries, strict=True)
            ]
            self._receiver = receiver
            _settle_heap()
            self._gc = GcTimer()
            self._gc.start()
            self._cpu = time.process_time()
            return {"url": url}
        if name == "finish":
            cpu = time.process_time() - self._cpu
            self._gc.stop()
            assert self._receiver is not None
            resolved = sum(1 for p in self._pending if p.history)
            # Releasing more orders than max_unclaimed logs a WARNING per
            # history dropped: teardown, after the measurement; keep it quiet.
            quiet = logging.getLogger("sips_async")
            level = quiet.level
            quiet.setLevel(logging.ERROR)
            try:
                await self._receiver.aclose()
                self._receiver, self._pending = None, []
            finally:
                quiet.setLevel(level)
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None
            return {"cpu": cpu, "gc": self._gc.seconds, "resolved": resolved}
        raise ValueError(f"unknown command {name!r}")

    async def close(self) -> None:
        if self._receiver is not None:
            await self._receiver.aclose()


class BareReceiver:
    """A fresh bare aiohttp receiver per trial with a dict of futures."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._runner: Any = None
        self._futures: dict[str, asyncio.Future[BareEvent]] = {}
        self._count = 0
        self._cpu = 0.0
        self._gc = GcTimer()

    async def start(self) -> dict[str, Any]:
        return {}

    async def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name == "prepare":
            loop = asyncio.get_running_loop()
            keys = _keys(args["prefix"], args["count"])
            self._futures = {key: loop.create_future() for key in keys}
            self._count = len(keys)
            self._runner, port = await serve(
                bare_webhook_app(self._futures, HOOK_SECRET)
            )
            _settle_heap()
            self._gc = GcTimer()
            self._gc.start()
            self._cpu = time.process_time()
            return {"url": f"http://127.0.0.1:{port}{_PATH}/{HOOK_SECRET}"}
        if name == "finish":
            cpu = time.process_time() - self._cpu
            self._gc.stop()
            resolved = self._count - len(self._futures)
            await self.close()
            return {"cpu": cpu, "gc": self._gc.seconds, "resolved": resolved}
        raise ValueError(f"unknown command {name!r}")

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._futures = {}


class Sender:
    """The load generator: POSTs pre-encoded SRS bodies at a fixed concurrency."""

    def __init__(self, config: dict[str, Any]) -> None:
        pass

    async def start(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        return None

    async def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name != "send":
            raise ValueError(f"unknown command {name!r}")
        url: str = args["url"]
        ops: int = args["ops"]
        concurrency: int = args["concurrency"]
        bodies = [
            event_body(
                transaction_id=key, event_id=str(i), order_id=str(35_000_000 + i)
            )
            for i, key in enumerate(_keys(args["prefix"], ops + concurrency))
        ]
        headers = {"Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def op(index: int) -> None:
                async with session.post(url, data=bodies[index], headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}")

            trial = await run_load(op, ops=ops, concurrency=concurrency)
        return trial.as_dict()


_WRK_SCRIPT: Final = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
counter = -1
request = function()
  counter = counter + 1
  local body = string.format(
    '{"eventId":"%d","eventType":"OA","eventStatus":"Accepted",' ..
    '"eventDateTime":"2026-05-20T14:03:11","subscriberReferenceNum":"5641-8Test",' ..
    '"subscriberReferenceNum2":"%d","subscriberReferenceNum3":"%s-%07d"}',
    counter, 35000000 + counter, prefix, counter)
  return wrk.format(nil, nil, nil, body)
end
"""
#: Orders registered per wrk trial, per second of it (above any rate seen here).
_WRK_KEYS_PER_SECOND: Final = 50_000


def _wrk(url: str, prefix: str, seconds: int) -> float:
    """Requests/s that wrk sustains, posting one OA per registered order."""
    wrk = shutil.which("wrk")
    assert wrk is not None
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(f'prefix = "{prefix}"\n' + _WRK_SCRIPT)
        cmd = [wrk, "-t1", f"-c{CONCURRENCY}", f"-d{seconds}s", "-s", str(script)]
        done = subprocess.run(
            [*cmd, url], capture_output=True, text=True, timeout=seconds + 30
        )
    for line in done.stdout.splitlines():
        if "Non-2xx" in line:
            raise RuntimeError(f"wrk: {line.strip()}")
        if line.startswith("Requests/sec:"):
            return float(line.split(":", 1)[1])
    raise RuntimeError(f"wrk failed: {done.stdout}{done.stderr}")


def run(opts: Options) -> Outcome:
    """Run the ingest comparison on every available loop."""
    ops = opts.size(12_000, 1_000)
    wrk_seconds = 1 if opts.quick else 2
    use_wrk = shutil.which("wrk") is not None
    prefixes = (f"t{n}" for n in itertools.count())
    table = Table(
        f"ingest: aiohttp sender, {CONCURRENCY} concurrent POSTs, {ops} webhooks "
        "per trial; CPU is the receiver's",
        [
            "loop",
            "side",
            "webhooks/s",
            "p50 ms",
            "p99 ms",
            "CPU µs/hook",
            "GC µs",
            "SDK/bare",
        ],
    )
    store_table = Table(
        f"ingest by store: aiohttp sender, {CONCURRENCY} concurrent POSTs, {ops} "
        "webhooks per trial; each webhook stored before its 200",
        ["loop", "store", "webhooks/s", "p50 ms", "p99 ms", "CPU µs/hook", "vs memory"],
    )
    wrk_table = Table(
        f"ingest: wrk sender (1 thread, {CONCURRENCY} connections, {wrk_seconds} s "
        "per trial); CPU is the receiver's",
        ["loop", "side", "webhooks/s", "CPU µs/hook", "GC µs", "SDK/bare"],
    )
    targets: list[Target] = []
    notes: list[str] = []
    raw: dict[str, Any] = {}
    pairs: dict[str, list[float]] = {}
    with workers([("benchmarks.ingest:Sender", server_loop(), {})]) as [sender]:
        for loop in available_loops():
            specs: list[Spec] = [
                ("benchmarks.ingest:SdkReceiver", loop, {}),
                ("benchmarks.ingest:BareReceiver", loop, {}),
                ("benchmarks.ingest:SdkReceiver", loop, {"store": "sqlite"}),
            ]
            with workers(specs) as [sdk, bare, sqlite]:
                print(f"  ingest loop={loop} ops={ops}")
                trials = interleave(
                    {
                        "sdk": _trial(sdk, sender, prefixes, ops),
                        "bare": _trial(bare, sender, prefixes, ops),
                    },
                    rounds=opts.rounds,
                    warmup=opts.warmup,
                )
                raw[loop] = trials
                rate = ratios(trials["sdk"], trials["bare"], "rate")
                pairs[loop] = rate
                _rows(table, loop, trials, rate, latency=True)
                targets.append(
                    Target(f"{loop} webhooks/s vs bare", median(rate), 0.90, True)
                )
                print(f"  ingest by store loop={loop} ops={ops}")
                trials = interleave(
                    {
                        "memory": _trial(sdk, sender, prefixes, ops),
                        "sqlite": _trial(sqlite, sender, prefixes, ops),
                    },
                    rounds=opts.rounds,
                    warmup=opts.warmup,
                )
                raw[f"{loop}/stores"] = trials
                rate = ratios(trials["sqlite"], trials["memory"], "rate")
                pairs[f"{loop}/sqlite-vs-memory"] = rate
                for name in ("memory", "sqlite"):
                    s = summarize(trials[name])
                    store_table.rows.append(
                        [
                            loop,
                            name,
                            f"{s['rate']:,.0f}",
                            ms(s["p50"]),
                            ms(s["p99"]),
                            us(s["cpu_per_op"]),
                            ratio(rate) if name == "sqlite" else "",
                        ]
                    )
                targets.append(
                    Target(
                        f"{loop} SQLite webhooks/s vs memory", median(rate), 0.70, True
                    )
                )
                if use_wrk:
                    print(f"  ingest wrk loop={loop} seconds={wrk_seconds}")
                    trials = interleave(
                        {
                            "sdk": _wrk_trial(sdk, prefixes, wrk_seconds),
                            "bare": _wrk_trial(bare, prefixes, wrk_seconds),
                        },
                        rounds=opts.rounds,
                        warmup=opts.warmup,
                    )
                    raw[f"{loop}/wrk"] = trials
                    rate = ratios(trials["sdk"], trials["bare"], "rate")
                    pairs[f"{loop}/wrk"] = rate
                    _rows(wrk_table, loop, trials, rate, latency=False)
                    targets.append(
                        Target(
                            f"{loop} webhooks/s vs bare, wrk sender",
                            median(rate),
                            0.90,
                            True,
                        )
                    )
    tables = [table, store_table]
    if use_wrk:
        tables.append(wrk_table)
    else:
        notes.append("skipped: wrk not installed (apt-get install wrk): no wrk rows.")
    return Outcome(
        name="ingest",
        title="webhooks into WebhookReceiver vs a bare aiohttp handler",
        method=__doc__ or "",
        tables=tables,
        targets=targets,
        notes=notes,
        data={"ops": ops, "pair_ratios": pairs, "trials": raw},
    )


def _rows(
    table: Table,
    loop: str,
    trials: dict[str, list[dict[str, Any]]],
    rate: list[float],
    *,
    latency: bool,
) -> None:
    for name in ("sdk", "bare"):
        s = summarize(trials[name])
        times = [ms(s["p50"]), ms(s["p99"])] if latency else []
        table.rows.append(
            [
                loop,
                name,
                f"{s['rate']:,.0f}",
                *times,
                us(s["cpu_per_op"]),
                us(s["gc_per_op"]),
                ratio(rate) if name == "sdk" else "",
            ]
        )


def _trial(
    receiver: Worker, sender: Worker, prefixes: Iterator[str], ops: int
) -> Callable[[], dict[str, Any]]:
    def trial() -> dict[str, Any]:
        prefix = next(prefixes)
        count = ops + CONCURRENCY
        url = receiver.call("prepare", prefix=prefix, count=count)["url"]
        sent = sender.call(
            "send", url=url, prefix=prefix, ops=ops, concurrency=CONCURRENCY
        )
        done = receiver.call("finish")
        if done["resolved"] != count:
            raise RuntimeError(f"{done['resolved']} of {count} orders resolved")
        return {
            **sent,
            "cpu_per_op": done["cpu"] / count,
            "gc_per_op": done["gc"] / count,
        }

    return trial


def _wrk_trial(
    receiver: Worker, prefixes: Iterator[str], seconds: int
) -> Callable[[], dict[str, Any]]:
    def trial() -> dict[str, Any]:
        prefix = next(prefixes)
        count = _WRK_KEYS_PER_SECOND * seconds
        url = receiver.call("prepare", prefix=prefix, count=count)["url"]
        rate = _wrk(url, prefix, seconds)
        done = receiver.call("finish")
        handled = max(1, done["resolved"])
        return {
            "rate": rate,
            "cpu_per_op": done["cpu"] / handled,
            "gc_per_op": done["gc"] / handled,
        }

    return trial
