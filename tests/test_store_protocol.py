"""The Store protocol suite: every backend of ``tests/store_backends.py`` runs it."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

import pytest

from sips_async import OrderStatus, OrderUpdate, SipsConfigError
from sips_async.stores import Change, OrderState, Store
from tests.store_backends import BACKENDS, Backend, opened

UTC = dt.UTC


class Clock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](tmp_path)


_seq = 0


def update(
    *,
    tx: str | None = "tx-1",
    order_id: str | None = None,
    event_type: str = "OU",
    status: str | None = "Processed",
    event_id: str | None = None,
    minute: int = 0,
    **extra: object,
) -> OrderUpdate:
    global _seq
    _seq += 1
    fields: dict[str, object] = {
        "event_id": event_id or f"e{_seq}",
        "event_type": event_type,
        "event_status": status,
        "status": OrderStatus.parse(status),
        "transaction_id": tx,
        "order_id": order_id,
        "po_number": "PO-1",
        "occurred_at": dt.datetime(2026, 5, 20, 14, minute, tzinfo=UTC),
        "received_at": dt.datetime(2026, 12, 1, 10, 0, 0, _seq, tzinfo=UTC),
        "raw": b'{"eventId":"%d"}' % _seq,
    }
    fields.update(extra)
    return OrderUpdate(**fields)  # type: ignore[arg-type]  # checked by msgspec


def ids(history: list[OrderUpdate]) -> list[str]:
    return [u.event_id for u in history]


# -- round trip ------------------------------------------------------------------


async def test_every_field_reads_back_exactly(backend: Backend) -> None:
    odd_zone = dt.timezone(dt.timedelta(hours=-5, minutes=-30))
    updates = [
        update(
            event_type="OA",
            status="Accepted",
            order_id="SRS-1",
            occurred_at=dt.datetime(2026, 5, 20, 9, 3, 11, 250, tzinfo=odd_zone),
            error_code="E42",
            error_message="Branch closed: call 555-0100",
            raw=b"\xff\x00not utf-8 \xe9",
            source="poll",
        ),
        update(status="Delivered"),  # an OrderStatus member
        update(status="Weird New Status", occurred_at=None, po_number=None),
        update(event_status=None, status=None),
    ]
    async with opened(backend) as store:
        await store.begin("tx-1", po_number="PO-1")
        for u in updates:
            assert (await store.record(u)).new
        got = await store.history("tx-1")
    assert got == updates
    assert [type(u.status) for u in got] == [type(u.status) for u in updates]
    assert got[0].occurred_at is not None
    assert got[0].occurred_at.utcoffset() == dt.timedelta(hours=-5, minutes=-30)
    assert got[0].error_message == "Branch closed: call 555-0100"
    assert got[0].source == "poll"
    assert got[1].source == "webhook"
    assert got[1].is_final
    if backend.durable:
        async with opened(backend) as again:
            assert await again.history("tx-1") == updates


async def test_unknown_key_has_no_history(backend: Backend) -> None:
    async with opened(backend) as store:
        assert await store.history("nobody") == []
        assert await store.get("nobody") is None


# -- replays and correlation -------------------------------------------------------


async def test_a_replay_is_recorded_once(backend: Backend) -> None:
    first = update(event_id="same")
    replay = update(event_id="same", raw=b"other bytes")  # same event, new delivery
    async with opened(backend) as store:
        assert (await store.record(first)).new
        got = await store.record(replay)
        assert got.key == "tx-1"
        assert not got.new
        assert ids(await store.history("tx-1")) == ["same"]
        # Same id but another status is another event, not a replay.
        assert (await store.record(update(event_id="same", status="Delivered"))).new
        assert len(await store.history("tx-1")) == 2
    if backend.durable:
        async with opened(backend) as again:
            assert not (await again.record(replay)).new
            assert len(await again.history("tx-1")) == 2


async def test_record_reports_its_key_and_whether_new(backend: Backend) -> None:
    async with opened(backend) as store:
        one = update(tx=None, order_id="SRS-9", event_id="x")
        got = await store.record(one)
        assert (got.key, got.new) == ("order:SRS-9", True)
        assert not (await store.record(one)).new
        bare = update(tx=None, order_id=None, event_type="IU", event_id="i1")
        assert (await store.record(bare)).key == "event:IU:i1"


async def test_order_id_only_update_joins_the_linked_order(backend: Backend) -> None:
    async with opened(backend) as store:
        await store.begin("tx-1")
        await store.settle("tx-1", OrderState.QUEUED, order_id="Q-1", queue_id="Q-1")
        got = await store.record(update(tx=None, order_id="Q-1", event_id="a"))
        assert got.key == "tx-1"
        # An update naming both ids links SRS's ERP id too.
        await store.record(update(order_id="ERP-7", event_id="b"))
        got = await store.record(update(tx=None, order_id="ERP-7", event_id="c"))
        assert got.key == "tx-1"
        assert ids(await store.history("tx-1")) == ["a", "b", "c"]
        row = await store.get("tx-1")
        assert row is not None
        assert (row.order_id, row.queue_id) == ("ERP-7", "Q-1")


async def test_orphans_merge_in_arrival_order_when_linked(backend: Backend) -> None:
    changes: list[Change] = []
    async with opened(backend) as store:
        store.subscribe(changes.append)
        await store.begin("tx-1")
        await store.record(update(tx=None, order_id="SRS-5", event_id="early"))
        await store.record(update(event_id="mine"))
        await store.record(update(tx=None, order_id="SRS-5", event_id="late"))
        await store.record(update(tx=None, order_id="SRS-5", event_id="mine"))
        changes.clear()
        await store.settle("tx-1", OrderState.QUEUED, order_id="SRS-5")
        assert ids(await store.history("tx-1")) == ["early", "mine", "late"]
        assert await store.history("order:SRS-5") == []
        assert changes == [Change("tx-1", (), reload=True)]
        # Linking again moves nothing and tells nobody.
        changes.clear()
        await store.settle("tx-1", OrderState.QUEUED, order_id="SRS-5")
        assert changes == []


async def test_update_with_both_ids_merges_orphans(backend: Backend) -> None:
    changes: list[Change] = []
    async with opened(backend) as store:
        store.subscribe(changes.append)
        await store.record(update(tx=None, order_id="SRS-6", event_id="orphan"))
        await store.record(update(order_id="SRS-6", event_id="linking", tx="tx-6"))
        assert ids(await store.history("tx-6")) == ["orphan", "linking"]
        assert changes[-1].key == "tx-6"
        assert changes[-1].reload


async def test_order_id_update_racing_the_enqueue_answer_lands_on_the_order(
    backend: Backend,
) -> None:
    # The update (SRS's id only) and the answer that links that id race; the
    # store's calls really suspend (SQLite's run on a thread): whichever
    # lands first, the update ends up in the order's history, never apart.
    for n in range(20):
        tx, srs = f"race-{n}", f"SRS-R{n}"
        async with opened(backend) as store:
            await store.begin(tx)
            racing = [
                store.record(update(tx=None, order_id=srs, event_id=f"r{n}")),
                store.settle(tx, OrderState.QUEUED, order_id=srs),
            ]
            if n % 2:
                racing.reverse()
            await asyncio.gather(*racing)
            assert ids(await store.history(tx)) == [f"r{n}"]
            assert await store.history(f"order:{srs}") == []


# -- the outbox ----------------------------------------------------------------------


async def test_begin_writes_the_order_before_anything_is_sent(backend: Backend) -> None:
    clock = Clock()
    async with opened(backend, clock=clock) as store:
        assert await store.begin("tx-1", po_number="PO-1") == []
        row = await store.get("tx-1")
    assert row is not None
    assert row.transaction_id == "tx-1"
    assert row.po_number == "PO-1"
    assert row.state is OrderState.SENDING
    assert row.created_at == dt.datetime.fromtimestamp(clock.now, UTC)
    assert row.outstanding and not row.is_final
    if backend.durable:
        async with opened(backend) as again:
            assert await again.get("tx-1") == row


async def test_settle_records_the_answer(backend: Backend) -> None:
    async with opened(backend) as store:
        await store.begin("tx-1")
        await store.settle(
            "tx-1", OrderState.UNCERTAIN, error="SipsServerError: HTTP 500"
        )
        row = await store.get("tx-1")
        assert row is not None
        assert row.state is OrderState.UNCERTAIN
        assert row.error == "SipsServerError: HTTP 500"
        await store.settle("tx-1", OrderState.QUEUED, order_id="O-1", queue_id="Q-1")
        row = await store.get("tx-1")
        assert row is not None
        assert (row.state, row.order_id, row.queue_id, row.error) == (
            OrderState.QUEUED,
            "O-1",
            "Q-1",
            None,
        )


async def test_begin_again_keeps_what_was_recorded(backend: Backend) -> None:
    async with opened(backend) as store:
        await store.record(update(tx="tx-2", event_id="before"))  # unknown so far
        assert ids(await store.begin("tx-2", po_number="P")) == ["before"]
        await store.settle("tx-2", OrderState.QUEUED)
        assert ids(await store.begin("tx-2")) == ["before"]
        row = await store.get("tx-2")
        assert row is not None
        assert (row.state, row.po_number) == (OrderState.SENDING, "P")


async def test_adopt_follows_without_changing_a_known_order(backend: Backend) -> None:
    async with opened(backend) as store:
        await store.record(update(tx="tx-a", event_id="1"))
        assert ids(await store.adopt("tx-a")) == ["1"]
        row = await store.get("tx-a")
        assert row is not None and row.state is OrderState.TRACKED
        await store.begin("tx-b")
        await store.settle("tx-b", OrderState.QUEUED)
        await store.adopt("tx-b")
        row = await store.get("tx-b")
        assert row is not None and row.state is OrderState.QUEUED


async def test_outstanding_lists_every_open_order_oldest_first(
    backend: Backend,
) -> None:
    clock = Clock()
    async with opened(backend, clock=clock) as store:
        for n, state in enumerate(
            [
                OrderState.QUEUED,
                OrderState.FAILED,  # provably never placed: not outstanding
                OrderState.UNCERTAIN,
                OrderState.PLACED,  # placed synchronously: settled
                OrderState.SENDING,
                OrderState.QUEUED,
            ]
        ):
            clock.now += 1
            await store.begin(f"o{n}")
            await store.settle(f"o{n}", state)
        await store.adopt("o6")
        await store.record(update(tx="o5", status="Delivered", event_type="DU"))
        await store.record(update(tx="unknown-x"))  # never sent: not listed
        listed = [row.transaction_id async for row in store.outstanding()]
    assert listed == ["o0", "o2", "o4", "o6"]


async def test_outstanding_pages_through_many_orders(backend: Backend) -> None:
    clock = Clock()
    async with opened(backend, clock=clock) as store:
        for n in range(1_203):
            clock.now += 0.001
            await store.begin(f"p{n:05}")
        listed = [row.transaction_id async for row in store.outstanding()]
    assert listed == [f"p{n:05}" for n in range(1_203)]


async def test_outstanding_pages_through_orders_begun_at_one_time(
    backend: Backend,
) -> None:
    # More than a page of orders with the same creation time: paged by key.
    async with opened(backend, clock=Clock()) as store:
        keys = [f"p{n:04}" for n in range(1_100)]
        await asyncio.gather(*map(store.begin, keys))
        listed = [row.transaction_id async for row in store.outstanding()]
    assert listed == keys


# -- bounds --------------------------------------------------------------------------


async def test_finished_orders_are_kept_for_the_retention_then_dropped(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    async with opened(backend, clock=clock, retention=100.0) as store:
        await store.begin("done")
        await store.begin("open")
        await store.record(update(tx="open", event_id="o1"))
        await store.record(update(tx="done", event_type="DU", status="Delivered"))
        row = await store.get("done")
        assert row is not None and row.is_final and not row.outstanding
        assert row.final_at == dt.datetime.fromtimestamp(clock.now, UTC)
        clock.now += 99
        await store.record(update(tx="open", event_id="o2"))
        assert await store.get("done") is not None
        clock.now += 1_000_000  # far past: only the finished order goes
        with caplog.at_level(logging.WARNING, logger="sips_async"):
            await store.record(update(tx="open", event_id="o3"))
            await store.begin("later")
        assert await store.get("done") is None
        assert await store.history("done") == []
        assert ids(await store.history("open")) == ["o1", "o2", "o3"]
    assert any(
        "done" in r.getMessage() and r.levelno == logging.WARNING
        for r in caplog.records
    )


async def test_settled_orders_start_their_retention_when_settled(
    backend: Backend,
) -> None:
    # A synchronous submit placed, or a request that never reached SRS:
    # nothing will settle them further, so they must not be kept forever.
    clock = Clock()
    async with opened(backend, clock=clock, retention=100.0) as store:
        for key in ("placed", "failed", "queued", "uncertain"):
            await store.begin(key)
        await store.settle("placed", OrderState.PLACED, order_id="88")
        await store.settle("failed", OrderState.FAILED, error="refused")
        await store.settle("queued", OrderState.QUEUED, order_id="89")
        await store.settle("uncertain", OrderState.UNCERTAIN, error="reset")
        settled_at = dt.datetime.fromtimestamp(clock.now, UTC)
        for key in ("placed", "failed"):
            row = await store.get(key)
            assert row is not None and row.final_at == settled_at, key
            assert not row.outstanding
        for key in ("queued", "uncertain"):
            row = await store.get(key)
            assert row is not None and row.final_at is None and row.outstanding
        clock.now += 99
        await store.begin("tick-1")
        assert await store.get("placed") is not None
        clock.now += 1_000_000
        await store.begin("tick-2")  # any write sweeps
        assert await store.get("placed") is None
        assert await store.get("failed") is None
        assert await store.get("queued") is not None
        assert await store.get("uncertain") is not None
        # A later update for the placed order is kept as an unknown order's.
        assert (await store.record(update(tx="placed", event_id="late"))).new


async def test_updates_of_unknown_orders_are_capped_by_count(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    async with opened(backend, clock=clock, max_unknown=2) as store:
        await store.begin("mine")
        with caplog.at_level(logging.WARNING, logger="sips_async"):
            for n in range(4):
                clock.now += 1
                await store.record(update(tx=f"stranger-{n}"))
            clock.now += 1
            await store.record(update(tx="mine"))
        assert await store.history("stranger-0") == []
        assert await store.history("stranger-1") == []
        assert len(await store.history("stranger-2")) == 1
        assert len(await store.history("stranger-3")) == 1
        assert len(await store.history("mine")) == 1
        # An unknown order that becomes known leaves the count.
        await store.begin("stranger-3")
        clock.now += 1
        await store.record(update(tx="stranger-4"))
        assert len(await store.history("stranger-2")) == 1
        assert len(await store.history("stranger-3")) == 1
        clock.now += 1
        await store.record(update(tx="stranger-5"))
        assert await store.history("stranger-2") == []
        assert len(await store.history("stranger-4")) == 1
    dropped = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert ["stranger-0" in m for m in dropped] == [True, False, False]
    assert dropped[0] == (
        "dropped updates of unknown order stranger-0 (more than 2 unknown orders)"
    )


async def test_each_order_keeps_at_most_max_updates(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    async with opened(backend, max_updates=3) as store:
        await store.begin("busy")
        with caplog.at_level(logging.WARNING, logger="sips_async"):
            got = [await store.record(update(tx="busy")) for _ in range(5)]
        assert [g.new for g in got] == [True, True, True, False, False]
        assert len(await store.history("busy")) == 3
    assert sum("busy" in r.getMessage() for r in caplog.records) == 2


async def test_a_not_final_order_is_never_dropped(backend: Backend) -> None:
    clock = Clock()
    async with opened(backend, clock=clock, retention=1.0, max_unknown=1) as store:
        await store.begin("waiting")
        await store.settle("waiting", OrderState.UNCERTAIN)
        for n in range(5):
            clock.now += 1_000_000
            await store.record(update(tx=f"noise-{n}"))
        row = await store.get("waiting")
        assert row is not None and row.outstanding


# -- change notification -------------------------------------------------------------


async def test_listeners_hear_every_new_update_and_no_replay(backend: Backend) -> None:
    heard: list[Change] = []
    async with opened(backend) as store:
        unsubscribe = store.subscribe(heard.append)
        one, two = update(event_id="1"), update(event_id="2")
        await store.record(one)
        await store.record(one)
        await store.record(two)
        unsubscribe()
        await store.record(update(event_id="3"))
    assert heard == [Change("tx-1", (one,)), Change("tx-1", (two,))]


async def test_a_failing_listener_does_not_stop_the_others(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[Change] = []

    def broken(change: Change) -> None:
        raise RuntimeError("listener bug")

    async with opened(backend) as store:
        store.subscribe(broken)
        store.subscribe(heard.append)
        with caplog.at_level(logging.ERROR, logger="sips_async"):
            assert (await store.record(update())).new
    assert len(heard) == 1
    assert "listener" in caplog.text


async def test_concurrent_records_are_all_kept_once(backend: Backend) -> None:
    async with opened(backend) as store:
        await store.begin("tx-c")
        many = [update(tx="tx-c", event_id=f"c{n}") for n in range(200)]
        results = await asyncio.gather(
            *(store.record(u) for u in many), *(store.record(u) for u in many)
        )
        assert sum(r.new for r in results) == 200
        assert sorted(ids(await store.history("tx-c"))) == sorted(
            u.event_id for u in many
        )


def test_every_backend_is_a_store(tmp_path: Path) -> None:
    for make in BACKENDS.values():
        assert isinstance(make(tmp_path).make(), Store)


# -- pinned by mutation testing ----------------------------------------------------


async def test_begin_again_takes_a_new_po_number(backend: Backend) -> None:
    async with opened(backend) as store:
        await store.begin("tx-1")
        await store.begin("tx-1", po_number="PO-2")
        row = await store.get("tx-1")
        assert row is not None
        assert row.po_number == "PO-2"
        await store.begin("tx-1")  # no new number keeps the old one
        row = await store.get("tx-1")
        assert row is not None
        assert row.po_number == "PO-2"


async def test_settle_of_an_order_never_begun_writes_it(backend: Backend) -> None:
    async with opened(backend) as store:
        await store.settle("tx-new", OrderState.QUEUED, order_id="SRS-N")
        row = await store.get("tx-new")
        assert row is not None
        assert (row.state, row.order_id) == (OrderState.QUEUED, "SRS-N")


async def test_settle_of_an_order_known_only_by_updates_keeps_them(
    backend: Backend,
) -> None:
    async with opened(backend) as store:
        await store.record(update(tx="tx-u", event_id="first"))
        await store.settle("tx-u", OrderState.UNCERTAIN, error="timed out")
        row = await store.get("tx-u")
        assert row is not None
        assert (row.state, row.error) == (OrderState.UNCERTAIN, "timed out")
        assert ids(await store.history("tx-u")) == ["first"]


async def test_a_first_link_with_no_orphans_tells_nobody(backend: Backend) -> None:
    changes: list[Change] = []
    async with opened(backend) as store:
        await store.begin("tx-7")
        store.subscribe(changes.append)
        await store.settle("tx-7", OrderState.QUEUED, order_id="SRS-7")
        assert changes == []


@pytest.mark.parametrize("state", [OrderState.PLACED, OrderState.QUEUED])
async def test_an_update_with_only_the_srs_id_finds_a_settled_order(
    backend: Backend, state: OrderState
) -> None:
    # SRS's answer gave the order its id; a later update that names only
    # that id is the order's, whether it was placed (a full row) or queued.
    async with opened(backend) as store:
        await store.begin("tx-9")
        await store.settle("tx-9", state, order_id="SRS-9")
        recorded = await store.record(update(tx=None, order_id="SRS-9", event_id="a"))
        assert recorded.key == "tx-9"
        assert ids(await store.history("tx-9")) == ["a"]


async def test_a_merged_orphan_delivered_again_is_a_replay(backend: Backend) -> None:
    orphan = update(tx=None, order_id="SRS-8", event_id="o")
    async with opened(backend) as store:
        await store.record(orphan)
        await store.begin("tx-8")
        await store.settle("tx-8", OrderState.QUEUED, order_id="SRS-8")
        again = await store.record(orphan)
        assert (again.key, again.new) == ("tx-8", False)
        assert ids(await store.history("tx-8")) == ["o"]


async def test_the_same_event_at_another_time_is_not_a_replay(backend: Backend) -> None:
    async with opened(backend) as store:
        await store.begin("tx-1")
        assert (await store.record(update(event_id="same", minute=1))).new
        assert (await store.record(update(event_id="same", minute=2))).new
        assert ids(await store.history("tx-1")) == ["same", "same"]


async def test_every_id_srs_gave_an_order_stays_linked(backend: Backend) -> None:
    # Queue answers are usually one id twice; a later answer may add others.
    async with opened(backend) as store:
        await store.begin("tx-1")
        await store.settle("tx-1", OrderState.QUEUED, order_id="A-1", queue_id="A-1")
        await store.settle("tx-1", OrderState.QUEUED, order_id="B-1", queue_id="C-1")
        for srs_id in ("A-1", "B-1", "C-1"):
            got = await store.record(update(tx=None, order_id=srs_id))
            assert got.key == "tx-1", srs_id
        row = await store.get("tx-1")
        assert row is not None
        assert (row.state, row.order_id, row.queue_id) == (
            OrderState.QUEUED,
            "A-1",
            "C-1",
        )


async def test_a_dropped_order_takes_its_links_along(backend: Backend) -> None:
    clock = Clock()
    async with opened(backend, clock=clock, retention=10.0) as store:
        # A second order id; a second queue id replacing the first.
        answers: dict[str, list[tuple[str, str | None]]] = {
            "tx-1": [("A-1", "A-1"), ("B-1", None)],
            "tx-3": [("A-3", "Q-3"), ("B-3", "C-3")],
        }
        for tx, settles in answers.items():
            await store.begin(tx)
            for order_id, queue_id in settles:
                await store.settle(
                    tx, OrderState.QUEUED, order_id=order_id, queue_id=queue_id
                )
            await store.record(update(tx=tx, event_type="DU", status="Delivered"))
        clock.now += 60
        await store.begin("tx-2")  # expires both
        for tx in answers:
            assert await store.get(tx) is None
        for srs_id in ("A-1", "B-1", "A-3", "Q-3", "B-3", "C-3"):
            got = await store.record(update(tx=None, order_id=srs_id))
            assert got.key == f"order:{srs_id}"


async def test_settling_an_order_known_only_by_updates_makes_it_known(
    backend: Backend,
) -> None:
    # Its creation time is the settle's, and it no longer counts (or is
    # dropped) as an unknown order.
    clock = Clock()
    async with opened(backend, clock=clock, max_unknown=1) as store:
        await store.record(update(tx="tx-u", event_id="first"))
        clock.now += 5
        await store.settle("tx-u", OrderState.UNCERTAIN, error="timed out")
        await store.record(update(tx="stranger", event_id="s"))
        row = await store.get("tx-u")
        assert row is not None
        assert row.created_at == dt.datetime.fromtimestamp(clock.now, UTC)
        assert ids(await store.history("tx-u")) == ["first"]
        assert ids(await store.history("stranger")) == ["s"]


async def test_settling_without_new_orphans_tells_nobody(backend: Backend) -> None:
    changes: list[Change] = []
    async with opened(backend) as store:
        # Another order's orphan: unknown updates exist, just none of ours.
        await store.record(update(tx=None, order_id="SRS-X", event_id="x"))
        await store.begin("tx-7")
        store.subscribe(changes.append)
        await store.settle("tx-7", OrderState.UNCERTAIN, error="reset")
        await store.settle("tx-7", OrderState.QUEUED, queue_id="Q-7")
        await store.settle("tx-7", OrderState.QUEUED, order_id="SRS-7")
        await store.settle("tx-7", OrderState.QUEUED, order_id="O-7", queue_id="Q-8")
        assert changes == []
        assert ids(await store.history("order:SRS-X")) == ["x"]


async def test_orphans_of_the_order_id_reload_even_when_the_queue_id_has_none(
    backend: Backend,
) -> None:
    changes: list[Change] = []
    async with opened(backend) as store:
        await store.begin("tx-1")
        await store.record(update(tx=None, order_id="O-1", event_id="early"))
        store.subscribe(changes.append)
        await store.settle("tx-1", OrderState.QUEUED, order_id="O-1", queue_id="Q-1")
        assert changes == [Change("tx-1", (), reload=True)]
        assert ids(await store.history("tx-1")) == ["early"]


async def test_orphans_merge_into_an_order_with_several_updates(
    backend: Backend,
) -> None:
    async with opened(backend) as store:
        await store.begin("tx-1")
        await store.record(update(event_id="own-1"))
        await store.record(update(tx=None, order_id="SRS-5", event_id="orphan"))
        await store.record(update(event_id="own-2"))
        await store.record(update(tx=None, order_id="SRS-5", event_id="own-1"))
        await store.settle("tx-1", OrderState.QUEUED, order_id="SRS-5")
        assert ids(await store.history("tx-1")) == ["own-1", "orphan", "own-2"]
        assert not (await store.record(update(event_id="own-2"))).new


async def test_an_order_without_a_queue_id_links_no_other_id(
    backend: Backend,
) -> None:
    # "None" is a possible SRS id: an absent queue id must not stand for it.
    async with opened(backend) as store:
        await store.record(update(tx=None, order_id="None", event_id="theirs"))
        await store.begin("tx-1")
        await store.settle("tx-1", OrderState.QUEUED, order_id="O-1")
        assert await store.history("tx-1") == []
        assert ids(await store.history("order:None")) == ["theirs"]


async def test_outstanding_is_ordered_by_creation_not_by_key(
    backend: Backend,
) -> None:
    clock = Clock()
    async with opened(backend, clock=clock) as store:
        for key in ("c", "a", "b"):
            clock.now += 1
            await store.begin(key)
        listed = [row.transaction_id async for row in store.outstanding()]
    assert listed == ["c", "a", "b"]


async def test_outstanding_lists_orders_made_at_one_time_by_key(
    backend: Backend,
) -> None:
    clock = Clock()
    async with opened(backend, clock=clock) as store:
        for key in ("c", "a", "b"):
            await store.begin(key)
        listed = [row.transaction_id async for row in store.outstanding()]
    assert listed == ["a", "b", "c"]


async def test_orphans_that_were_all_replays_tell_nobody(backend: Backend) -> None:
    changes: list[Change] = []
    async with opened(backend) as store:
        await store.begin("tx-1")
        await store.record(update(event_id="mine"))
        await store.record(update(tx=None, order_id="SRS-5", event_id="mine"))
        store.subscribe(changes.append)
        await store.settle("tx-1", OrderState.QUEUED, order_id="SRS-5")
        assert changes == []
        assert ids(await store.history("tx-1")) == ["mine"]
        assert await store.history("order:SRS-5") == []


async def test_an_unknown_order_keeps_at_most_max_updates(backend: Backend) -> None:
    async with opened(backend, max_updates=2) as store:
        got = [await store.record(update(tx="stranger")) for _ in range(3)]
        assert [g.new for g in got] == [True, True, False]
        assert len(await store.history("stranger")) == 2


async def test_a_merged_orphan_leaves_the_count_of_unknown_orders(
    backend: Backend,
) -> None:
    clock = Clock()
    async with opened(backend, clock=clock, max_unknown=1) as store:
        await store.record(update(tx=None, order_id="SRS-5", event_id="orphan"))
        await store.begin("tx-5")
        await store.record(update(tx="tx-5", order_id="SRS-5", event_id="linking"))
        assert ids(await store.history("tx-5")) == ["orphan", "linking"]
        # The orphan is gone: one unknown order fits, the second drops the first.
        clock.now += 1
        await store.record(update(tx="stranger-a"))
        assert len(await store.history("stranger-a")) == 1
        clock.now += 1
        await store.record(update(tx="stranger-b"))
        assert await store.history("stranger-a") == []
        assert len(await store.history("stranger-b")) == 1
        assert len(await store.history("tx-5")) == 2


async def test_a_store_opens_itself_on_its_first_write(backend: Backend) -> None:
    store = backend.make()
    try:
        assert await store.begin("tx-1") == []
        assert (await store.record(update(event_id="a"))).new
        assert ids(await store.history("tx-1")) == ["a"]
    finally:
        await store.close()


@pytest.mark.parametrize(
    "options", [{"max_updates": 0}, {"max_unknown": -1}], ids=["updates", "unknown"]
)
def test_caps_that_would_keep_nothing_are_refused(
    backend: Backend, options: dict[str, int]
) -> None:
    # max_updates=0 kept no update at all (each record answered "not new").
    with pytest.raises(SipsConfigError, match="max_unknown must be >= 0"):
        backend.make(**options)
