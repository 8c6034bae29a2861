"""The tracker on its own: opening, closing, settling, replays and callback failures.

Each test drives a real :class:`MemoryStore` (a subclass where a test needs a
store that is slow to open or fails on cue) through the tracker's public
methods; waits are on events, never on time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from sips_async import OrderUpdate, SipsClientClosedError, SipsStoreError
from sips_async.stores import Change, MemoryStore, OrderState, SqliteStore
from sips_async.webhooks import Tracker
from sips_async.webhooks._decode import decode_event

from .factories import event_body


def update(txn: str = "T-1", event_id: str = "1", **fields: str) -> OrderUpdate:
    return decode_event(event_body(transaction_id=txn, event_id=event_id, **fields))


class CountingStore(MemoryStore):
    """Counts opens; the first ``fail_opens`` of them fail; opens wait on ``gate``."""

    def __init__(self, *, fail_opens: int = 0) -> None:
        super().__init__()
        self.opens = 0
        self.fail_opens = fail_opens
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()
        self.open_finished = False
        self.open_finished_at_close: bool | None = None
        self.on_close: Callable[[], None] | None = None

    async def open(self) -> None:
        self.opens += 1
        self.entered.set()
        await self.gate.wait()
        if self.opens <= self.fail_opens:
            raise SipsStoreError("store unavailable")
        await super().open()
        self.open_finished = True

    async def close(self) -> None:
        self.open_finished_at_close = self.open_finished
        if self.on_close is not None:
            self.on_close()
        await super().close()


class FailingHistory(MemoryStore):
    """history() fails on cue, setting ``failed`` as it raises."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = False
        self.failed = asyncio.Event()

    async def history(self, key: str) -> list[OrderUpdate]:
        if self.fail:
            self.failed.set()
            raise SipsStoreError("disk on fire")
        return await super().history(key)


async def test_repr_and_closed_say_whether_it_is_closed() -> None:
    tracker = Tracker()
    before = tracker.closed
    assert repr(tracker) == "<Tracker tracked=0 received=0 duplicates=0>"
    await tracker.close()
    assert (before, tracker.closed) == (False, True)
    assert repr(tracker) == "<Tracker tracked=0 received=0 duplicates=0 closed>"


async def test_a_closed_tracker_refuses_with_a_clear_message() -> None:
    tracker = Tracker()
    await tracker.close()
    with pytest.raises(SipsClientClosedError, match=r"^the order tracker is closed$"):
        await tracker.open()
    with pytest.raises(SipsClientClosedError, match=r"^the order tracker is closed$"):
        tracker.entry("T-1")


async def test_concurrent_opens_open_the_store_once() -> None:
    store = CountingStore()
    tracker = Tracker(store)
    await asyncio.gather(tracker.open(), tracker.open(), tracker.open())
    await tracker.open()
    assert store.opens == 1
    await tracker.close()


async def test_a_failed_open_is_retried_by_the_next_call() -> None:
    store = CountingStore(fail_opens=1)
    tracker = Tracker(store)
    with pytest.raises(SipsStoreError):
        await tracker.open()
    await tracker.open()
    assert store.opens == 2
    assert await tracker.record(update())
    await tracker.close()


async def test_close_waits_for_an_open_in_flight() -> None:
    store = CountingStore()
    store.gate.clear()
    tracker = Tracker(store)
    opening = asyncio.ensure_future(tracker.open())
    await store.entered.wait()  # the open has started and waits on the gate
    store.gate.set()
    await tracker.close()
    assert store.open_finished_at_close is True
    await opening


async def test_close_absorbs_an_open_in_flight_that_fails() -> None:
    store = CountingStore(fail_opens=1)
    store.gate.clear()
    tracker = Tracker(store)
    opening = asyncio.ensure_future(tracker.open())
    await store.entered.wait()
    store.gate.set()
    await tracker.close()  # does not raise the open's error
    assert store.open_finished_at_close is False
    with pytest.raises(SipsStoreError):
        await opening


async def test_expect_writes_the_order_with_its_po_number() -> None:
    tracker = Tracker()
    entry = await tracker.expect("T-1", po_number="PO-7")
    assert entry.key == "T-1"
    row = await tracker.store.get("T-1")
    assert row is not None
    assert (row.po_number, row.state) == ("PO-7", OrderState.SENDING)
    await tracker.close()


