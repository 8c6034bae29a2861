"""SqliteStore writes a group's records in chunks: the file must end up as if
each had been written on its own.

Every burst below is recorded concurrently (one ``gather``: one group, one
transaction) twice, on two fresh files: once as the store does it, once with
chunks turned off (record by record, the reference). The two files must hold
the same rows, byte for byte, and the callers must hear the same answers,
changes and warnings.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sips_async import OrderStatus, OrderUpdate
from sips_async.stores import Change, OrderState, Recorded, SqliteStore, _sqlite

UTC = dt.UTC
NOW = 1_800_000_000.0


def update(
    tx: str | None,
    event_id: str,
    *,
    order_id: str | None = None,
    event_type: str = "OU",
    status: str = "Processed",
) -> OrderUpdate:
    n = sum(map(ord, event_id))  # a fixed time per event, distinct enough
    return OrderUpdate(
        event_id=event_id,
        event_type=event_type,
        event_status=status,
        status=OrderStatus.parse(status),
        transaction_id=tx,
        order_id=order_id,
        po_number="PO-1",
        occurred_at=dt.datetime(2026, 5, 20, 14, n % 60, tzinfo=UTC),
        received_at=dt.datetime(2026, 12, 1, 10, 0, 0, n, tzinfo=UTC),
        raw=b'{"eventId":"%s"}' % event_id.encode(),
    )


@dataclasses.dataclass
class Outcome:
    recorded: list[Recorded]
    heard: list[Change]
    warnings: list[str]
    orders: list[tuple[Any, ...]]
    updates: list[tuple[Any, ...]]
    aliases: list[tuple[Any, ...]]


Setup = Callable[[SqliteStore], Awaitable[None]]


async def run(
    path: Path,
    setup: Setup,
    burst: list[OrderUpdate],
    caplog: pytest.LogCaptureFixture,
    **options: Any,
) -> Outcome:
    store = SqliteStore(path, clock=lambda: NOW, **options)
    await store.open()
    try:
        await setup(store)
        heard: list[Change] = []
        store.subscribe(heard.append)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sips_async"):
            recorded = list(await asyncio.gather(*map(store.record, burst)))
        warnings = [r.getMessage() for r in caplog.records]
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        return Outcome(
            recorded,
            heard,
            warnings,
            db.execute("SELECT * FROM orders ORDER BY key").fetchall(),
            db.execute("SELECT * FROM updates ORDER BY id").fetchall(),
            db.execute("SELECT * FROM aliases ORDER BY order_id").fetchall(),
        )


async def both(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    setup: Setup,
    burst: list[OrderUpdate],
    **options: Any,
) -> tuple[Outcome, int]:
    """The burst in chunks and record by record: the outcomes must agree.

    Returns the outcome and how many chunk statements wrote rows.
    """
    writes = 0
    write_many = SqliteStore._write_many

    def counted(*args: Any, **kwargs: Any) -> None:
        nonlocal writes
        writes += 1
        write_many(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(SqliteStore, "_write_many", staticmethod(counted))
        chunked = await run(tmp_path / "chunked.db", setup, burst, caplog, **options)
    chunked_writes, writes = writes, 0
    with monkeypatch.context() as patch:
        patch.setattr(SqliteStore, "_write_many", staticmethod(counted))
        patch.setattr(_sqlite, "_CHUNKS", False)
        one_by_one = await run(tmp_path / "single.db", setup, burst, caplog, **options)
    assert writes == 0  # the reference really is record by record
    assert chunked == one_by_one
    return chunked, chunked_writes


async def nothing(store: SqliteStore) -> None:
    del store


pytestmark = pytest.mark.skipif(
    not _sqlite._CHUNKS, reason="this SQLite library writes record by record"
)


async def test_new_updates_of_many_orders_are_written_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    keys = [f"k{n:03d}" for n in range(150)]  # more than one chunk

    async def begin_all(store: SqliteStore) -> None:
        for key in keys:
            await store.begin(key)

    burst = [update(k, f"oa-{k}", order_id=f"SRS-{k}") for k in keys]
    burst += [
        update(k, f"od-{k}", event_type="OD", status="Delivered") for k in keys[::7]
    ]
    got, writes = await both(tmp_path, monkeypatch, caplog, begin_all, burst)
    assert all(r.new for r in got.recorded)
    assert len(got.updates) == len(burst)
    assert writes > 0  # the chunks were written as chunks
    assert [row[-1] for row in got.aliases] == keys  # every id linked
    finished = {row[0] for row in got.orders if row[8] is not None}
    assert finished == set(keys[::7])


async def test_every_unusual_record_in_a_burst_ends_as_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    earlier = update("k1", "earlier")

    async def setup(store: SqliteStore) -> None:
        for n in range(20):
            await store.begin(f"k{n}")
        await store.record(earlier)
        for n in range(3):
            await store.record(update("k2", f"cap-{n}"))  # at its cap of 3
        await store.record(update(None, "orphan", order_id="SRS-5"))
        await store.settle("k3", OrderState.QUEUED, order_id="SRS-3")
        await store.record(update("k6", "six", order_id="SRS-6"))
        await store.record(update("k16", "sixteen", order_id="SRS-16"))
        await store.record(update("k18", "eighteen", order_id="SRS-18"))
        store._linked.clear()  # what it knows is linked, as after a restart

    twice = update("k8", "twice")
    unusual = [
        update("k0", "new", order_id="SRS-0"),
        earlier,  # a replay of what the file has
        update("k2", "over-the-cap"),
        update("k5", "merges-the-orphan", order_id="SRS-5"),
        update(None, "by-alias", order_id="SRS-3"),
        update("k7", "moves-a-link", order_id="SRS-6"),
        update("stranger", "unknown-order"),
        twice,
        update("k8", "again"),
        twice,  # a replay inside the burst
        update("k3", "linked-already", order_id="SRS-3"),
        update(None, "by-alias-again", order_id="SRS-3"),  # ends the chunk
    ]
    usual = [  # one chunk that takes the short way
        update("k10", "plain", order_id="SRS-10"),
        update("k11", "closed", event_type="OC", status="Cancelled", order_id="SRS-11"),
        update("k12", "delivered", event_type="OD", status="Delivered"),
        update("k13", "no-srs-id"),
        update("k17", "moves-another-link", order_id="SRS-16"),
        update("k14", "shares-an-id", order_id="SRS-14"),
        update("k15", "shares-an-id-too", order_id="SRS-14"),
        update("k18", "linked-before", order_id="SRS-18"),
    ]
    got, writes = await both(
        tmp_path, monkeypatch, caplog, setup, unusual + usual, max_updates=3
    )
    assert [r.new for r in got.recorded] == [
        True,
        False,
        False,
        True,
        True,
        True,
        True,
        True,
        True,
        False,
        True,
        True,
    ] + [True] * len(usual)
    assert any(c.reload for c in got.heard)  # the orphan merged
    assert {("SRS-6", "k7"), ("SRS-16", "k17"), ("SRS-14", "k15")} <= set(got.aliases)
    assert any("over-the-cap" in w for w in got.warnings)
    assert writes > 0  # the usual chunk went the short way


async def test_a_write_that_fails_unexpectedly_fails_its_group_and_no_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "orders.db")
    await store.open()
    begin = SqliteStore._op_begin

    def broken(self: SqliteStore, db: Any, now: float, key: str, *rest: Any) -> Any:
        if key == "bad":
            raise RuntimeError("a bug")
        return begin(self, db, now, key, *rest)

    try:
        with monkeypatch.context() as patch:
            patch.setattr(SqliteStore, "_op_begin", broken)
            async with asyncio.timeout(30):  # a guard: the bug was a hang
                got = await asyncio.gather(
                    store.begin("good"), store.begin("bad"), return_exceptions=True
                )
        assert [type(g) for g in got] == [RuntimeError, RuntimeError]
        assert await store.get("good") is None  # the group was rolled back
        assert await store.begin("good") == []
        assert await store.get("good") is not None
    finally:
        await store.close()


async def test_two_stores_on_one_file_keep_each_update_once(tmp_path: Path) -> None:
    # Two connections to one file, as two processes have: their groups take
    # turns at the write lock, and each checks what the other committed.
    path = tmp_path / "shared.db"
    first, second = SqliteStore(path), SqliteStore(path)
    await first.open()
    await second.open()
    try:
        keys = [f"k{n:02d}" for n in range(80)]
        for key in keys:
            await first.begin(key)
        orphans = [update(None, f"early-{n}", order_id=f"SRS-{n}") for n in range(10)]
        for orphan in orphans:
            await second.record(orphan)  # waits under order:SRS-n
        burst = [update(k, f"oa-{k}", order_id=f"SRS-{n}") for n, k in enumerate(keys)]
        got = await asyncio.gather(
            asyncio.gather(*map(first.record, burst)),
            asyncio.gather(*map(second.record, reversed(burst))),
        )
        one, other = got[0], got[1][::-1]
        assert [a.new + b.new for a, b in zip(one, other, strict=True)] == [1] * 80
        for n, key in enumerate(keys):
            kept = sorted(u.event_id for u in await first.history(key))
            assert kept == sorted([f"oa-{key}"] + ([f"early-{n}"] if n < 10 else []))
            assert await second.history(f"order:SRS-{n}") == []
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize(
    "odd",
    [
        update("k0", "cap-0"),  # a replay of what the file has
        update("k1", "over-the-cap"),
        update("stranger", "unknown-order"),
        update("k2", "merges-the-orphan", order_id="SRS-orphan"),
    ],
    ids=["replay", "cap", "unknown", "orphan"],
)
async def test_one_unusual_record_sends_its_chunk_the_long_way(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    odd: OrderUpdate,
) -> None:
    async def setup(store: SqliteStore) -> None:
        for n in range(12):
            await store.begin(f"k{n}")
        await store.record(update("k0", "cap-0"))
        for n in range(2):
            await store.record(update("k1", f"cap-{n}"))  # at its cap of 2
        await store.record(update(None, "orphan", order_id="SRS-orphan"))

    usual = [update(f"k{n}", f"new-{n}", order_id=f"SRS-{n}") for n in range(3, 12)]
    burst = [*usual[:4], odd, *usual[4:]]
    got, writes = await both(tmp_path, monkeypatch, caplog, setup, burst, max_updates=2)
    assert [r.new for r in got.recorded] == [True] * 4 + [
        odd.event_id in ("unknown-order", "merges-the-orphan")
    ] + [True] * 5
    assert writes == 0  # the one chunk was written record by record


async def test_two_records_are_a_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def begin_two(store: SqliteStore) -> None:
        await store.begin("k0")
        await store.begin("k1")

    burst = [update("k0", "a"), update("k1", "b")]  # no SRS ids: nothing to link
    got, writes = await both(tmp_path, monkeypatch, caplog, begin_two, burst)
    assert [r.new for r in got.recorded] == [True, True]
    assert writes == 2  # one append, one count


async def test_records_written_one_by_one_in_a_burst_keep_its_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A chunk of one before an update by alias, the update by alias, then a
    # chunk: both final updates start their order's retention at the group's
    # time, and the order only known by alias gets its row.
    async def setup(store: SqliteStore) -> None:
        for n in range(4):
            await store.begin(f"k{n}")
        await store.settle("k1", OrderState.QUEUED, order_id="SRS-1")

    burst = [
        update("k0", "alone", event_type="OD", status="Delivered"),
        update(None, "by-alias", event_type="OD", status="Delivered", order_id="SRS-1"),
        update(None, "unknown-by-alias", order_id="SRS-9"),
        update("k2", "a"),
        update("k3", "b"),
    ]
    got, writes = await both(tmp_path, monkeypatch, caplog, setup, burst)
    assert all(r.new for r in got.recorded)
    finished = {row[0]: row[8] for row in got.orders if row[8] is not None}
    assert finished == {"k0": NOW, "k1": NOW}
    assert "order:SRS-9" in {row[0] for row in got.orders}
    assert writes > 0


async def test_a_link_written_in_a_chunk_can_move_later(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "orders.db")
    await store.open()
    try:
        await store.begin("k1")
        await store.begin("k2")
        await asyncio.gather(  # one chunk, two links
            store.record(update("k1", "a", order_id="SRS-1")),
            store.record(update("k2", "b", order_id="SRS-2")),
        )
        # SRS gives the first order's id to the second: the link moves.
        await store.record(update("k2", "moved", order_id="SRS-1"))
        recorded = await store.record(update(None, "by-alias", order_id="SRS-1"))
        assert recorded.key == "k2"
        recorded = await store.record(update(None, "by-alias", order_id="SRS-2"))
        assert recorded.key == "k2"
    finally:
        await store.close()


async def test_updates_without_an_srs_id_keep_the_orders_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def setup(store: SqliteStore) -> None:
        for n in range(3):
            await store.begin(f"k{n}")
            await store.settle(f"k{n}", OrderState.QUEUED, order_id=f"SRS-{n}")

    burst = [  # one chunk: two counts, one final count, none naming an id
        update("k0", "plain"),
        update("k1", "plain-too"),
        update("k2", "delivered", event_type="OD", status="Delivered"),
    ]
    got, writes = await both(tmp_path, monkeypatch, caplog, setup, burst)
    assert writes == 3  # append, count, final count
    assert [row[5] for row in got.orders] == ["SRS-0", "SRS-1", "SRS-2"]
