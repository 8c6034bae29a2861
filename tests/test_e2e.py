"""End to end through real sockets: client -> sandbox -> webhooks -> receiver."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator

import pytest

from sips_async import (
    OrderStatus,
    OrderUpdate,
    PoDetails,
    RetryConfig,
    SipsClient,
    WebhookConfig,
)
from sips_async.sandbox import Sandbox, SandboxConfig

from .factories import HOOK_SECRET, make_order

FAST_RETRY = RetryConfig(initial_delay=0.005, max_delay=0.05, max_tries=8)


async def _client(sandbox: Sandbox) -> SipsClient:
    client = SipsClient(
        client_id=sandbox.config.client_id,
        client_secret=sandbox.config.client_secret,
        base_url=sandbox.url,
        webhook=WebhookConfig(secret=HOOK_SECRET),
        retry=FAST_RETRY,
    )
    await client.open()
    sandbox.webhook_url = client.webhook_url
    return client


@pytest.fixture
async def faulty() -> AsyncIterator[tuple[Sandbox, SipsClient]]:
    config = SandboxConfig(
        error_rate=0.05,
        duplicate_rate=0.10,
        reorder_rate=0.10,
        step_delay=0.002,
        seed=20261122,
    )
    async with Sandbox(config, host="127.0.0.1", port=0) as sandbox:
        client = await _client(sandbox)
        try:
            yield sandbox, client
        finally:
            await client.aclose()


async def test_200_orders_under_faults_each_delivered_exactly_once(
    faulty: tuple[Sandbox, SipsClient],
) -> None:
    sandbox, client = faulty

    async def one(number: int) -> tuple[str, list[OrderUpdate]]:
        order = make_order(po_details=PoDetails(po_number=f"E2E-{number:04d}"))
        pending = await client.orders.enqueue(order)
        assert pending.result is not None and pending.result.queued
        seen = [update async for update in pending.updates()]
        return order.transaction_id, seen

    async with asyncio.timeout(60):
        results = await asyncio.gather(*(one(n) for n in range(200)))
    await sandbox.wait_idle()
    stats = sandbox.stats()

    assert len({txn for txn, _ in results}) == 200
    for txn, seen in results:
        delivered = [u for u in seen if u.status == OrderStatus.DELIVERED]
        assert len(delivered) == 1, (txn, seen)
        assert seen[-1].status == OrderStatus.DELIVERED
        assert all(u.transaction_id == txn for u in seen)
        replay_keys = [(u.event_id, u.event_type, u.event_status) for u in seen]
        assert len(set(replay_keys)) == len(replay_keys)
        # A retried enqueue never became a second order at SRS.
        assert stats.transactions[txn] == 1
    assert stats.orders == 200
    # The faults really happened, so the assertions above meant something.
    assert stats.faults["error"] > 0
    assert stats.faults["duplicate"] > 0
    assert stats.faults["reorder"] > 0
    receiver = client.receiver
    assert receiver is not None
    assert receiver.tracker.duplicates > 0


async def test_token_expiry_mid_run_is_invisible() -> None:
    async with Sandbox(SandboxConfig(step_delay=0.002)) as sandbox:
        client = await _client(sandbox)
        try:
            first = await client.orders.submit(make_order())
            sandbox.expire_tokens()
            second = await client.orders.submit(make_order())
            pending = await client.orders.enqueue(make_order())
            sandbox.expire_tokens()
            done = await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
            fetched = await client.orders.get(pending.order_id or "")
        finally:
            await client.aclose()
        stats = sandbox.stats()
    assert first.order_id and second.order_id and first.order_id != second.order_id
    assert done.status == OrderStatus.DELIVERED
    assert fetched.status == OrderStatus.DELIVERED
    assert stats.tokens_issued == 3


async def test_demo_command_runs_50_orders() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sips_async",
        "demo",
        "--fast",
        "--orders",
        "50",
        "--step-delay",
        "0.01",
        "--seed",
        "7",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(120):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    assert re.search(r"\|\s*orders\s*\|\s*50 \|", text)
    assert re.search(r"\|\s*delivered\s*\|\s*50 \|", text)
    assert re.search(r"p95 enqueue->delivered\s*\|\s*[0-9.]+ s \|", text)
    assert "all orders reached a final status" in text
    assert "Traceback" not in err.decode()