async def test_settle_records_the_error_and_the_order_id() -> None:
    tracker = Tracker()
    entry = await tracker.expect("T-1")
    await tracker.settle("T-1", OrderState.UNCERTAIN, order_id="881", error="timed out")
    row = await tracker.store.get("T-1")
    assert row is not None
    assert (row.state, row.order_id, row.error) == (
        OrderState.UNCERTAIN,
        "881",
        "timed out",
    )
    assert entry.order_id == "881"
    await tracker.close()


async def test_settle_keeps_an_order_id_already_known() -> None:
    tracker = Tracker()
    entry = await tracker.expect("T-1")
    await tracker.record(update(order_id="from-update"))
    assert entry.order_id == "from-update"
    await tracker.settle("T-1", OrderState.QUEUED, order_id="881")
    assert entry.order_id == "from-update"
    await tracker.close()


async def test_load_reads_the_history_once(tmp_path: Path) -> None:
    # A durable store: the entry starts unloaded and load() reads it once.
    store = SqliteStore(tmp_path / "orders.db")
    writer = Tracker(store)
    await writer.expect("T-2")
    await writer.record(update("T-2", "9"))
    reader = Tracker(store)
    entry = reader.entry("T-2")
    loaded_before = entry.loaded
    await reader.load(entry)
    assert (loaded_before, entry.loaded) == (False, True)
    assert [u.event_id for u in entry.updates] == ["9"]
    # Loaded already: a second load does not read the store again.
    entry.updates = ()
    await reader.load(entry)
    assert entry.updates == ()
    await writer.close()


async def test_an_in_process_store_loads_an_entry_when_it_is_made() -> None:
    store = MemoryStore()
    writer = Tracker(store)
    await writer.expect("T-2")
    await writer.record(update("T-2", "9"))
    reader = Tracker(store)
    entry = reader.entry("T-2")
    assert entry.loaded
    assert [u.event_id for u in entry.updates] == ["9"]
    assert reader.peek("T-2") == entry.updates
    assert reader.peek("T-3") == ()
    await writer.close()


async def test_a_replay_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    tracker = Tracker()
    await tracker.expect("T-1")
    assert await tracker.record(update(event_id="7"))
    with caplog.at_level(logging.DEBUG, logger="sips_async"):
        assert not await tracker.record(update(event_id="7"))
    assert (tracker.received, tracker.duplicates) == (1, 1)
    assert "replayed update 7 for T-1 dropped" in caplog.messages
    await tracker.close()


async def test_a_failing_callback_is_logged_with_its_name_and_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = Tracker()
    await tracker.expect("T-1")
    finished = asyncio.Event()

    def sync_boom(u: OrderUpdate) -> None:
        raise RuntimeError("sync boom")

    async def async_boom(u: OrderUpdate) -> None:
        finished.set()
        raise RuntimeError("async boom")

    tracker.on_update(sync_boom)
    tracker.on_update(async_boom)
    with caplog.at_level(logging.ERROR, logger="sips_async"):
        await tracker.record(update())
        await finished.wait()
        await tracker.close()  # finishes the async callback
    failures = [r for r in caplog.records if r.message.startswith("update callback")]
    assert [r.getMessage() for r in failures] == [
        f"update callback {sync_boom!r} failed",
        f"update callback {async_boom!r} failed",
    ]
    assert [str(r.exc_info[1]) for r in failures if r.exc_info] == [
        "sync boom",
        "async boom",
    ]


async def test_close_finishes_callbacks_before_closing_the_store() -> None:
    store = CountingStore()
    tracker = Tracker(store)
    await tracker.expect("T-1")
    done: list[str] = []

    async def slow(u: OrderUpdate) -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        done.append(u.event_id)

    seen_at_close: list[list[str]] = []
    store.on_close = lambda: seen_at_close.append(list(done))
    tracker.on_update(slow)
    await tracker.record(update())
    await tracker.close()
    assert seen_at_close == [["1"]]


async def test_a_failed_reread_is_logged_and_waiters_keep_waiting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FailingHistory()
    tracker = Tracker(store)
    entry = await tracker.expect("T-1")
    await tracker.record(update())
    changed = entry.waiter()  # what a waiting caller awaits
    store.fail = True
    with caplog.at_level(logging.WARNING, logger="sips_async"):
        store.notify(Change("T-1", reload=True))
        await store.failed.wait()
        store.fail = False
        # record() waits for the re-read in flight for its order.
        assert not await tracker.record(update())
    assert "could not re-read order T-1: disk on fire" in caplog.messages
    assert not changed.done()  # nobody woken by a re-read that failed
    entry.forget(changed)
    assert [u.event_id for u in entry.updates] == ["1"]
    await tracker.close()
