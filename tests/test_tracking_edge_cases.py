"""Tracking edge cases: merges, eviction, shared receivers, late updates."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import aiohttp
import pytest

from sips_async import (
    MemoryStore,
    OrderRejectedError,
    OrderStatus,
    OrderUpdate,
    PendingOrder,
    SipsClient,
    SipsClientClosedError,
    WebhookConfig,
    WebhookReceiver,
)
from sips_async.webhooks import Tracker
from sips_async.webhooks._decode import decode_event

from ._fake_sips import FakeSips, post
from .factories import CLIENT_ID, CLIENT_SECRET, HOOK_SECRET, event_body, make_order


def _update(**fields: object) -> bytes:
    return event_body(**fields)  # type: ignore[arg-type]


async def _record(tracker: Tracker, **fields: object) -> bool:
    return await tracker.record(decode_event(_update(**fields)))


def _tracked(tracker: Tracker, key: str) -> PendingOrder:
    return PendingOrder(key, tracker=tracker, entry=tracker.entry(key))


async def test_held_order_keeps_history_when_others_fill_the_bound() -> None:
    tracker = Tracker(MemoryStore(max_unclaimed=1))
    pending = _tracked(tracker, "held")
    await _record(
        tracker,
        transaction_id="held",
        event_id="1",
        event_type="OA",
        status="Accepted",
        when="2026-01-01T10:00:00",
    )
    await _record(
        tracker,
        transaction_id="held",
        event_id="2",
        event_type="DU",
        status="Delivered",
        when="2026-01-01T11:00:00",
    )
    for n in range(3):  # unclaimed orders push the bound
        await _record(tracker, transaction_id=f"other-{n}", event_id=f"o{n}")
    await _record(
        tracker,
        transaction_id="held",
        event_id="3",
        event_type="IU",
        status="Invoice Generated",
        when="2026-01-01T12:00:00",
    )
    assert [u.event_id for u in pending.history] == ["1", "2", "3"]
    done = await pending.wait_for(OrderStatus.DELIVERED, timeout=1)
    assert done.event_id == "2"
    await tracker.close()


async def test_order_id_only_rejection_merged_in_arrival_order() -> None:
    tracker = Tracker()
    pending = _tracked(tracker, "txn-m")
    # The rejection names only SRS's order id; it arrives first.
    await _record(
        tracker,
        transaction_id=None,
        order_id="O-1",
        event_id="1",
        event_type="OA",
        status="Rejected",
    )
    await _record(
        tracker,
        transaction_id="txn-m",
        order_id="O-1",
        event_id="2",
        event_type="OU",
        status="Placed",
    )
    assert [u.event_id for u in pending.history] == ["1", "2"]
    with pytest.raises(OrderRejectedError) as info:
        await pending.wait(timeout=1)
    assert info.value.update.event_id == "1"
    assert pending.rejection is not None
    await tracker.close()


async def test_progress_before_acknowledgement_waits_for_the_oa() -> None:
    tracker = Tracker()
    pending = _tracked(tracker, "txn-r")
    await _record(
        tracker, transaction_id="txn-r", event_id="2", event_type="OU", status="Placed"
    )
    waiter = asyncio.ensure_future(pending.wait(timeout=5))
    await asyncio.sleep(0)
    assert not waiter.done()
    await _record(
        tracker,
        transaction_id="txn-r",
        event_id="1",
        event_type="OA",
        status="Accepted",
    )
    ack = await waiter
    assert ack.event_type == "OA" and ack.accepted
    await tracker.close()


async def test_aliases_are_bounded_with_the_histories() -> None:
    store = MemoryStore(max_unclaimed=5)
    tracker = Tracker(store)
    for n in range(100):
        key = f"txn-{n}"
        entry = tracker.entry(key)
        await tracker.link(key, f"Q-{n}")  # the queue GUID from the answer
        await _record(
            tracker,
            transaction_id=key,
            order_id=f"E-{n}",
            event_id=str(n),
            event_type="DU",
            status="Delivered",
        )
        del entry
    gc.collect()
    for n in range(5):  # fresh untracked orders push the old ones out
        await _record(tracker, transaction_id=f"late-{n}", event_id=f"l{n}")
    assert await store.find("E-0") is None
    assert await store.find("Q-0") is None
    assert len(store._aliases) <= 10  # two ids per kept order, at most
    await tracker.close()


async def test_updates_drains_what_arrived_with_the_final_one() -> None:
    tracker = Tracker()
    pending = _tracked(tracker, "txn-d")
    await _record(
        tracker,
        transaction_id="txn-d",
        event_id="1",
        event_type="OA",
        status="Accepted",
        when="2026-01-01T10:00:00",
    )
    await _record(
        tracker,
        transaction_id="txn-d",
        event_id="3",
        event_type="DU",
        status="Delivered",
        when="2026-01-01T12:00:00",
    )
    await _record(
        tracker,
        transaction_id="txn-d",
        event_id="2",
        event_type="OU",
        status="Shipment Created",
        when="2026-01-01T11:00:00",
    )
    seen = [u.event_id async for u in pending.updates()]
    assert seen == ["1", "3", "2"]
    assert pending.status == OrderStatus.DELIVERED
    await tracker.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeSips]:
    async with FakeSips() as server:
        yield server


async def test_shared_receiver_survives_one_client_closing(fake: FakeSips) -> None:
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    async with receiver:
        url = receiver.url
        assert url is not None
        first = SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=fake.url,
            webhook=receiver,
        )
        second = SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=fake.url,
            webhook=receiver,
        )
        async with second:
            await first.open()
            mine = await first.orders.enqueue(make_order())
            theirs = await second.orders.enqueue(make_order())
            waiting = asyncio.ensure_future(mine.wait(timeout=5))
            await asyncio.sleep(0)
            await first.aclose()
            with pytest.raises(SipsClientClosedError):
                await waiting
            # The receiver and the other client go on.
            later = await second.orders.enqueue(make_order())
            async with aiohttp.ClientSession() as session:
                for pending in (theirs, later):
                    reply = await post(
                        session,
                        url,
                        _update(transaction_id=pending.transaction_id, event_id="ack"),
                    )
                    assert reply.status == 200
            assert (await theirs.wait(timeout=5)).accepted
            assert (await later.wait(timeout=5)).accepted


async def test_missing_content_type_is_decoded_but_form_is_refused() -> None:
    async with WebhookReceiver(WebhookConfig(secret=HOOK_SECRET)) as receiver:
        url = receiver.url
        assert url is not None
        pending = _tracked(receiver.tracker, "txn-ct")
        body = _update(transaction_id="txn-ct")
        async with aiohttp.ClientSession(skip_auto_headers=["Content-Type"]) as s:
            async with s.post(url, data=body) as resp:
                assert resp.status == 200
            async with s.post(
                url,
                data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ) as resp:
                assert resp.status == 415
        assert (await pending.wait(timeout=1)).transaction_id == "txn-ct"


class _RemoteLikeStore:
    """A store that is not a MemoryStore (as SQLite or Redis would be)."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.released: list[str] = []
        self.released_event = asyncio.Event()

    async def claim(self, key: str) -> list[OrderUpdate]:
        return await self.inner.claim(key)

    async def release(self, key: str) -> None:
        self.released.append(key)
        self.released_event.set()
        await self.inner.release(key)

    async def append(self, key: str, update: OrderUpdate) -> bool:
        return await self.inner.append(key, update)

    async def history(self, key: str) -> list[OrderUpdate]:
        return await self.inner.history(key)

    async def link(self, key: str, order_id: str) -> list[OrderUpdate]:
        return await self.inner.link(key, order_id)

    async def find(self, order_id: str) -> str | None:
        return await self.inner.find(order_id)

    async def close(self) -> None:
        await self.inner.close()


async def test_other_stores_are_told_when_nobody_holds_an_order() -> None:
    store = _RemoteLikeStore()
    tracker = Tracker(store)
    entry = await tracker.expect("remote-1")  # claimed in the store
    pending = PendingOrder("remote-1", tracker=tracker, entry=entry)
    assert store.released == []
    del entry, pending
    gc.collect()
    await asyncio.wait_for(store.released_event.wait(), timeout=5)
    assert store.released == ["remote-1"]
    await tracker.close()
