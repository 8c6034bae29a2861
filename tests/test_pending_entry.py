"""An order's entry and PendingOrder's waits, driven through a real Tracker.

Pins what the broader suites leave open: which update counts as current
(untimed ones, ties, naive times against a poll's), what ``add``/``load``
report and keep, and the outcomes ``wait()``/``wait_for()`` pick.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import sys
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from sips_async import (
    OrderRejectedError,
    OrderStatus,
    OrderUpdate,
    OrderWaitTimeout,
    PendingOrder,
    PollConfig,
    SipsClient,
    SipsClientClosedError,
    SipsConfigError,
    SipsValidationError,
    SubmitResult,
)
from sips_async._pending import Entry, Owner
from sips_async.stores import SqliteStore
from sips_async.webhooks import Tracker

from ._fake_sips import FakeSips
from .factories import CLIENT_ID, CLIENT_SECRET

UTC = dt.UTC
NOON = dt.datetime(2026, 5, 20, 12, 0, tzinfo=UTC)


def update(
    event_id: str,
    *,
    event_type: str = "OU",
    status: str | None = "Processed",
    at: dt.datetime | None = NOON,
    order_id: str | None = None,
    **extra: object,
) -> OrderUpdate:
    return OrderUpdate(
        event_id=event_id,
        event_type=event_type,
        event_status=status,
        status=OrderStatus.parse(status),
        transaction_id="T-1",
        order_id=order_id,
        occurred_at=at,
        **extra,  # type: ignore[arg-type]  # checked by msgspec
    )


def test_a_new_entry_is_open_and_not_loaded() -> None:
    entry = Entry("T-1")
    assert (entry.key, entry.loaded, entry.closed, entry.order_id) == (
        "T-1",
        False,
        False,
        None,
    )
    assert entry.current() is None


def test_add_reports_whether_anything_was_new() -> None:
    entry = Entry("T-1")
    assert entry.add([]) is False
    assert entry.add([update("1")]) is True
    assert entry.add([update("1")]) is False
    assert [u.event_id for u in entry.updates] == ["1"]


def test_load_keeps_what_arrived_during_the_read() -> None:
    entry = Entry("T-1")
    entry.add([update("late")])
    entry.load([update("early")])  # the read began before "late" was stored
    assert [u.event_id for u in entry.updates] == ["early", "late"]
    assert entry.loaded is True


def test_load_keeps_an_order_id_already_known() -> None:
    entry = Entry("T-1")
    entry.add([update("1", order_id="881")])
    entry.load([])
    assert entry.order_id == "881"


def test_an_untimed_update_is_current_while_nothing_timed_was_seen() -> None:
    entry = Entry("T-1")
    entry.add([update("1", at=None)])
    current = entry.current()
    assert current is not None
    assert current.event_id == "1"


def test_on_a_tie_the_later_arrival_is_current() -> None:
    entry = Entry("T-1")
    entry.add([update("1", status="Processed"), update("2", status="Shipment Created")])
    current = entry.current()
    assert current is not None
    assert current.event_id == "2"


def test_a_naive_time_is_utc_against_a_polls_received_at() -> None:
    entry = Entry("T-1")
    polled = update("p", at=None, source="poll", received_at=NOON)
    later_naive = update("w", at=dt.datetime(2026, 5, 20, 13, 0))
    entry.add([polled, later_naive])
    current = entry.current()
    assert current is not None
    assert current.event_id == "w"


async def pending_with(*updates: OrderUpdate) -> tuple[Tracker, PendingOrder]:
    tracker = Tracker()
    entry = await tracker.expect("T-1")
    for u in updates:
        await tracker.record(u)
    return tracker, PendingOrder("T-1", tracker=tracker, entry=entry)


async def test_wait_raises_on_an_error_code_that_is_not_final() -> None:
    tracker, pending = await pending_with(update("1", error_code="E42"))
    with pytest.raises(OrderRejectedError) as caught:
        await pending.wait(timeout=30)
    assert caught.value.update.error_code == "E42"
    await tracker.close()


async def test_wait_for_a_status_matches_its_text_spacing_aside() -> None:
    tracker, pending = await pending_with(update("1", status="In  Review/Invoice Dept"))
    got = await pending.wait_for(OrderStatus.IN_REVIEW, timeout=30)
    assert got.event_id == "1"
    await tracker.close()


@pytest.mark.parametrize("status", ["", "   "])
async def test_wait_for_an_empty_status_text_is_refused(status: str) -> None:
    tracker, pending = await pending_with(update("1", status=None))
    with pytest.raises(SipsValidationError, match="empty text"):
        await pending.wait_for(status, timeout=30)
    await tracker.close()


async def test_a_waiter_woken_by_close_is_told_which_order() -> None:
    tracker, pending = await pending_with()
    waiting = asyncio.ensure_future(pending.wait(timeout=30))
    await tracker.close()  # before or after the waiter blocks: the same answer
    with pytest.raises(SipsClientClosedError) as caught:
        await waiting
    assert str(caught.value) == "the client was closed while order T-1 was awaited"


async def test_wait_returns_a_final_update_when_the_acknowledgement_was_lost() -> None:
    tracker, pending = await pending_with(update("1", status="Delivered"))
    got = await pending.wait(timeout=30)
    assert got.event_id == "1"
    await tracker.close()


def test_a_polls_own_time_counts_over_when_it_was_received() -> None:
    # received_at stands in for a poll's time only when it carries none.
    polled = update(
        "p", at=NOON, source="poll", received_at=NOON + dt.timedelta(hours=2)
    )
    later = update("w", at=NOON + dt.timedelta(hours=1))
    entry = Entry("T-1")
    entry.add([polled, later])
    current = entry.current()
    assert current is not None
    assert current.event_id == "w"


async def test_a_handle_without_a_tracker_keeps_its_answer_and_refuses_to_wait() -> (
    None
):
    result = SubmitResult(message="Order Queued", order_id="SRS-7")
    pending = PendingOrder("T-0", result=result)
    assert pending.result is result
    assert (pending.order_id, pending.history, pending.status) == ("SRS-7", [], None)
    with pytest.raises(SipsConfigError, match="no webhook receiver"):
        await pending.wait(timeout=30)
    with pytest.raises(SipsConfigError, match="no webhook receiver"):
        async for _ in pending.updates():
            pass


async def queued(key: str = "T-1") -> Tracker:
    """A tracker whose MemoryStore holds order ``key`` but no entry for it."""
    tracker = Tracker()
    tracker.release(await tracker.expect(key))
    assert "tracked=0" in repr(tracker)
    return tracker


async def test_a_handle_without_an_entry_answers_from_the_store() -> None:
    tracker = await queued()
    await tracker.record(update("1", event_type="OA", order_id="SRS-1"))
    pending = PendingOrder("T-1", tracker=tracker)
    assert [u.event_id for u in pending.history] == ["1"]
    assert pending.order_id == "SRS-1"
    assert (await pending.wait(timeout=30)).event_id == "1"
    assert "tracked=0" in repr(tracker)  # answered from the store's row
    await tracker.close()


async def test_updates_of_a_handle_without_an_entry_hold_one_entry() -> None:
    tracker = await queued()
    await tracker.record(update("1", event_type="OA"))
    pending = PendingOrder("T-1", tracker=tracker)
    for _ in range(2):  # a second iteration reuses the entry of the first
        stream = pending.updates()
        assert isinstance(stream, AsyncGenerator)  # so it can be closed here
        first = await asyncio.wait_for(anext(stream), 30)  # bound, not a pause
        assert first.event_id == "1"
        assert "tracked=1" in repr(tracker)
        await stream.aclose()
    del pending, stream
    gc.collect()
    assert "tracked=0" in repr(tracker)  # the last handle let its entry go
    await tracker.close()


async def test_the_entry_lives_while_any_handle_holds_it() -> None:
    tracker = Tracker()
    entry = await tracker.expect("T-1")
    first = PendingOrder("T-1", tracker=tracker, entry=entry)
    second = PendingOrder("T-1", tracker=tracker, entry=entry)
    del entry, first
    gc.collect()
    assert "tracked=1" in repr(tracker)
    del second
    gc.collect()
    assert "tracked=0" in repr(tracker)
    await tracker.close()


async def test_closing_an_owner_ends_the_wait_that_made_the_entry() -> None:
    tracker = await queued()
    owner = Owner(tracker, shared=True)
    pending = PendingOrder._handed("T-1", None, owner, None)
    waiting = asyncio.ensure_future(pending.wait(timeout=30))
    for _ in range(100):  # turns of the loop until the waiter is parked
        if "tracked=1" in repr(tracker):
            break
        await asyncio.sleep(0)
    assert not waiting.done()
    owner.close()
    with pytest.raises(SipsClientClosedError, match="T-1"):
        await waiting
    # A handle of a closed owner makes no entry: it refuses at once.
    tracker.release(await tracker.expect("T-2"))
    later = PendingOrder._handed("T-2", None, owner, None)
    with pytest.raises(SipsClientClosedError, match="T-2"):
        await later.wait(timeout=30)
    with pytest.raises(SipsClientClosedError, match="T-2"):
        async for _ in later.updates():
            pass
    assert "tracked=1" in repr(tracker)  # T-1's only
    assert not tracker.closed  # the tracker serves the other clients
    await tracker.close()


async def test_a_handle_without_an_entry_names_its_order_once_the_tracker_closed() -> (
    None
):
    tracker = await queued()
    pending = PendingOrder("T-1", tracker=tracker)
    await tracker.close()
    message = "the client was closed while order T-1 was awaited"
    with pytest.raises(SipsClientClosedError) as caught:
        await pending.wait(timeout=30)
    assert str(caught.value) == message
    with pytest.raises(SipsClientClosedError) as caught:
        async for _ in pending.updates():
            pass
    assert str(caught.value) == message


async def test_the_repr_shows_the_order_status_and_count() -> None:
    tracker = await queued()
    await tracker.record(update("1", event_type="OA", order_id="SRS-1"))
    pending = PendingOrder("T-1", tracker=tracker)
    assert repr(pending) == (
        "<PendingOrder T-1 order_id=SRS-1 status=Processed updates=1>"
    )
    await tracker.close()


async def test_a_wait_that_blocks_holds_the_entry_once() -> None:
    tracker = Tracker()
    entry = await tracker.expect("T-1")
    pending = PendingOrder("T-1", tracker=tracker, entry=entry)
    del entry
    waiting = asyncio.ensure_future(pending.wait_for(OrderStatus.DELIVERED, timeout=30))
    await asyncio.sleep(0)  # a turn: the waiter runs until it blocks
    await tracker.record(update("1", status="Delivered"))
    assert (await waiting).event_id == "1"
    del pending, waiting
    gc.collect()
    assert "tracked=0" in repr(tracker)  # no second hold to outlive the handle
    await tracker.close()


async def durable(path: Path, *updates: OrderUpdate) -> Tracker:
    """A fresh tracker on a SQLite file that holds ``updates`` of order T-1."""
    writer = Tracker(SqliteStore(path))
    writer.release(await writer.expect("T-1"))
    for u in updates:
        await writer.record(u)
    await writer.close()
    tracker = Tracker(SqliteStore(path))
    await tracker.open()
    return tracker


async def test_a_first_wait_on_a_durable_store_reads_the_history(
    tmp_path: Path,
) -> None:
    tracker = await durable(tmp_path / "orders.db", update("1", event_type="OA"))
    pending = PendingOrder("T-1", tracker=tracker)  # no entry: nothing read yet
    assert (await pending.wait(timeout=30)).event_id == "1"
    assert "tracked=1" in repr(tracker)
    await tracker.close()


async def test_a_durable_history_without_a_match_keeps_the_wait_going(
    tmp_path: Path,
) -> None:
    tracker = await durable(tmp_path / "orders.db", update("1", event_type="OA"))
    pending = PendingOrder("T-1", tracker=tracker)
    # Whatever the timer's length, the outcome is the same: nothing matches.
    with pytest.raises(OrderWaitTimeout):
        await pending.wait_for(OrderStatus.DELIVERED, timeout=0.5)
    await tracker.close()


def test_a_read_of_a_new_order_marks_the_entry_loaded() -> None:
    entry = Entry("T-1")
    entry.load(())
    assert (entry.loaded, entry.updates, entry.order_id) == (True, (), None)


def test_the_order_id_is_the_first_one_any_update_carried() -> None:
    entry = Entry("T-1")
    entry.add([update("1", event_type="OA")])
    entry.add([update("2", order_id="SRS-2"), update("3", order_id="SRS-3")])
    assert entry.order_id == "SRS-2"
    entry.add([update("4")])  # one without an id changes nothing
    assert entry.order_id == "SRS-2"


async def test_a_cancelled_waiter_stays_cancelled_when_close_wakes_it() -> None:
    tracker = Tracker()
    entry = await tracker.expect("T-1")
    pending = PendingOrder("T-1", tracker=tracker, entry=entry)
    waiting = asyncio.ensure_future(pending.wait(timeout=30))
    await asyncio.sleep(0)  # a turn: the waiter blocks on its future
    waiting.cancel()
    await tracker.close()  # wakes the entry before the waiter gets to run
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert waiting.cancelled()


def test_dropping_odd_handles_raises_nothing_in_del(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unraised: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraised.append)
    with pytest.raises(TypeError):
        PendingOrder()  # type: ignore[call-arg]  # __del__ runs on a bare object
    loose = PendingOrder("T-1", entry=Entry("T-1"))  # an entry but no tracker
    del loose
    gc.collect()
    assert unraised == []


async def test_a_handle_built_with_a_poller_is_polled_while_waited_on() -> None:
    # Polls are due in an hour: the watch only parks, SRS is never asked.
    async with (
        FakeSips() as fake,
        SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=fake.url,
            poll=PollConfig(after=3600, every=3600),
        ) as client,
    ):
        owner = client.orders._owner
        tracker, poller = owner.tracker, owner.poller
        assert poller is not None
        tracker.release(await tracker.expect("T-1"))
        pending = PendingOrder("T-1", tracker=tracker, poller=poller)
        waiting = asyncio.ensure_future(pending.wait(timeout=30))
        for _ in range(100):  # turns of the loop until the watch runs
            if poller.active:
                break
            await asyncio.sleep(0)
        assert poller.active == 1
        await tracker.record(update("1", event_type="OA"))
        assert (await waiting).event_id == "1"
        assert poller.polls == 0


async def test_a_handle_shows_what_its_entry_heard_before_any_read(
    tmp_path: Path,
) -> None:
    tracker = await durable(tmp_path / "orders.db")
    entry = tracker.entry("T-1")  # on a durable store: not read yet
    assert not entry.loaded
    pending = PendingOrder("T-1", tracker=tracker, entry=entry)
    await tracker.record(update("1", event_type="OA", order_id="SRS-1"))
    assert [u.event_id for u in pending.history] == ["1"]
    await tracker.close()
