"""Tracking and waiting, driven by real POSTs to a real receiver.

Replays, reordering, rejections, timeouts, 1,000 concurrent orders, closing,
cancelling, ``updates()``, ``wait_for()``, callbacks and the unclaimed bound.
Orders are attached with ``await client.orders.track()``; no SIPS host is needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from sips_async import (
    MemoryStore,
    OrderRejectedError,
    OrderStatus,
    OrderUpdate,
    OrderWaitTimeout,
    PendingOrder,
    SipsClient,
    SipsClientClosedError,
    WebhookConfig,
)
from sips_async._pending import Entry
from sips_async.webhooks import Tracker

from ._fake_sips import Reply, post
from .factories import CLIENT_ID, CLIENT_SECRET, HOOK_SECRET, event_body

UNUSED_HOST = "http://127.0.0.1:9"  # no SIPS call is made in this module


def make_client(store: MemoryStore | None = None) -> SipsClient:
    return SipsClient(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=UNUSED_HOST,
        webhook=WebhookConfig(secret=HOOK_SECRET),
        store=store,
    )


@pytest.fixture
async def client() -> AsyncIterator[SipsClient]:
    async with make_client() as sips:
        yield sips


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def tracker_of(client: SipsClient) -> Tracker:
    assert client.receiver is not None
    return client.receiver.tracker


async def hook(
    session: aiohttp.ClientSession, client: SipsClient, body: bytes
) -> Reply:
    url = client.webhook_url
    assert url is not None
    reply = await post(session, url, body)
    assert reply.status == 200, reply
    return reply


async def settle() -> None:
    """Let freshly created tasks run up to their first real suspension."""
    for _ in range(5):
        await asyncio.sleep(0)


# -- replays and order ----------------------------------------------------------


async def test_replay_is_recorded_once(
    client: SipsClient, session: aiohttp.ClientSession
) -> None:
    pending = await client.orders.track("txn-replay")
    body = event_body(transaction_id="txn-replay", event_id="e1")
    first = await hook(session, client, body)
    second = await hook(session, client, body)
    assert first.body == {"ok": True, "duplicate": False}
    assert second.body == {"ok": True, "duplicate": True}

    # Same eventId/type/status/time, different bytes: still the same event.
    resent = event_body(transaction_id="txn-replay", event_id="e1", note="resent")
    assert (await hook(session, client, resent)).body["duplicate"] is True

    assert len(pending.history) == 1
    assert pending.history[0].raw == body
    tracker = tracker_of(client)
    assert tracker.duplicates == 2
    assert tracker.received == 1

    # A new status under the same eventId is a new update, not a replay.
    moved = event_body(transaction_id="txn-replay", event_id="e1", status="Processed")
    assert (await hook(session, client, moved)).body["duplicate"] is False
    assert len(pending.history) == 2


async def test_older_update_does_not_move_status_back(
    client: SipsClient, session: aiohttp.ClientSession
) -> None:
    pending = await client.orders.track("txn-order")
    newer = event_body(
        transaction_id="txn-order",
        event_type="OU",
        event_id="e2",
        status="Shipment Created",
        when="2026-05-21T15:00:00",
    )
    older = event_body(
        transaction_id="txn-order",
        event_type="OU",
        event_id="e1",
        status="Processed",
        when="2026-05-21T09:00:00",
    )
    await hook(session, client, newer)
    await hook(session, client, older)

    assert pending.status is OrderStatus.SHIPMENT_CREATED
    assert pending.current is not None and pending.current.event_id == "e2"
    assert [u.event_id for u in pending.history] == ["e2", "e1"]
    assert pending.history[1].status is OrderStatus.PROCESSED


async def test_updates_by_srs_order_id_follow_the_transaction(
    client: SipsClient, session: aiohttp.ClientSession
) -> None:
    pending = await client.orders.track("txn-link")
    await hook(session, client, event_body(transaction_id="txn-link", order_id="555"))
    later = event_body(
        transaction_id=None,
        order_id="555",
        event_type="DU",
        event_id="d1",
        status="en route",
        when="2026-05-22T08:00:00",
    )
    await hook(session, client, later)
    assert [u.event_type for u in pending.history] == ["OA", "DU"]
    assert pending.order_id == "555"
    assert pending.status == "en route"


# -- outcomes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "check"),
    [
        ({"status": "Rejected"}, "event_status"),
        ({"status": "order DECLINED by branch"}, "event_status"),
        ({"status": "Accepted", "errorCode": "E042"}, "error_code"),
        ({"event_type": "OC", "status": "Cancelled"}, "event_type"),
    ],
    ids=["rejected", "declined", "error-code", "oc-before-oa"],
)
async def test_rejection_raises_with_the_update(
    client: SipsClient,
    session: aiohttp.ClientSession,
    kwargs: dict[str, str],
    check: str,
) -> None:
    txn = f"txn-reject-{check}"
    pending = await client.orders.track(txn)
    waiter = asyncio.create_task(pending.wait(timeout=5))
    await settle()
    body = event_body(transaction_id=txn, **kwargs)
    await hook(session, client, body)

    with pytest.raises(OrderRejectedError) as info:
        await waiter
    update = info.value.update
    assert update.raw == body
    assert update.transaction_id == txn
    if check == "error_code":
        assert update.error_code == "E042" and update.rejected
    elif check == "event_type":
        assert update.event_type == "OC" and not update.accepted
    else:
        assert update.rejected and not update.accepted
    assert update.is_final
    # A later wait() says the same, at once.
    with pytest.raises(OrderRejectedError):
        await pending.wait(timeout=5)


async def test_cancel_after_acknowledgement_is_not_a_rejection(
    client: SipsClient, session: aiohttp.ClientSession
) -> None:
    pending = await client.orders.track("txn-oa-oc")
    await hook(session, client, event_body(transaction_id="txn-oa-oc", event_id="a"))
    await hook(
        session,
        client,
        event_body(
            transaction_id="txn-oa-oc",
            event_type="OC",
            event_id="c",
            status="Cancelled",
            when="2026-05-21T00:00:00",
        ),
    )
    ack = await pending.wait(timeout=5)
    assert ack.event_id == "a" and ack.accepted
    assert pending.status is OrderStatus.CANCELLED and pending.is_final
    with pytest.raises(OrderRejectedError):
        await pending.wait_for(OrderStatus.DELIVERED, timeout=5)
    cancelled = await pending.wait_for(OrderStatus.CANCELLED, timeout=5)
    assert cancelled.event_id == "c"


async def test_wait_timeout_keeps_order_tracked(
    client: SipsClient, session: aiohttp.ClientSession
) -> None:
    pending = await client.orders.track("txn-slow")
    with pytest.raises(OrderWaitTimeout) as info:
        await pending.wait(timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    assert info.value.transaction_id == "txn-slow"
    assert info.value.timeout == 0.05
    with pytest.raises(OrderWaitTimeout):
        await pending.wait_for(OrderStatus.DELIVERED, timeout=0.01)

    waiter = asyncio.create_task(pending.wait(timeout=5))
    await settle()
    body = event_body(transaction_id="txn-slow")
    await hook(session, client, body)
    assert (await waiter).raw == body
    # Re-attaching sees the same order.
    again = await client.orders.track("txn-slow")
    assert [u.raw for u in again.history] == [body]
    assert (await again.wait(timeout=5)).raw == body


# -- scale --------------------------------------------------------------------------


async def test_thousand_concurrent_orders_no_cross_talk(client: SipsClient) -> None:
    n = 1000
    txns = [f"txn-{i:04d}-{i * 7919 % 10007}" for i in range(n)]
    pendings = [await client.orders.track(txn) for txn in txns]
    waiters = [asyncio.create_task(p.wait(timeout=20)) for p in pendings]
    await settle()
    url = client.webhook_url
    assert url is not None

    bodies = {
        txn: event_body(
            transaction_id=txn,
            order_id=str(100_000 + i),
            event_id=f"ev-{i}",
            status="Placed",
        )
        for i, txn in enumerate(txns)
    }
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def send(txn: str) -> int:
            async with http.post(
                url, data=bodies[txn], headers={"Content-Type": "application/json"}
            ) as resp:
                await resp.read()
                return resp.status

        # Posted in reverse order, all at once.
        statuses = await asyncio.gather(*(send(txn) for txn in reversed(txns)))
    assert set(statuses) == {200}

    async with asyncio.timeout(20):
        updates = await asyncio.gather(*waiters)
    for i, (txn, pending, update) in enumerate(
        zip(txns, pendings, updates, strict=True)
    ):
        assert update.transaction_id == txn
        assert update.event_id == f"ev-{i}"
        assert update.order_id == str(100_000 + i)
        assert update.raw == bodies[txn]
        assert pending.history == [update]
    assert tracker_of(client).received == n
    assert tracker_of(client).duplicates == 0


# -- closing, cancelling, many waiters -----------------------------------------------


async def _drain(pending: PendingOrder) -> list[OrderUpdate]:
    return [update async for update in pending.updates()]


async def test_close_wakes_every_waiter(session: aiohttp.ClientSession) -> None:
    client = await make_client().open()
    try:
        one = await client.orders.track("txn-close-1")
        two = await client.orders.track("txn-close-2")
        await hook(session, client, event_body(transaction_id="txn-close-2"))
        waiters: list[asyncio.Task[object]] = [
            asyncio.create_task(one.wait()),
            asyncio.create_task(one.wait(timeout=600)),
            asyncio.create_task(one.wait_for(OrderStatus.DELIVERED)),
            asyncio.create_task(one.wait_for(lambda u: u.event_type == "IU")),
            asyncio.create_task(_drain(one)),
            asyncio.create_task(two.wait_for(OrderStatus.DELIVERED)),
            asyncio.create_task(_drain(two)),
        ]
        await settle()
        assert not any(task.done() for task in waiters)
    finally:
        await client.aclose()

    async with asyncio.timeout(2):
        results = await asyncio.gather(*waiters, return_exceptions=True)
    for result in results:
        assert isinstance(result, SipsClientClosedError), result
    # After the close, new waits fail at once and no new order can be tracked.
    with pytest.raises(SipsClientClosedError):
        await one.wait(timeout=5)
    with pytest.raises(SipsClientClosedError):
        await client.orders.track("txn-close-3")


async def test_cancelling_one_waiter_leaves_the_others(
    client: SipsClient, session: aiohttp.ClientSession
) -> None:
    pending = await client.orders.track("txn-cancel")
    doomed = asyncio.create_task(pending.wait())
    kept = [asyncio.create_task(pending.wait(timeout=5)) for _ in range(3)]
    await settle()
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert not any(task.done() for task in kept)

    body = event_body(transaction_id="txn-cancel")
    await hook(session, client, body)
    async with asyncio.timeout(5):
        updates = await asyncio.gather(*kept)
    assert [u.raw for u in updates] == [body] * 3


async def test_timed_out_waits_leave_no_waiter_behind() -> None:
    # Each wait registers one future on the order's entry; a wait that times
    # out (or is cancelled) takes its future back, so retried waits never
    # pile up, and the one left waiting still wakes.
    from sips_async.webhooks._decode import decode_event

    tracker = Tracker()
    entry = await tracker.attach("txn-retry")
    pending = PendingOrder("txn-retry", tracker=tracker, entry=entry)
    for _ in range(5):
        with pytest.raises(OrderWaitTimeout):
            await pending.wait(timeout=0)
    assert _waiting(entry) == 0
    kept = asyncio.create_task(pending.wait(timeout=5))
    doomed = asyncio.create_task(pending.wait())
    await settle()
    assert _waiting(entry) == 2
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert _waiting(entry) == 1
    await tracker.record(decode_event(event_body(transaction_id="txn-retry")))
    async with asyncio.timeout(5):
        assert (await kept).transaction_id == "txn-retry"
    assert _waiting(entry) == 0
    await tracker.close()


async def test_the_tracker_holds_an_entry_while_a_handle_does() -> None:
    import gc

    from sips_async.webhooks._decode import decode_event

    tracker = Tracker()
    first = PendingOrder(
        "txn-held", tracker=tracker, entry=await tracker.attach("txn-held")
    )
    second = await tracker.attach("txn-held")
    assert second is first._entry  # one entry per order
    again = PendingOrder("txn-held", tracker=tracker, entry=second)
    del first
    gc.collect()
    # One handle left: updates still reach it, live.
    await tracker.record(
        decode_event(event_body(transaction_id="txn-held", event_id="a"))
    )
    assert [u.event_id for u in again.history] == ["a"]
    assert "tracked=1" in repr(tracker)
    del again, second
    gc.collect()
    assert "tracked=0" in repr(tracker)  # the last handle let it go
    await tracker.record(
        decode_event(event_body(transaction_id="txn-held", event_id="b"))
    )
    back = PendingOrder(
        "txn-held", tracker=tracker, entry=await tracker.attach("txn-held")
    )
    assert [u.event_id for u in back.history] == ["a", "b"]  # the store kept both
    await tracker.close()


def _waiting(entry: Entry) -> int:
    """How many futures ``entry`` holds for waiters."""
    waiters = entry._waiters
    if waiters is None:
        return 0
    return len(waiters) if isinstance(waiters, list) else 1


async def test_many_waiters_on_one_order_all_wake(
    client: SipsClient, session: aiohttp.ClientSession
) -> None:
    pending = await client.orders.track("txn-crowd")
    other = await client.orders.track("txn-crowd")  # a second handle on the same order
    waiters = [asyncio.create_task(pending.wait(timeout=5)) for _ in range(100)]
    waiters += [asyncio.create_task(other.wait(timeout=5)) for _ in range(100)]
    await settle()
    body = event_body(transaction_id="txn-crowd")
    await hook(session, client, body)
    async with asyncio.timeout(5):
        updates = await asyncio.gather(*waiters)
    assert {u.raw for u in updates} == {body}
    assert len(updates) == 200


async def test_updates_yields_past_then_live_and_ends_on_final(
    client: SipsClient, session: aiohttp.ClientSession
) -> None:
    txn = "txn-stream"
    pending = await client.orders.track(txn)
    await hook(session, client, event_body(transaction_id=txn, event_id="1"))

    seen: asyncio.Queue[OrderUpdate] = asyncio.Queue()

    async def consume() -> list[OrderUpdate]:
        out: list[OrderUpdate] = []
        async for update in pending.updates():
            out.append(update)
            seen.put_nowait(update)
        return out

    consumer = asyncio.create_task(consume())
    async with asyncio.timeout(5):
        assert (await seen.get()).event_id == "1"  # the past one first
        await hook(
            session,
            client,
            event_body(
                transaction_id=txn,
                event_id="2",
                event_type="OU",
                status="Shipment Created",
                when="2026-05-21T00:00:00",
            ),
        )
        assert (await seen.get()).event_id == "2"
        await hook(
            session,
            client,
            event_body(
                transaction_id=txn,
                event_id="3",
                event_type="DU",
                status="Delivered",
                when="2026-05-22T00:00:00",
            ),
        )
        streamed = await consumer
    assert [u.event_id for u in streamed] == ["1", "2", "3"]
    assert streamed[-1].is_final
    # Iterating again replays the history and ends on the final update at once.
    async with asyncio.timeout(5):
        assert [u.event_id for u in await _drain(pending)] == ["1", "2", "3"]


async def test_wait_for_status_text_and_predicate(
    client: SipsClient, session: aiohttp.ClientSession
) -> None:
    txn = "txn-wait-for"
    pending = await client.orders.track(txn)
    delivered = asyncio.create_task(pending.wait_for(OrderStatus.DELIVERED, timeout=5))
    by_text = asyncio.create_task(pending.wait_for("in review/invoice DEPT", timeout=5))
    free_text = asyncio.create_task(pending.wait_for("EN ROUTE", timeout=5))
    invoice = asyncio.create_task(
        pending.wait_for(lambda u: u.event_type == "IU", timeout=5)
    )
    await settle()

    steps: list[tuple[str, str, str]] = [
        ("OA", "Accepted", "a"),
        ("OU", "In Review/Invoice Dept", "b"),
        ("DU", "en route", "c"),
        ("IU", "Invoice Generated", "d"),
        ("DU", "Delivered", "e"),
    ]
    for i, (kind, status, event_id) in enumerate(steps):
        await hook(
            session,
            client,
            event_body(
                transaction_id=txn,
                event_type=kind,
                status=status,
                event_id=event_id,
                when=f"2026-05-2{i}T00:00:00",
            ),
        )
    async with asyncio.timeout(5):
        assert (await delivered).event_id == "e"
        assert (await by_text).status is OrderStatus.IN_REVIEW
        assert (await free_text).event_id == "c"
        assert (await invoice).event_id == "d"
    assert (await pending.wait(timeout=5)).event_id == "a"


# -- callbacks ------------------------------------------------------------------------


async def test_callbacks_once_per_new_update_and_failures_isolated(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client().open()
    receiver = client.receiver
    assert receiver is not None
    sync_seen: list[str] = []
    async_seen: list[str] = []
    async_done: asyncio.Queue[str] = asyncio.Queue()

    def on_sync(update: OrderUpdate) -> None:
        sync_seen.append(update.event_id)

    async def on_async(update: OrderUpdate) -> None:
        await asyncio.sleep(0)
        async_seen.append(update.event_id)
        async_done.put_nowait(update.event_id)

    def broken_sync(update: OrderUpdate) -> None:
        raise RuntimeError("sync callback broke")

    async def broken_async(update: OrderUpdate) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async callback broke")

    callbacks: list[Callable[[OrderUpdate], Awaitable[None] | None]] = [
        broken_sync,
        on_sync,
        broken_async,
        on_async,
    ]
    for callback in callbacks:
        assert receiver.on_update(callback) is callback

    try:
        with caplog.at_level(logging.ERROR, logger="sips_async"):
            pending = await client.orders.track("txn-cb")
            first = event_body(transaction_id="txn-cb", event_id="1")
            await hook(session, client, first)
            await hook(session, client, first)  # replay: no callback
            await hook(
                session,
                client,
                event_body(transaction_id="txn-cb", event_id="2", event_type="OU"),
            )
            assert sync_seen == ["1", "2"]  # called before the 200 went out
            async with asyncio.timeout(5):
                assert [await async_done.get(), await async_done.get()] == ["1", "2"]
                assert (await pending.wait()).event_id == "1"
    finally:
        await client.aclose()  # waits for the callbacks still running

    assert async_seen == ["1", "2"]
    failures = [r for r in caplog.records if "callback" in r.getMessage()]
    assert len(failures) == 4
    assert all(r.levelno == logging.ERROR and r.exc_info for r in failures)
    messages = sorted(str(r.exc_info[1]) for r in failures if r.exc_info)
    assert messages == ["async callback broke"] * 2 + ["sync callback broke"] * 2


# -- orders nobody waits on ------------------------------------------------------------


async def test_unclaimed_updates_are_kept_for_a_later_track(
    client: SipsClient, session: aiohttp.ClientSession
) -> None:
    early = event_body(transaction_id="txn-later", event_id="1")
    await hook(session, client, early)
    await hook(
        session,
        client,
        event_body(
            transaction_id="txn-later",
            event_id="2",
            event_type="OU",
            status="Processed",
            when="2026-05-21T00:00:00",
        ),
    )
    pending = await client.orders.track("txn-later")
    assert [u.event_id for u in pending.history] == ["1", "2"]
    assert pending.status is OrderStatus.PROCESSED
    assert (await pending.wait(timeout=5)).raw == early


async def test_unclaimed_bound_drops_oldest_with_warning(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_client(store=MemoryStore(max_unknown=2)) as client:
        claimed = await client.orders.track("txn-claimed")  # claimed: never dropped
        with caplog.at_level(logging.WARNING, logger="sips_async"):
            for txn in ("txn-claimed", "txn-a", "txn-b", "txn-c"):
                await hook(session, client, event_body(transaction_id=txn))
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "txn-a" in warnings[0].getMessage()

        assert (await client.orders.track("txn-a")).history == []
        assert len((await client.orders.track("txn-b")).history) == 1
        assert len((await client.orders.track("txn-c")).history) == 1
        assert len(claimed.history) == 1


async def test_a_tracked_order_is_kept_after_its_handle_is_gone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import gc

    from sips_async.webhooks import MemoryStore
    from sips_async.webhooks._decode import decode_event

    # No lease to release: the store keeps what was tracked until it is final,
    # whether or not a PendingOrder is still alive in this process.
    tracker = Tracker(MemoryStore(max_unknown=1))
    pending = PendingOrder("gc-a", tracker=tracker, entry=await tracker.attach("gc-a"))
    await tracker.record(decode_event(event_body(transaction_id="gc-a", order_id=None)))
    assert len(pending.history) == 1
    del pending
    gc.collect()
    with caplog.at_level(logging.DEBUG, logger="sips_async"):
        for n in range(3):  # orders nobody sent push each other out, not gc-a
            await tracker.record(
                decode_event(event_body(transaction_id=f"gc-{n}", order_id=None))
            )
    assert len(await tracker.store.history("gc-a")) == 1
    assert await tracker.store.history("gc-0") == []
    assert not any("gc-a" in r.getMessage() for r in caplog.records)
    await tracker.close()
