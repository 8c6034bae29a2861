"""Slow and idle connections cannot keep SRS's deliveries out (issue 11, item 1).

The flood test runs a receiver in a subprocess with a 256 file-descriptor
limit and opens far more connections than that, each stuck in its headers;
a valid delivery must still be answered. The timeout tests wait for the
server to close the connection (EOF), never on a guessed sleep.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from yarl import URL

from sips_async import OrderUpdate, WebhookConfig, WebhookReceiver
from sips_async.stores import Recorded
from sips_async.webhooks import MemoryStore

from .factories import HOOK_SECRET, event_body

FD_LIMIT = 256
BODY = event_body(transaction_id="txn-slow")

#: A receiver with default bounds (except timeouts far longer than the test)
#: and RLIMIT_NOFILE lowered to FD_LIMIT. Prints its URL, then, once stdin
#: closes, how many updates it recorded.
SCRIPT = f"""
import asyncio, resource, sys
from sips_async import WebhookConfig, WebhookReceiver

async def main() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, ({FD_LIMIT}, hard))
    config = WebhookConfig(secret={HOOK_SECRET!r}, header_timeout=600,
                           keepalive_timeout=600)
    async with WebhookReceiver(config) as receiver:
        print(receiver.url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        print(receiver.tracker.received, flush=True)

asyncio.run(main())
"""


async def test_connection_flood_beyond_the_fd_limit_does_not_block_a_delivery() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    assert proc.stderr is not None
    errors = asyncio.create_task(proc.stderr.read())  # drained as it comes
    writers: list[asyncio.StreamWriter] = []
    try:
        async with asyncio.timeout(30):
            url = (await proc.stdout.readline()).decode().strip()
        target = URL(url)
        assert target.host is not None and target.port is not None
        stuck = f"POST {target.path} HTTP/1.1\r\nHost: x\r\n".encode()
        # Without a cap the server runs out of descriptors and stops
        # accepting: the connects, then the delivery, would hang here.
        async with asyncio.timeout(30):
            for _ in range(2 * FD_LIMIT):  # headers never finished
                _, writer = await asyncio.open_connection(target.host, target.port)
                writer.write(stuck)
                writers.append(writer)
            async with aiohttp.ClientSession() as session:
                headers = {"Content-Type": "application/json"}
                async with session.post(url, data=BODY, headers=headers) as resp:
                    assert resp.status == 200
                    reply = json.loads(await resp.read())
                    assert reply == {"ok": True, "duplicate": False}
        proc.stdin.close()
        async with asyncio.timeout(30):
            recorded = (await proc.stdout.readline()).decode().strip()
            assert await proc.wait() == 0
        assert recorded == "1"
        # The descriptors never ran out: asyncio logs each failed accept().
        assert b"Too many open files" not in await errors
    finally:
        for writer in writers:
            writer.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        errors.cancel()


@asynccontextmanager
async def receiver_at(**bounds: float) -> AsyncIterator[tuple[str, int, str]]:
    config = WebhookConfig(secret=HOOK_SECRET, **bounds)  # type: ignore[arg-type]
    async with WebhookReceiver(config) as receiver:
        target = URL(receiver.url or "")
        assert target.host is not None and target.port is not None
        yield target.host, target.port, target.path


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(10):
        return await reader.read()  # everything until the server closes


async def test_headers_not_finished_in_time_are_closed() -> None:
    async with receiver_at(header_timeout=0.2) as (host, port, path):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode())
        assert await _closed_by_server(reader) == b""
        writer.close()


async def test_idle_connection_is_closed_after_keepalive_timeout() -> None:
    async with receiver_at(keepalive_timeout=0.2) as (host, port, path):
        reader, writer = await asyncio.open_connection(host, port)
        assert await _closed_by_server(reader) == b""  # nothing sent at all
        writer.close()
        # after an answered request, too
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n\r\n".encode()
            + BODY
        )
        answer = await _closed_by_server(reader)
        assert answer.startswith(b"HTTP/1.1 200")
        writer.close()


async def test_body_not_received_in_time_is_408() -> None:
    async with receiver_at(body_timeout=0.2) as (host, port, path):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n".encode()
            + b'{"eventId":'
        )
        answer = await _closed_by_server(reader)
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"body not received in time" in answer
        writer.close()


async def test_at_the_cap_the_oldest_stuck_connection_makes_room() -> None:
    async with receiver_at(max_connections=2) as (host, port, path):
        stuck = f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode()
        first_reader, first = await asyncio.open_connection(host, port)
        first.write(stuck)
        await first.drain()
        _, second = await asyncio.open_connection(host, port)
        second.write(stuck)
        await second.drain()
        async with aiohttp.ClientSession() as session:
            headers = {
                "Content-Type": "application/json",
                "X-SIPS-Webhook-Secret": HOOK_SECRET,
            }
            url = f"http://{host}:{port}{path}"
            async with session.post(url, data=BODY, headers=headers) as resp:
                assert resp.status == 200
        # the first (oldest) was closed to make room for the delivery
        assert await _closed_by_server(first_reader) == b""
        first.close()
        second.close()


class HoldingStore(MemoryStore):
    """A store whose record waits until ``unblock`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.unblock = asyncio.Event()

    async def record(self, update: OrderUpdate) -> Recorded:
        self.entered.set()
        await self.unblock.wait()
        return await super().record(update)


async def test_stop_lets_a_request_in_flight_finish_and_closes_idle_ones() -> None:
    store = HoldingStore()
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET), store=store)
    url = await receiver.start()
    target = URL(url)
    assert target.host is not None and target.port is not None
    idle_reader, idle = await asyncio.open_connection(target.host, target.port)
    async with aiohttp.ClientSession() as session:
        headers = {"Content-Type": "application/json"}
        posting = asyncio.create_task(session.post(url, data=BODY, headers=headers))
        await store.entered.wait()  # the handler is inside the store
        stopping = asyncio.create_task(receiver.stop())
        assert await _closed_by_server(idle_reader) == b""  # idle: closed at once
        assert not posting.done()
        store.unblock.set()
        async with await posting as resp:
            assert resp.status == 200
        await stopping
    idle.close()
    await receiver.aclose()
