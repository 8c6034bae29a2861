"""RedisStore beyond the protocol suite: several instances, Redis going away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
from redis.asyncio import Redis

from sips_async import SipsClient, SipsConfigError, SipsStoreError, WebhookConfig
from sips_async.stores import EVERYTHING, Change, OrderState, RedisStore, open_store
from tests import _redis_server
from tests._fake_sips import FakeSips
from tests._redis_server import RedisServer, own_server, shared_server
from tests.factories import CLIENT_ID, CLIENT_SECRET, HOOK_SECRET, make_order
from tests.test_store_protocol import update

WAIT = 15.0  # seconds a test waits for an event before it fails


class Heard:
    """A listener that keeps every change and wakes whoever waits for one."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self._grew = asyncio.Event()

    def __call__(self, change: Change) -> None:
        self.changes.append(change)
        self._grew.set()

    async def until(self, count: int) -> list[Change]:
        async with asyncio.timeout(WAIT):
            while len(self.changes) < count:
                self._grew.clear()
                await self._grew.wait()
        return self.changes

    async def reload_everything(self) -> None:
        async with asyncio.timeout(WAIT):
            while Change(EVERYTHING, reload=True) not in self.changes:
                self._grew.clear()
                await self._grew.wait()


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A server of the test's own (with persistence), stopped at the end."""
    with own_server(persist=True) as running:
        yield running


@contextlib.asynccontextmanager
async def opened(url: str, prefix: str, **options: object) -> AsyncIterator[RedisStore]:
    store = RedisStore(url, prefix=prefix, **options)  # type: ignore[arg-type]
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def fresh_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}:"


# -- several instances -----------------------------------------------------------


async def test_a_change_recorded_through_one_instance_is_heard_by_another() -> None:
    url, prefix = shared_server().url, fresh_prefix()
    heard_a, heard_b = Heard(), Heard()
    async with opened(url, prefix) as a, opened(url, prefix) as b:
        a.subscribe(heard_a)
        b.subscribe(heard_b)
        first = update(tx="tx-x", event_id="from-a", raw=b"\xff raw bytes")
        assert (await a.record(first)).new
        assert heard_a.changes == [Change("tx-x", (first,))]  # at once, locally
        assert await heard_b.until(1) == [Change("tx-x", (first,))]
        # b's change reaches a after a's own message (one channel, in order):
        # a hears its own change once, not again through pub/sub.
        second = update(tx="tx-x", event_id="from-b")
        await b.record(second)
        assert await heard_a.until(2) == [
            Change("tx-x", (first,)),
            Change("tx-x", (second,)),
        ]
        assert heard_b.changes == heard_a.changes
        assert await a.history("tx-x") == await b.history("tx-x") == [first, second]


async def test_a_merge_through_one_instance_tells_the_other_to_reload() -> None:
    url, prefix = shared_server().url, fresh_prefix()
    heard = Heard()
    async with opened(url, prefix) as a, opened(url, prefix) as b:
        b.subscribe(heard)
        await a.begin("tx-m")
        await a.record(update(tx=None, order_id="SRS-M", event_id="orphan"))
        await a.settle("tx-m", OrderState.QUEUED, order_id="SRS-M")
        changes = await heard.until(2)
        assert changes[-1] == Change("tx-m", (), reload=True)
        assert [u.event_id for u in await b.history("tx-m")] == ["orphan"]


async def test_replays_across_instances_are_recorded_once() -> None:
    url, prefix = shared_server().url, fresh_prefix()
    async with opened(url, prefix) as a, opened(url, prefix) as b:
        await a.begin("tx-r")
        many = [update(tx="tx-r", event_id=f"r{n}") for n in range(100)]
        results = await asyncio.gather(
            *(a.record(u) for u in many), *(b.record(u) for u in many)
        )
        assert sum(r.new for r in results) == 100
        assert sorted(u.event_id for u in await b.history("tx-r")) == sorted(
            u.event_id for u in many
        )


