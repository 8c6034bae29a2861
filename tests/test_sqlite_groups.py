"""SqliteStore's group commit: the writes queued while a group is in flight.

Every write that arrives while a commit is in flight joins the next group
(one transaction on the connection's thread). These tests hold a group on
that thread with events, never with sleeps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest

from sips_async import OrderStatus, OrderUpdate, SipsStoreError
from sips_async.stores import SqliteStore

UTC = dt.UTC


def update(tx: str, event_id: str) -> OrderUpdate:
    return OrderUpdate(
        event_id=event_id,
        event_type="OU",
        event_status="Processed",
        status=OrderStatus.parse("Processed"),
        transaction_id=tx,
        po_number="PO-1",
        occurred_at=dt.datetime(2026, 5, 20, 14, 0, tzinfo=UTC),
        received_at=dt.datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC),
        raw=b'{"eventId":"%s"}' % event_id.encode(),
    )


def break_begin(
    monkeypatch: pytest.MonkeyPatch, *, hold: threading.Event | None = None
) -> threading.Event:
    """``begin("bad")`` raises (a bug); with ``hold``, only once it is set.

    Returns an event set (on the connection's thread) when the op starts.
    """
    started = threading.Event()
    begin = SqliteStore._op_begin

    def broken(self: SqliteStore, db: Any, now: float, key: str, *rest: Any) -> Any:
        if key == "bad":
            started.set()
            if hold is not None:
                assert hold.wait(30)  # a guard: never a hung thread
            raise RuntimeError("a bug")
        return begin(self, db, now, key, *rest)

    monkeypatch.setattr(SqliteStore, "_op_begin", broken)
    return started


def hold(
    monkeypatch: pytest.MonkeyPatch, name: str, key: str | None = None
) -> tuple[threading.Event, threading.Event]:
    """Hold ``SqliteStore.<name>`` on the connection's thread until released.

    With ``key``, only the call for that key (an ``_op_*``'s third argument).
    Returns ``(started, release)``: set on the thread when the call starts,
    and the event it waits for.
    """
    started, release = threading.Event(), threading.Event()
    real = getattr(SqliteStore, name)

    def held(self: SqliteStore, *args: Any) -> Any:
        if key is None or args[2] == key:
            started.set()
            assert release.wait(30)  # a guard: never a hung thread
        return real(self, *args)

    monkeypatch.setattr(SqliteStore, name, held)
    return started, release


async def test_a_group_of_records_and_other_writes_keeps_them_all(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "orders.db")
    await store.open()
    try:
        await store.begin("k1")
        await store.begin("k2")
        got = await asyncio.gather(  # one group: record, begin, record, record
            store.record(update("k1", "a")),
            store.begin("k3"),
            store.record(update("k2", "b")),
            store.record(update("k3", "c")),
        )
        assert [g.new for g in (got[0], got[2], got[3])] == [True, True, True]
        for key, event in (("k1", "a"), ("k2", "b"), ("k3", "c")):
            assert [u.event_id for u in await store.history(key)] == [event]
    finally:
        await store.close()


async def test_writes_queued_behind_a_failed_group_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "orders.db")
    await store.open()
    release = threading.Event()
    try:
        started = break_begin(monkeypatch, hold=release)
        failing = asyncio.create_task(store.begin("bad"))
        await asyncio.to_thread(started.wait, 30)  # the group is on the thread
        later = asyncio.create_task(store.begin("good"))
        # The later write joins the queue on its first step (the store is
        # open: nothing to await before), which runs before this callback.
        asyncio.get_running_loop().call_soon(release.set)
        async with asyncio.timeout(30):  # a guard: the bug was a hang
            with pytest.raises(RuntimeError):
                await failing
            assert await later == []
        assert await store.get("good") is not None
    finally:
        release.set()
        await store.close()


async def test_a_failed_group_leaves_the_count_of_unknown_orders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_800_000_000.0]
    store = SqliteStore(tmp_path / "orders.db", max_unknown=1, clock=lambda: now[0])
    await store.open()
    try:
        break_begin(monkeypatch)
        got = await asyncio.gather(  # one group, rolled back
            store.record(update("stranger-x", "x")),
            store.begin("bad"),
            return_exceptions=True,
        )
        assert [type(g) for g in got] == [RuntimeError, RuntimeError]
        assert await store.history("stranger-x") == []
        # Nothing of the group is counted: one unknown order fits.
        now[0] += 1
        assert (await store.record(update("stranger-a", "a"))).new
        assert len(await store.history("stranger-a")) == 1
        now[0] += 1
        assert (await store.record(update("stranger-b", "b"))).new
        assert await store.history("stranger-a") == []
        assert len(await store.history("stranger-b")) == 1
    finally:
        await store.close()


async def test_close_writes_the_group_in_flight_and_the_queued_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "orders.db"
    store = SqliteStore(path)
    await store.open()
    started, release = hold(monkeypatch, "_op_begin", key="first")
    try:
        first = asyncio.create_task(store.begin("first"))
        await asyncio.to_thread(started.wait, 30)  # its group is on the thread
        queued = asyncio.create_task(store.begin("queued"))
        closing = asyncio.create_task(store.close())
        # Both tasks take their first step (queue the write, start closing)
        # before this callback runs.
        asyncio.get_running_loop().call_soon(release.set)
        async with asyncio.timeout(30):
            assert await first == []
            assert await queued == []
            await closing
    finally:
        release.set()
        await store.close()
    with pytest.raises(SipsStoreError, match="is closed"):
        await store.open()
    with pytest.raises(SipsStoreError, match="is closed"):
        await store.begin("late")
    again = SqliteStore(path)
    try:
        assert await again.get("first") is not None
        assert await again.get("queued") is not None
        assert await again.get("late") is None
    finally:
        await again.close()


async def test_close_while_the_first_open_connects_leaves_the_store_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "orders.db")
    started, release = hold(monkeypatch, "_prepare")
    try:
        opening = asyncio.create_task(store.open())
        await asyncio.to_thread(started.wait, 30)  # connecting, on the thread
        closing = asyncio.create_task(store.close())
        asyncio.get_running_loop().call_soon(release.set)  # after close starts
        async with asyncio.timeout(30):
            await closing
            assert opening.done()  # close() waited for it
            with pytest.raises(SipsStoreError, match="is closed"):
                await opening
    finally:
        release.set()
        await store.close()
    assert "closed" in repr(store)
    with pytest.raises(SipsStoreError, match="is closed"):
        await store.begin("late")
