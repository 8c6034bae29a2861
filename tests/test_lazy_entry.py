"""A queued order on the in-process store: no entry until it is waited on.

With ``MemoryStore`` a :class:`PendingOrder` reads its updates from the
store's row until someone waits; these tests pin that nothing is lost or
hidden by it (through a real receiver, a fake SIPS on 127.0.0.1 and real
POSTs), and that closing one client of a shared receiver ends the waits on
its own handles only, even on an order another client follows too.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

import aiohttp
import pytest

from sips_async import (
    OrderStatus,
    SipsClient,
    SipsClientClosedError,
    WebhookConfig,
    WebhookReceiver,
)

from ._fake_sips import FakeSips, post
from .factories import CLIENT_ID, CLIENT_SECRET, HOOK_SECRET, event_body, make_order


def _client(fake: FakeSips, receiver: WebhookReceiver) -> SipsClient:
    return SipsClient(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=fake.url,
        webhook=receiver,
    )


@contextlib.asynccontextmanager
async def _served(
    fake: FakeSips,
) -> AsyncIterator[tuple[WebhookReceiver, SipsClient, str]]:
    """A receiver on 127.0.0.1, a client enqueueing through it, and its URL."""
    async with (
        WebhookReceiver(WebhookConfig(secret=HOOK_SECRET)) as receiver,
        _client(fake, receiver) as client,
    ):
        url = receiver.url
        assert url is not None
        yield receiver, client, url


async def _parked(receiver: WebhookReceiver, entries: int) -> None:
    """Yield to the loop until the tracker holds ``entries`` entries."""
    for _ in range(100):
        if f"tracked={entries}" in repr(receiver.tracker):
            return
        await asyncio.sleep(0)  # a turn of the loop, not a guess at time
    raise AssertionError(f"the tracker never held {entries}: {receiver.tracker!r}")


async def _deliver(url: str, body: bytes) -> None:
    async with aiohttp.ClientSession() as session:
        reply = await post(session, url, body)
    assert reply.status == 200


async def test_updates_before_any_wait_are_on_the_pending_order(
    fake: FakeSips,
) -> None:
    async with _served(fake) as (receiver, client, url):
        pending = await client.orders.enqueue(make_order())
        key = pending.transaction_id
        assert "tracked=0" in repr(receiver.tracker)  # no entry of its own
        assert (pending.history, pending.status, pending.is_final) == ([], None, False)
        await _deliver(url, event_body(transaction_id=key, order_id="SRS-9"))
        await _deliver(
            url,
            event_body(
                transaction_id=key,
                event_id="2",
                event_type="DU",
                status="Delivered",
                when="2026-05-20T15:00:00",
            ),
        )
        # Seen at once, without a wait: read from the store's row.
        assert [u.event_id for u in pending.history] == ["1", "2"]
        assert pending.status is OrderStatus.DELIVERED
        assert pending.is_final and pending.rejection is None
        assert pending.current is not None and pending.current.event_id == "2"
        ack = await pending.wait(timeout=5)
        assert ack.event_id == "1"
        assert "tracked=0" in repr(receiver.tracker)  # answered from the row
        done = await pending.wait_for(OrderStatus.DELIVERED, timeout=5)
        assert done.event_id == "2"


async def test_a_wait_makes_the_entry_and_dropping_the_order_frees_it(
    fake: FakeSips,
) -> None:
    async with _served(fake) as (receiver, client, url):
        pending = await client.orders.enqueue(make_order())
        key = pending.transaction_id
        waiting = asyncio.ensure_future(pending.wait(timeout=5))
        await _parked(receiver, 1)  # the waiter is parked: it holds an entry
        await _deliver(url, event_body(transaction_id=key))
        assert (await waiting).event_id == "1"
        assert [u.event_id for u in pending.history] == ["1"]
        del pending, waiting
        gc.collect()
        assert "tracked=0" in repr(receiver.tracker)


async def test_closing_one_client_ends_only_its_own_waits(fake: FakeSips) -> None:
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    async with receiver:
        url = receiver.url
        assert url is not None
        first, second = _client(fake, receiver), _client(fake, receiver)
        async with second:
            await first.open()
            mine = await first.orders.enqueue(make_order())
            idle = await first.orders.enqueue(make_order())  # never waited on
            # The other client follows the same order.
            theirs = await second.orders.track(mine.transaction_id)
            waiting_mine = asyncio.ensure_future(mine.wait(timeout=5))
            waiting_theirs = asyncio.ensure_future(theirs.wait(timeout=5))
            await _parked(receiver, 1)  # track() holds it; both wait on it
            await asyncio.sleep(0)  # a turn: both waiters are parked
            await first.aclose()
            with pytest.raises(SipsClientClosedError):
                await waiting_mine
            with pytest.raises(SipsClientClosedError):
                await idle.wait(timeout=5)
            assert not waiting_theirs.done()
            await _deliver(url, event_body(transaction_id=mine.transaction_id))
            assert (await waiting_theirs).accepted


async def test_waiting_after_the_client_closed_names_the_order(fake: FakeSips) -> None:
    # The client's own receiver: closing the client closes its tracker.
    client = SipsClient(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=fake.url,
        webhook=WebhookConfig(host="127.0.0.1", port=0, secret=HOOK_SECRET),
    )
    async with client:
        pending = await client.orders.enqueue(make_order())
    with pytest.raises(SipsClientClosedError, match=pending.transaction_id):
        await pending.wait(timeout=5)
    with pytest.raises(SipsClientClosedError, match=pending.transaction_id):
        async for _ in pending.updates():
            pass
