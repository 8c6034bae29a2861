"""Tracking edge cases: merges, eviction, shared receivers, late updates."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from sips_async import (
    MemoryStore,
    OrderRejectedError,
    OrderStatus,
    PendingOrder,
    SipsClient,
    SipsClientClosedError,
    WebhookConfig,
    WebhookReceiver,
)
from sips_async.stores import EVERYTHING, Change
from sips_async.webhooks import Tracker
from sips_async.webhooks._decode import decode_event

from ._fake_sips import FakeSips, post
from .factories import CLIENT_ID, CLIENT_SECRET, HOOK_SECRET, event_body, make_order


def _update(**fields: object) -> bytes:
    return event_body(**fields)  # type: ignore[arg-type]


async def _record(tracker: Tracker, **fields: object) -> bool:
    return await tracker.record(decode_event(_update(**fields)))


async def _tracked(tracker: Tracker, key: str) -> PendingOrder:
    return PendingOrder(key, tracker=tracker, entry=await tracker.attach(key))


async def test_held_order_keeps_history_when_others_fill_the_bound() -> None:
    tracker = Tracker(MemoryStore(max_unknown=1))
    pending = await _tracked(tracker, "held")
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
    for n in range(3):  # orders nobody sent push the bound
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
    pending = await _tracked(tracker, "txn-m")
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
    pending = await _tracked(tracker, "txn-r")
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
    store = MemoryStore(max_unknown=5)
    tracker = Tracker(store)
    for n in range(100):  # orders nobody here sent, each naming SRS's id
        await _record(
            tracker,
            transaction_id=f"txn-{n}",
            order_id=f"E-{n}",
            event_id=str(n),
            event_type="DU",
            status="Delivered",
        )
    # The oldest were dropped with their aliases: SRS's id alone no longer
    # reaches them; the kept ones are still reached by it.
    gone = await store.record(
        decode_event(_update(transaction_id=None, order_id="E-0", event_id="x"))
    )
    kept = await store.record(
        decode_event(_update(transaction_id=None, order_id="E-99", event_id="y"))
    )
    assert (gone.key, kept.key) == ("order:E-0", "txn-99")
    await tracker.close()


async def test_updates_drains_what_arrived_with_the_final_one() -> None:
    tracker = Tracker()
    pending = await _tracked(tracker, "txn-d")
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
        pending = await _tracked(receiver.tracker, "txn-ct")
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


async def test_changes_the_store_reports_from_elsewhere_wake_waiters() -> None:
    # What a Redis store does for updates another instance recorded: the
    # tracker hears only the change, never a record() call of its own.
    store = MemoryStore()
    tracker = Tracker(store)
    pending = await _tracked(tracker, "txn-remote")
    waiter = asyncio.ensure_future(pending.wait(timeout=5))
    await asyncio.sleep(0)
    remote = decode_event(_update(transaction_id="txn-remote", event_id="r1"))
    store.notify(Change("txn-remote", (remote,)))
    assert (await waiter).event_id == "r1"
    assert tracker.received == 0  # not recorded here
    await tracker.close()


class _DeafStore(MemoryStore):
    """Tells nobody while ``deaf`` (as a Redis link that is down)."""

    deaf = False

    def notify(self, change: Change) -> None:
        if not self.deaf:
            super().notify(change)


async def test_a_reload_everything_change_rereads_every_held_order() -> None:
    store = _DeafStore()
    tracker = Tracker(store)
    held = [await _tracked(tracker, f"txn-all-{n}") for n in range(3)]
    store.deaf = True  # written while nobody could hear of it
    for n in range(3):
        await store.record(
            decode_event(_update(transaction_id=f"txn-all-{n}", event_id=f"a{n}"))
        )
    store.deaf = False
    assert all(p.history == [] for p in held)
    store.notify(Change(EVERYTHING, reload=True))
    acks = await asyncio.gather(*(p.wait(timeout=5) for p in held))
    assert [a.event_id for a in acks] == ["a0", "a1", "a2"]
    await tracker.close()