async def test_one_instance_reads_what_another_began_and_settled() -> None:
    url, prefix = shared_server().url, fresh_prefix()
    async with opened(url, prefix) as a, opened(url, prefix) as b:
        await a.begin("tx-o", po_number="PO-9")
        await a.settle("tx-o", OrderState.QUEUED, order_id="Q-9", queue_id="Q-9")
        row = await b.get("tx-o")
        assert row is not None
        assert (row.state, row.po_number, row.queue_id) == (
            OrderState.QUEUED,
            "PO-9",
            "Q-9",
        )
        got = await b.record(update(tx=None, order_id="Q-9", event_id="q"))
        assert got.key == "tx-o"
        assert [r.transaction_id async for r in b.outstanding()] == ["tx-o"]


# -- retention by TTL -------------------------------------------------------------


async def test_finished_orders_get_a_ttl_and_open_ones_never_do() -> None:
    url, prefix = shared_server().url, fresh_prefix()
    async with opened(url, prefix, retention=3600.0) as store:
        await store.begin("done")
        await store.settle("done", OrderState.QUEUED, order_id="SRS-D")
        await store.begin("open")
        await store.record(update(tx="open", event_id="o"))
        await store.record(update(tx="done", event_type="DU", status="Delivered"))
        # SRS's id first seen on the final update, and on one after it: the
        # keys the link writes expire with the order.
        await store.begin("linked-at-final")
        final = update(tx="linked-at-final", order_id="SRS-E", status="Delivered")
        await store.record(final)
        await store.begin("linked-after")
        await store.record(update(tx="linked-after", status="Delivered"))
        await store.record(update(tx="linked-after", order_id="SRS-F", minute=9))
        raw = Redis.from_url(url)
        try:
            finished = ["o:done", "u:done", "b:done", "l:done", "a:SRS-D"]
            finished += ["l:linked-at-final", "a:SRS-E", "l:linked-after", "a:SRS-F"]
            for key in finished:
                ttl = await raw.ttl(prefix + key)
                assert 3500 < ttl <= 3600, key
            for key in ("o:open", "u:open", "b:open"):
                assert await raw.ttl(prefix + key) == -1, key  # no expiry
        finally:
            await raw.aclose()


# -- Redis going away ----------------------------------------------------------------


async def test_redis_restarted_mid_run(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    heard = Heard()
    prefix = fresh_prefix()
    with caplog.at_level(logging.INFO, logger="sips_async"):
        async with opened(server.url, prefix, timeout=2.0) as store:
            store.subscribe(heard)
            await store.begin("tx-1")
            kept = update(tx="tx-1", event_id="kept")
            assert (await store.record(kept)).new

            server.stop()
            for _ in range(3):  # every call raises, none hangs
                async with asyncio.timeout(WAIT):
                    with pytest.raises(SipsStoreError, match="Redis store"):
                        await store.record(update(tx="tx-1", event_id="lost"))
                    with pytest.raises(SipsStoreError):
                        await store.history("tx-1")
                    with pytest.raises(SipsStoreError):
                        await store.begin("tx-2")

            server.start()
            await heard.reload_everything()  # the subscriber caught up
            assert await store.history("tx-1") == [kept]  # persisted
            again = update(tx="tx-1", event_id="lost")
            assert (await store.record(again)).new
            assert not (await store.record(kept)).new  # replays still known
            assert heard.changes[-1] == Change("tx-1", (again,))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 1, messages
    assert sum("reachable again" in m for m in messages) == 1, messages


async def test_open_against_no_server_raises_quickly() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = RedisStore(f"unix://{tmp}/nobody.sock", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(SipsStoreError, match="unix://"):
            await store.open()
        with pytest.raises(SipsStoreError):
            await store.record(update())
        await store.close()
    assert time.monotonic() - started < WAIT


async def test_the_password_is_never_shown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        own_server(args=("--requirepass", "the-right-one")) as server,
        caplog.at_level(logging.DEBUG),
    ):
        store = RedisStore(f"unix://:hunter2secret@{server.sock}")
        assert "hunter2secret" not in repr(store)
        with pytest.raises(SipsStoreError) as info:
            await store.open()  # a wrong password
        await store.close()
        good = RedisStore(f"unix://:the-right-one@{server.sock}")
        await good.open()
        assert (await good.record(update())).new
        await good.close()
    tcp = RedisStore("redis://admin:hunter2secret@127.0.0.1:6379/0")
    assert "hunter2secret" not in repr(tcp)
    assert "admin" not in repr(tcp)
    assert "hunter2secret" not in str(info.value)
    assert "hunter2secret" not in caplog.text


async def test_a_lost_answer_still_reaches_the_local_listeners() -> None:
    # A write whose answer never came back (a timeout) may have happened:
    # its own published change is then not ignored.
    url, prefix = shared_server().url, fresh_prefix()
    heard = Heard()
    async with opened(url, prefix) as a, opened(url, prefix) as b:
        a.subscribe(heard)
        one = update(tx="tx-l", event_id="1")
        await b.record(one)
        await heard.until(1)
        a._lost["w-lost"] = None
        mine = a._instance.encode()
        a._heard(mine + b" w-lost\n" + msgspec.msgpack.encode([{"k": "tx-l", "u": []}]))
        # answered: already told
        a._heard(mine + b" w-other\n" + msgspec.msgpack.encode([{"k": "tx-l"}]))
        assert heard.changes == [Change("tx-l", (one,)), Change("tx-l")]
        assert "w-lost" not in a._lost


# -- URLs ---------------------------------------------------------------------------


def test_open_store_reads_redis_urls() -> None:
    for url in ("redis://localhost:6379/0", "rediss://h:6380/1", "unix:///tmp/r.sock"):
        store = open_store(url, prefix="p:")
        assert isinstance(store, RedisStore)
        assert store.prefix == "p:"
    with pytest.raises(SipsConfigError, match="socket"):
        RedisStore("unix://")
    with pytest.raises(SipsConfigError):
        RedisStore("redis://localhost:notaport/0")
    with pytest.raises(SipsConfigError, match="retention"):
        RedisStore("redis://localhost", retention=-1)


def test_a_missing_redis_extra_names_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "sips_async.stores._redis")
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(SipsConfigError, match=r"pip install 'sips-async\[redis\]'"):
        open_store("redis://localhost:6379/0")


