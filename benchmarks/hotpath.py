"""``python -m benchmarks.hotpath``: where a webhook's CPU goes, stage by stage.

Not a target (``python -m benchmarks`` holds those): the profile behind the
ingest analysis in BENCHMARKS.md. In one process, on each loop:

* *stages*: ``decode_event``, ``tracker.record`` (MemoryStore) and
  ``receiver.process`` (guard, decode, record, wake) over ``N`` distinct
  SRS bodies, every order registered first, microseconds per webhook;
* *server*: the real receiver on 127.0.0.1 and the bare aiohttp handler of
  :mod:`benchmarks.ingest`, each fed the same ``N`` requests by a minimal
  raw-socket client in the same process (64 keep-alive connections), CPU per
  webhook of the whole process: the client's share is the same on both
  sides, so the difference is what the SDK adds;
* ``--sqlite``: a third server side, the SDK receiver on a ``SqliteStore``
  (a fresh file in a temporary directory), with where its extra time goes:
  the writer's groups (how many, how many webhooks each), the CPU of the
  group's work on the connection's thread per webhook, the wall time each
  group takes there, and the process's voluntary context switches per
  webhook (the loop thread and the connection's thread handing the GIL to
  each other); then the same with every group run on the loop thread
  instead (``sdk-sqlite-on-loop``, an experiment, not an option of the
  store: a second connection to the same file, used from the loop), which
  is what taking the thread away would save, and cost (the loop blocked
  for each group's write);
* ``--profile``: the Python functions the SDK side runs per webhook that
  the bare side does not (cProfile call counts and own time per webhook;
  cProfile inflates small functions, so read the counts first).

CPU times move with the machine's load; for a steadier figure count
instructions, e.g. ``valgrind --tool=callgrind python -m benchmarks.hotpath
--only server --loop asyncio`` at two sizes and take the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import pstats
import resource
import sqlite3
import time
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any, Final, cast

from sips_async import PendingOrder, WebhookConfig, WebhookReceiver
from sips_async.stores import SqliteStore
from sips_async.webhooks._decode import decode_event
from tests.factories import event_body

from ._harness import _loop_factory, available_loops
from ._servers import HOOK_SECRET
from .ingest import BareReceiver, SdkReceiver

__all__ = ["main"]

CONCURRENCY: Final = 64


def _bodies(prefix: str, count: int) -> list[bytes]:
    return [
        event_body(
            transaction_id=f"{prefix}-{i:07d}",
            event_id=str(i),
            order_id=str(35_000_000 + i),
        )
        for i in range(count)
    ]


async def _stages(count: int) -> dict[str, float]:
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    tracker = receiver.tracker
    keys = [f"s-{i:07d}" for i in range(count)]
    held = [
        PendingOrder(key, tracker=tracker, entry=await tracker.expect(key))
        for key in keys
    ]
    bodies = _bodies("s", count)
    headers = {"Content-Type": "application/json"}
    started = time.process_time()
    updates = [decode_event(body) for body in bodies]
    decode = time.process_time() - started
    started = time.process_time()
    for update in updates:
        await tracker.record(update)
    record = time.process_time() - started
    again = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    more = [f"p-{i:07d}" for i in range(count)]
    held += [
        PendingOrder(key, tracker=again.tracker, entry=await again.tracker.expect(key))
        for key in more
    ]
    bodies = _bodies("p", count)
    gc.collect()
    started = time.process_time()
    for body in bodies:
        await again.process(body, headers, token=HOOK_SECRET)
    process = time.process_time() - started
    assert all(p.history for p in held), "an update was not recorded"
    await receiver.aclose()
    await again.aclose()
    return {
        "decode_event": decode / count * 1e6,
        "tracker.record": record / count * 1e6,
        "receiver.process": process / count * 1e6,
    }


class _Client(asyncio.Protocol):
    """Sends the next request when the previous answer is in (keep-alive)."""

    def __init__(self, requests: Iterator[bytes], done: asyncio.Future[None]) -> None:
        self._requests = requests
        self._done = done
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are no asyncio.Transport subclass.)
        self._transport = cast(asyncio.Transport, transport)
        self._next()

    def _next(self) -> None:
        assert self._transport is not None
        request = next(self._requests, None)
        if request is None:
            self._transport.close()
            if not self._done.done():
                self._done.set_result(None)
            return
        self._transport.write(request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():  # closed by the server: say so, never hang
            self._done.set_exception(
                RuntimeError(f"the receiver closed a connection: {exc!r}")
            )

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            head = self._buffer[:end].lower()
            length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(self._buffer) < end + 4 + length:
                return
            if not head.startswith(b"http/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            self._buffer = self._buffer[end + 4 + length :]
            self._next()


class _Groups:
    """What a ``SqliteStore``'s writer did: its groups and their thread time."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.thread_cpu = 0.0
        self.wall = 0.0

    @contextlib.contextmanager
    def watching(self, on_loop: bool = False) -> Iterator[None]:
        """Time every group's ``_apply`` (on the connection's thread).

        ``on_loop``: run each group on the loop thread instead, on a second
        connection to the same file (WAL, ``synchronous=NORMAL``: the
        store's default).
        """
        apply = SqliteStore._apply
        in_thread = SqliteStore._in_thread
        groups = self
        direct: dict[int, sqlite3.Connection] = {}

        async def inline(store: SqliteStore, conn: Any, fn: Any, *args: Any) -> Any:
            if getattr(fn, "__func__", None) is not timed:  # not a group
                return await in_thread(store, conn, fn, *args)
            db = direct.get(id(store))
            if db is None:
                db = direct[id(store)] = sqlite3.connect(
                    store.path, isolation_level=None
                )
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
            return fn(db, *args)

        def timed(store: SqliteStore, db: Any, batch: Any, *args: Any) -> Any:
            groups.sizes.append(len(batch))
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return apply(store, db, batch, *args)
            finally:
                groups.wall += time.perf_counter() - wall
                groups.thread_cpu += time.thread_time() - cpu

        SqliteStore._apply = timed  # type: ignore[method-assign, assignment]
        if on_loop:
            SqliteStore._in_thread = inline  # type: ignore[method-assign, assignment]
        try:
            yield
        finally:
            SqliteStore._apply = apply  # type: ignore[method-assign]
            SqliteStore._in_thread = in_thread  # type: ignore[method-assign]
            for db in direct.values():
                db.close()


