"""MemoryStore's own bounds: the per-order update cap, unknown orders, retention.

The protocol suite (tests/test_store_protocol.py) covers what every store
shares; these pin what only the bounds of the in-memory store say and log.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from sips_async import OrderStatus, OrderUpdate
from sips_async.stores import MemoryStore, OrderState
from sips_async.stores._memory import _Order, _Row

UTC = dt.UTC


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def update(
    event_id: str, *, tx: str | None = "tx-1", order_id: str | None = None, **extra: str
) -> OrderUpdate:
    return OrderUpdate(
        event_id=event_id,
        event_type=extra.get("event_type", "OU"),
        event_status=extra.get("status", "Processed"),
        status=OrderStatus.parse(extra.get("status", "Processed")),
        transaction_id=tx,
        order_id=order_id,
        occurred_at=dt.datetime(2026, 5, 20, 14, 0, tzinfo=UTC),
    )


async def test_an_update_past_the_cap_is_refused_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore(max_updates=2)
    await store.begin("tx-1")
    await store.record(update("a"))
    await store.record(update("b"))
    with caplog.at_level(logging.WARNING, logger="sips_async"):
        refused = await store.record(update("c"))
    assert (refused.key, refused.new) == ("tx-1", False)
    assert [u.event_id for u in await store.history("tx-1")] == ["a", "b"]
    assert caplog.messages == [
        "dropped update c of order tx-1: it has 2 updates already"
    ]


async def test_the_oldest_unknown_order_is_dropped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore(max_unknown=1)
    await store.record(update("a", tx=None, order_id="A"))
    with caplog.at_level(logging.WARNING, logger="sips_async"):
        await store.record(update("b", tx=None, order_id="B"))
    assert await store.history("order:A") == []
    assert [u.event_id for u in await store.history("order:B")] == ["b"]
    assert caplog.messages == [
        "dropped updates of unknown order order:A (more than 1 unknown orders)"
    ]


async def test_a_linked_orphan_is_no_longer_unknown() -> None:
    store = MemoryStore()
    await store.record(update("a", tx=None, order_id="A"))
    assert repr(store) == "<MemoryStore orders=1 unknown=1>"
    await store.begin("tx-1")
    await store.record(update("b", tx="tx-1", order_id="A"))
    assert repr(store) == "<MemoryStore orders=1 unknown=0>"


async def test_a_finished_order_is_dropped_exactly_at_its_retention(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store = MemoryStore(retention=10, clock=clock)
    await store.begin("tx-1")
    await store.record(update("done", status="Delivered"))
    clock.now += 9.5
    await store.begin("tx-2")
    assert await store.get("tx-1") is not None
    clock.now += 0.5  # exactly 10 s after the final update
    with caplog.at_level(logging.WARNING, logger="sips_async"):
        await store.begin("tx-3")
    assert await store.get("tx-1") is None
    assert caplog.messages == [
        "dropped finished order tx-1 (kept 10 s after its final update)"
    ]


async def test_a_failing_change_listener_is_logged_and_the_rest_still_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    told: list[str] = []

    def broken(change: object) -> None:
        raise RuntimeError("listener boom")

    store.subscribe(broken)
    store.subscribe(lambda change: told.append(change.key))
    with caplog.at_level(logging.ERROR, logger="sips_async"):
        await store.record(update("a"))
    assert told == ["tx-1"]
    [record] = caplog.records
    assert record.getMessage() == f"store change listener {broken!r} failed"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "listener boom"


async def test_outstanding_reads_each_order_as_it_lists_it() -> None:
    # Orders dropped while the listing is under way are not listed: one gone,
    # one gone and back as an unknown order's updates.
    clock = Clock()
    store = MemoryStore(retention=0, clock=clock)
    for key in ("o1", "o2", "o3", "o4"):
        clock.now += 1
        await store.begin(key)
    listing = store.outstanding()
    first = await anext(listing)
    await store.record(update("done-2", tx="o2", status="Delivered"))
    await store.record(update("done-3", tx="o3", status="Delivered"))
    await store.record(update("late-3", tx="o3"))
    rest = [row.transaction_id async for row in listing]
    assert [first.transaction_id, *rest] == ["o1", "o4"]
    assert await store.get("o2") is None
    assert await store.get("o3") is None


async def test_a_queued_order_stays_a_row_until_it_needs_more() -> None:
    # A pending order's row is five fields (_Row) for as long as SRS's answers
    # fit: its order id and one queue id, the same or not, given again.
    store = MemoryStore()
    answers = {"same": ("S-1", "S-1"), "two": ("O-2", "Q-2"), "queue": (None, "Q-3")}
    for key, (order_id, queue_id) in answers.items():
        await store.begin(key)
        for _ in range(2):
            await store.settle(
                key, OrderState.QUEUED, order_id=order_id, queue_id=queue_id
            )
            assert type(store._orders[key]) is _Row, key
    # A failure, a settled fate, another queue id, an update: an _Order.
    await store.settle("same", OrderState.UNCERTAIN, error="reset")
    await store.settle("two", OrderState.QUEUED, queue_id="Q-9")
    await store.record(update("u", tx="queue"))
    await store.begin("placed")
    await store.settle("placed", OrderState.PLACED, order_id="P-1")
    for key in ("same", "two", "queue", "placed"):
        assert type(store._orders[key]) is _Order, key
    # One linked id is kept as the string itself, not a tuple of one.
    same = store._orders["same"]
    assert isinstance(same, _Order) and same.aliases == "S-1"
    for srs_id, key in (("S-1", "same"), ("Q-2", "two"), ("Q-9", "two")):
        got = await store.record(update(f"by-{srs_id}", tx=None, order_id=srs_id))
        assert got.key == key, srs_id


def _kind(store: MemoryStore, key: str) -> type:
    return type(store._orders[key])


async def test_a_row_turned_full_by_an_update_keeps_its_fields() -> None:
    store = MemoryStore()
    await store.begin("tx-1", po_number="PO-1")
    await store.settle("tx-1", OrderState.QUEUED, order_id="O-1", queue_id="Q-1")
    assert _kind(store, "tx-1") is _Row
    await store.record(update("u"))
    assert _kind(store, "tx-1") is _Order
    got = await store.get("tx-1")
    assert got is not None
    assert (got.po_number, got.order_id, got.queue_id) == ("PO-1", "O-1", "Q-1")
    assert got.state is OrderState.QUEUED


async def test_a_full_order_placed_later_starts_its_retention_then() -> None:
    clock = Clock()
    store = MemoryStore(retention=10, clock=clock)
    await store.begin("tx-1")
    await store.record(update("u"))  # not final: an _Order, no retention yet
    assert type(store._orders["tx-1"]) is _Order
    clock.now += 100
    await store.settle("tx-1", OrderState.PLACED, order_id="O-1")
    clock.now += 9.5
    await store.begin("tx-2")
    assert await store.get("tx-1") is not None
    clock.now += 0.5
    await store.begin("tx-3")
    assert await store.get("tx-1") is None


async def test_a_full_order_settled_uncertain_stays_outstanding() -> None:
    store = MemoryStore(retention=10, clock=Clock())
    await store.begin("tx-1")
    await store.record(update("u"))
    await store.settle("tx-1", OrderState.UNCERTAIN, error="reset")
    listed = [o.transaction_id async for o in store.outstanding()]
    assert listed == ["tx-1"]


@pytest.mark.parametrize("queued_first", [False, True])
async def test_a_dropped_order_releases_its_srs_id(queued_first: bool) -> None:
    # Once a placed order is dropped at its retention, an update naming its
    # SRS id is an unknown order's again, not routed to the dropped key.
    clock = Clock()
    store = MemoryStore(retention=10, clock=clock)
    await store.begin("tx-1")
    if queued_first:
        await store.settle("tx-1", OrderState.QUEUED, order_id="O-1")
    await store.settle("tx-1", OrderState.PLACED, order_id="O-1")
    clock.now += 10
    await store.begin("tx-2")
    assert await store.get("tx-1") is None
    got = await store.record(update("late", tx=None, order_id="O-1"))
    assert got.key == "order:O-1"