async def test_enqueue_with_redis_down_raises_before_sending(
    server: RedisServer,
) -> None:
    async with FakeSips() as fake:
        async with SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=fake.url,
            webhook=WebhookConfig(secret=HOOK_SECRET),
            store=RedisStore(server.url, prefix=fresh_prefix(), timeout=2.0),
        ) as client:
            first = await client.orders.enqueue(make_order())
            server.stop()
            with pytest.raises(SipsStoreError):
                await client.orders.enqueue(make_order())
            server.start()
            # Back: the store works again, and the first order is still there.
            listed = [p.transaction_id async for p in client.orders.outstanding()]
            assert listed == [first.transaction_id]
        assert len(fake.enqueued) == 1


async def test_a_client_without_receiver_is_woken_through_a_shared_store() -> None:
    # The instance behind the balancer records SRS's update; the client that
    # enqueued has no receiver of its own and still wakes.
    url, prefix = shared_server().url, fresh_prefix()
    async with (
        FakeSips() as fake,
        SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=fake.url,
            store=RedisStore(url, prefix=prefix),
        ) as client,
        opened(url, prefix) as other,
    ):
        pending = await client.orders.enqueue(make_order())
        waiting = asyncio.ensure_future(pending.wait(timeout=WAIT))
        ack = update(tx=pending.transaction_id, event_type="OA", status="Accepted")
        assert (await other.record(ack)).new
        assert (await waiting).event_id == ack.event_id


async def test_a_client_without_receiver_on_a_local_store_refuses_to_wait() -> None:
    async with (
        FakeSips() as fake,
        SipsClient(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=fake.url
        ) as client,
    ):
        pending = await client.orders.enqueue(make_order())
        with pytest.raises(SipsConfigError, match="webhook"):
            await pending.wait(timeout=1)


def test_a_missing_redis_server_fails_in_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="redis-server"):
        _redis_server.require_redis_server()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="redis-server"):
        _redis_server.require_redis_server()


async def test_close_while_the_first_open_connects_leaves_the_store_closed() -> None:
    store = RedisStore(shared_server().url, prefix=fresh_prefix())
    opening = asyncio.create_task(store.open())
    # The open takes its first step (up to its first round trip) before
    # close() takes its own.
    closing = asyncio.create_task(store.close())
    async with asyncio.timeout(WAIT):
        await closing
        assert opening.done()  # close() waited for it
        with pytest.raises(SipsStoreError, match="is closed"):
            await opening
    with pytest.raises(SipsStoreError, match="is closed"):
        await store.begin("late")
