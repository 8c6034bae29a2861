"""Several receiver processes behind a "balancer", one Redis, waiters elsewhere.

Three receiver processes (tests/_redis_receiver.py, ``store=`` the Redis
URL) share one real redis-server (append-only file on). The waiters all sit
in this process, in a ``SipsClient`` on the same store; the updates are
posted round-robin across the receivers, as a load balancer would, with
replays sent to another instance than the first delivery. Mid-run one
receiver is SIGKILLed (the balancer moves on to the next) and Redis is
restarted (updates answered 503 meanwhile, delivered again after). Every
waiter resolves, nothing answered 2xx is lost, nothing is kept twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from sips_async import OrderStatus, SipsClient, WebhookConfig
from sips_async.stores import RedisStore
from tests._fake_sips import post
from tests._redis_server import own_server
from tests.factories import CLIENT_ID, CLIENT_SECRET, HOOK_SECRET, event_body

ROOT = Path(__file__).resolve().parent.parent
ORDERS = 30
RECEIVERS = 3
STEPS = (("OA", "Accepted"), ("OU", "Processed"), ("DU", "Delivered"))
WAIT = 60.0


class Receiver:
    def __init__(self, proc: asyncio.subprocess.Process, url: str) -> None:
        self.proc = proc
        self.url = url


@contextlib.asynccontextmanager
async def receivers(store_url: str, count: int) -> AsyncIterator[list[Receiver]]:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests._redis_receiver",
            store_url,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(count)
    ]
    try:
        started = []
        for proc in procs:
            assert proc.stdout is not None
            async with asyncio.timeout(30):
                line = (await proc.stdout.readline()).decode()
            assert line.startswith("URL "), line
            started.append(Receiver(proc, line.split()[1]))
        yield started
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def updates() -> list[tuple[str, str, bytes]]:
    """(transaction id, event id, body) of every update, order by order."""
    out = []
    for n in range(ORDERS):
        for step, (kind, status) in enumerate(STEPS):
            tx = f"multi-{n}"
            body = event_body(
                transaction_id=tx,
                event_id=f"{tx}-{kind}",
                event_type=kind,
                status=status,
                order_id=f"SRS-{n}",
                when=f"2026-05-20T14:0{step}:00",
            )
            out.append((tx, f"{tx}-{kind}", body))
    return out


async def test_several_receivers_one_redis_every_waiter_resolved() -> None:
    with own_server(persist=True) as server:
        url = server.url
        async with (
            receivers(url, RECEIVERS) as rx,
            SipsClient(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                base_url="http://127.0.0.1:9",  # never called
                webhook=WebhookConfig(secret=HOOK_SECRET),
                store=url,
            ) as client,
            aiohttp.ClientSession() as session,
        ):
            pendings = [await client.orders.track(f"multi-{n}") for n in range(ORDERS)]
            waiters = [
                asyncio.create_task(p.wait_for(OrderStatus.DELIVERED, timeout=WAIT))
                for p in pendings
            ]
            acked: set[str] = set()
            replies: collections.Counter[str] = collections.Counter()
            redis_up = asyncio.Event()
            redis_up.set()
            refused = asyncio.Event()  # a 503 came back
            sem = asyncio.Semaphore(8)

            async def deliver(i: int, event: str, body: bytes) -> bool:
                """The balancer: instance i mod N, the next one if it is dead."""
                async with sem, asyncio.timeout(WAIT):
                    for attempt in range(1_000):
                        target = rx[(i + attempt) % len(rx)]
                        try:
                            reply = await post(session, target.url, body)
                        except aiohttp.ClientError:
                            replies["dead"] += 1
                            continue
                        if reply.status == 503:
                            replies["503"] += 1
                            refused.set()
                            await redis_up.wait()  # SRS delivers again later
                            continue
                        assert reply.status == 200, reply
                        acked.add(event)
                        duplicate = bool(reply.body["duplicate"])
                        replies["duplicate" if duplicate else "new"] += 1
                        return duplicate
                raise AssertionError("no receiver took the update")

            async def phase(part: list[tuple[int, str, bytes]]) -> None:
                # Each update, and every third one again on another instance.
                await asyncio.gather(*(deliver(i, e, b) for i, e, b in part))
                again = [deliver(i + 1, e, b) for i, e, b in part if i % 3 == 0]
                assert all(await asyncio.gather(*again))  # all seen as replays

            todo = [(i, e, b) for i, (_, e, b) in enumerate(updates())]
            third = len(todo) // 3
            # Each phase finishes a third of the orders; their waiters here
            # are woken through Redis (no update reaches this process's own
            # receiver), before anything restarts.
            await phase(todo[:third])
            await asyncio.gather(*waiters[: ORDERS // 3])

            rx[0].proc.send_signal(signal.SIGKILL)  # one instance dies
            assert await rx[0].proc.wait() == -signal.SIGKILL
            await phase(todo[third : 2 * third])
            assert replies["dead"] > 0  # the balancer did meet the dead one
            await asyncio.gather(*waiters[: 2 * ORDERS // 3])

            server.stop()  # Redis restarts mid-run
            redis_up.clear()
            stalled = asyncio.ensure_future(phase(todo[2 * third :]))
            async with asyncio.timeout(WAIT):
                await refused.wait()  # the receivers answer 503 while it is down
            server.start()
            redis_up.set()
            await stalled

            resolved = await asyncio.gather(*waiters)
            assert [u.transaction_id for u in resolved] == [
                f"multi-{n}" for n in range(ORDERS)
            ]
            for p in pendings:
                assert sorted(u.event_id for u in p.history) == sorted(
                    f"{p.transaction_id}-{kind}" for kind, _ in STEPS
                )
            assert replies["new"] == len(todo)

        store = RedisStore(url)
        await store.open()
        try:
            kept: set[str] = set()
            for n in range(ORDERS):
                history = [u.event_id for u in await store.history(f"multi-{n}")]
                assert len(history) == len(set(history)) == len(STEPS)
                kept.update(history)
            assert acked == kept == {e for _, e, _ in updates()}
            assert [row async for row in store.outstanding()] == []
        finally:
            await store.close()
