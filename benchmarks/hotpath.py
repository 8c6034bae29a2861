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
import cProfile
import gc
import pstats
import time
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any, Final, cast

from sips_async import PendingOrder, WebhookConfig, WebhookReceiver
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


async def _server(side: str, count: int, profile: cProfile.Profile | None) -> float:
    role: Any = SdkReceiver({}) if side == "sdk" else BareReceiver({})
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
    started = time.process_time()
    for future in done:
        await loop.create_connection(partial(_Client, pending, future), host, int(port))
    async with asyncio.timeout(300):  # bounded, whatever happens
        await asyncio.gather(*done)
    cpu = time.process_time() - started
    if profile is not None:
        profile.disable()
    finished = await role.command("finish", {})
    if finished["resolved"] != count:
        raise RuntimeError(f"{finished['resolved']} of {count} orders resolved")
    return cpu / count * 1e6


def _calls(profile: cProfile.Profile, count: int) -> dict[str, tuple[float, float]]:
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    out: dict[str, tuple[float, float]] = {}
    for (filename, _, name), (_, calls, own, _, _) in stats.items():
        key = f"{filename.rsplit('/', 1)[-1]}:{name}"
        had = out.get(key, (0.0, 0.0))
        out[key] = (had[0] + calls / count, had[1] + own / count * 1e6)
    return out


def _run(loop: str, count: int, only: str | None, profile: bool) -> None:
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
            cpu = run(_server(side, count, prof))
            if prof is not None:
                profiles[side] = prof
            print(f"{loop:8} server {side:18} {cpu:7.1f} us CPU/webhook")
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
    ns = parser.parse_args(argv)
    if ns.n < 1:
        parser.error("-n must be at least 1")
    for loop in [ns.loop] if ns.loop else available_loops():
        _run(loop, ns.n, ns.only, ns.profile)


if __name__ == "__main__":
    main()
