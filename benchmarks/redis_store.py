"""redis: RedisStore ingest vs MemoryStore, and cross-instance wake latency.

* ``ingest``: the ``ingest`` benchmark's receiver (``WebhookReceiver``, guard
  on, every order registered first with ``tracker.expect()``) with
  ``store=`` the default MemoryStore or a RedisStore on a local
  ``redis-server`` (unix socket, no persistence), fed by the same aiohttp
  sender process (64 concurrent POSTs), trials interleaved. Reported:
  webhooks/s and the receiver's CPU per webhook; target: RedisStore at least
  0.50x MemoryStore.
* ``wake``: two RedisStore instances on that server in one process, one
  update at a time. *Same instance*: from ``record()`` on A to A's own
  listener; *other instance*: from the same ``record()`` to B's listener
  (pub/sub round trip and decode). Reported: p50/p99 of both and the added
  p99; target: added p99 under 20 ms on loopback.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sips_async.stores import Change, RedisStore
from sips_async.webhooks._decode import decode_event
from tests._redis_server import RedisServer
from tests.factories import event_body

from ._harness import Options, interleave, median, server_loop, workers
from ._report import Outcome, Table, Target, ms, ratio, ratios, summarize, us
from .ingest import CONCURRENCY, _trial

__all__ = ["run"]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _wake(url: str, samples: int) -> dict[str, list[float]]:
    """Seconds from ``record()`` to the listener, same and other instance."""
    a, b = RedisStore(url, prefix="wake:"), RedisStore(url, prefix="wake:")
    await a.open()
    await b.open()
    local: list[float] = []
    remote: list[float] = []
    heard = asyncio.Event()
    started = 0.0

    def on_a(change: Change) -> None:
        local.append(time.perf_counter() - started)

    def on_b(change: Change) -> None:
        remote.append(time.perf_counter() - started)
        heard.set()

    a.subscribe(on_a)
    b.subscribe(on_b)
    try:
        for n in range(samples + 20):  # the first 20 warm up
            heard.clear()
            started = time.perf_counter()
            await a.record(
                decode_event(event_body(transaction_id=f"wake-{n}", event_id=f"w{n}"))
            )
            async with asyncio.timeout(10):
                await heard.wait()
    finally:
        await a.close()
        await b.close()
    return {"local": local[20:], "remote": remote[20:]}


def run(opts: Options) -> Outcome:
    """RedisStore against MemoryStore (ingest) and cross-instance wake latency."""
    if shutil.which("redis-server") is None:
        raise RuntimeError(
            "redis-server is not installed (apt-get install redis-server)"
        )
    ops = opts.size(6_000, 600)
    samples = opts.size(2_000, 200)
    prefixes = (f"r{n}" for n in itertools.count())
    loop = server_loop()
    ingest = Table(
        f"redis ingest: aiohttp sender, {CONCURRENCY} concurrent POSTs, {ops} "
        f"webhooks per trial, loop {loop}; CPU is the receiver's",
        ["store", "webhooks/s", "p50 ms", "p99 ms", "CPU µs/hook", "redis/memory"],
    )
    wake = Table(
        f"redis wake: record() to listener, {samples} updates one at a time",
        ["listener", "p50 ms", "p99 ms"],
    )
    with tempfile.TemporaryDirectory(prefix="sips-bench-redis-") as tmp:
        server = RedisServer(Path(tmp))
        with server.running():
            specs = [
                ("benchmarks.ingest:SdkReceiver", loop, {"store": server.url}),
                ("benchmarks.ingest:SdkReceiver", loop, {}),
            ]
            with (
                workers([("benchmarks.ingest:Sender", server_loop(), {})]) as [sender],
                workers(specs) as [redis_rx, memory_rx],
            ):
                print(f"  redis ingest loop={loop} ops={ops}")
                trials = interleave(
                    {
                        "redis": _trial(redis_rx, sender, prefixes, ops),
                        "memory": _trial(memory_rx, sender, prefixes, ops),
                    },
                    rounds=opts.rounds,
                    warmup=opts.warmup,
                )
            rate = ratios(trials["redis"], trials["memory"], "rate")
            for name in ("redis", "memory"):
                s = summarize(trials[name])
                ingest.rows.append(
                    [
                        name,
                        f"{s['rate']:,.0f}",
                        ms(s["p50"]),
                        ms(s["p99"]),
                        us(s["cpu_per_op"]),
                        ratio(rate) if name == "redis" else "",
                    ]
                )
            print(f"  redis wake samples={samples}")
            latencies = asyncio.run(_wake(server.url, samples))
    for name, label in (("local", "same instance"), ("remote", "other instance")):
        values = latencies[name]
        wake.rows.append(
            [label, ms(statistics.median(values)), ms(_percentile(values, 0.99))]
        )
    added_p99 = _percentile(latencies["remote"], 0.99) - _percentile(
        latencies["local"], 0.99
    )
    targets = [
        Target("RedisStore webhooks/s vs MemoryStore", median(rate), 0.50, True),
        Target("cross-instance added p99", added_p99 * 1000, 20.0, False, "ms"),
    ]
    return Outcome(
        name="redis",
        title="RedisStore: ingest vs MemoryStore, cross-instance wake latency",
        method=__doc__ or "",
        tables=[ingest, wake],
        targets=targets,
        notes=[],
        data={
            "ops": ops,
            "pair_ratios": rate,
            "trials": trials,
            "wake_seconds": latencies,
        },
    )