def _role(side: str) -> Any:
    if side == "bare":
        return BareReceiver({})
    return SdkReceiver({"store": "sqlite"} if side == "sdk-sqlite" else {})


async def _server(
    side: str, count: int, profile: cProfile.Profile | None
) -> tuple[float, float]:
    """CPU per webhook and voluntary context switches per webhook."""
    role = _role(side)
    url: str = (await role.command("prepare", {"prefix": "h", "count": count}))["url"]
    host, rest = url.split("//", 1)[1].split(":", 1)
    port, path = rest.split("/", 1)
    requests = [
        (
            f"POST /{path} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in _bodies("h", count)
    ]
    loop = asyncio.get_running_loop()
    pending = iter(requests)
    done = [loop.create_future() for _ in range(CONCURRENCY)]
    if profile is not None:
        profile.enable()
    switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
    started = time.process_time()
    for future in done:
        await loop.create_connection(partial(_Client, pending, future), host, int(port))
    async with asyncio.timeout(300):  # bounded, whatever happens
        await asyncio.gather(*done)
    cpu = time.process_time() - started
    switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - switches
    if profile is not None:
        profile.disable()
    finished = await role.command("finish", {})
    if finished["resolved"] != count:
        raise RuntimeError(f"{finished['resolved']} of {count} orders resolved")
    return cpu / count * 1e6, switches / count


def _calls(profile: cProfile.Profile, count: int) -> dict[str, tuple[float, float]]:
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    out: dict[str, tuple[float, float]] = {}
    for (filename, _, name), (_, calls, own, _, _) in stats.items():
        key = f"{filename.rsplit('/', 1)[-1]}:{name}"
        had = out.get(key, (0.0, 0.0))
        out[key] = (had[0] + calls / count, had[1] + own / count * 1e6)
    return out


def _run(loop: str, count: int, only: str | None, profile: bool, sqlite: bool) -> None:
    factory = _loop_factory(loop)

    def run(coro: Any) -> Any:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(coro)

    if only in (None, "stages"):
        for name, value in run(_stages(count)).items():
            print(f"{loop:8} stage  {name:18} {value:7.2f} us/webhook")
    if only in (None, "server"):
        profiles: dict[str, cProfile.Profile] = {}
        for side in ("sdk", "bare"):
            prof = cProfile.Profile() if profile else None
            cpu, switches = run(_server(side, count, prof))
            if prof is not None:
                profiles[side] = prof
            print(
                f"{loop:8} server {side:18} {cpu:7.1f} us CPU/webhook"
                f"  {switches:5.2f} context switches/webhook"
            )
        if sqlite:
            for name, on_loop in (("sdk-sqlite", False), ("sdk-sqlite-on-loop", True)):
                groups = _Groups()
                with groups.watching(on_loop):
                    cpu, switches = run(_server("sdk-sqlite", count, None))
                sizes = groups.sizes
                print(
                    f"{loop:8} server {name:18} {cpu:7.1f} us CPU/webhook"
                    f"  {switches:5.2f} context switches/webhook\n"
                    f"{loop:8}        {len(sizes)} groups of"
                    f" {sum(sizes) / len(sizes):.1f} webhooks; group work per webhook:"
                    f" {groups.thread_cpu / count * 1e6:.1f} us CPU,"
                    f" {groups.wall / count * 1e6:.1f} us wall"
                )
        if profiles:
            sdk, bare = (_calls(profiles[s], count) for s in ("sdk", "bare"))
            print(
                f"{loop:8} calls per webhook: sdk {sum(c for c, _ in sdk.values()):.0f}"
                f", bare {sum(c for c, _ in bare.values()):.0f}; the SDK's extra:"
            )
            extra = sorted(sdk, key=lambda k: -(sdk[k][1] - bare.get(k, (0.0, 0.0))[1]))
            for key in extra[:25]:
                calls, own = sdk[key]
                base = bare.get(key, (0.0, 0.0))
                if calls - base[0] > 0.01 or own - base[1] > 0.2:
                    print(f"    {calls:5.2f} calls {own:6.2f} us  {key}")


def main(argv: Sequence[str] | None = None) -> None:
    """Print the stage costs and the server comparison on each loop."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotpath")
    parser.add_argument("-n", type=int, default=20_000, help="webhooks (20000)")
    parser.add_argument("--loop", choices=available_loops(), default=None)
    parser.add_argument("--only", choices=("stages", "server"), default=None)
    parser.add_argument("--profile", action="store_true", help="cProfile the server")
    parser.add_argument(
        "--sqlite", action="store_true", help="add the receiver on a SqliteStore"
    )
    ns = parser.parse_args(argv)
    if ns.n < 1:
        parser.error("-n must be at least 1")
    for loop in [ns.loop] if ns.loop else available_loops():
        _run(loop, ns.n, ns.only, ns.profile, ns.sqlite)


if __name__ == "__main__":
    main()
