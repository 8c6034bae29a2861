"""RedisStore's group commit: records queued together go in one script call.

``record()`` calls that queue while a write is in flight (or in the same loop
iteration) are sent as ONE ``EVALSHA`` of the record script, which runs them
one after the other, answers each on its own and publishes one message for
all of them. These tests hold each promise of that on a real redis-server:
one call and one publish per batch, every caller its own answer, one failing
record failing alone, and a server that dies under a batch failing every
caller in it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from sips_async import SipsStoreError
from sips_async.stores import Change, OrderState, Recorded, _redis
from tests._redis_server import RedisServer, own_server
from tests.test_redis_store import WAIT, Heard, fresh_prefix, opened
from tests.test_store_protocol import update


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A server of the test's own: its command counters are the test's alone."""
    with own_server() as running:
        yield running


@pytest.fixture
async def raw(server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(server.url)
    try:
        yield client
    finally:
        await client.aclose()


async def calls(raw: Redis, command: str) -> int:
    """How often ``command`` ran since the last CONFIG RESETSTAT (scripts' too)."""
    stats: dict[str, Any] = await raw.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_records_queued_together_are_one_call_each_answered_on_its_own(
    server: RedisServer, raw: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = fresh_prefix()
    mine, theirs = Heard(), Heard()
    async with (
        opened(server.url, prefix, max_updates=2) as store,
        opened(server.url, prefix) as other,
    ):
        other.subscribe(theirs)
        await store.begin("tx-1")
        await store.settle("tx-1", OrderState.QUEUED, order_id="SRS-1")
        await store.begin("tx-full")
        for n in range(2):
            await store.record(update(tx="tx-full", event_id=f"full-{n}"))
        await theirs.until(2)  # the set-up's changes are all in
        store.subscribe(mine)
        await raw.config_resetstat()

        new = update(tx="tx-1", event_id="new")
        by_srs_id = update(tx=None, order_id="SRS-1", event_id="by-srs-id")
        orphan = update(tx=None, order_id="SRS-9", event_id="orphan")
        over_cap = update(tx="tx-full", event_id="over-cap")
        with caplog.at_level(logging.WARNING, logger="sips_async"):
            results = await asyncio.gather(
                store.record(new),
                store.record(new),  # a replay of one in the same batch
                store.record(by_srs_id),
                store.record(orphan),
                store.record(over_cap),
            )

        assert list(results) == [
            Recorded("tx-1", True),
            Recorded("tx-1", False),
            Recorded("tx-1", True),
            Recorded("order:SRS-9", True),
            Recorded("tx-full", False),
        ]
        assert await calls(raw, "evalsha") == 1  # one script call for five
        assert await calls(raw, "publish") == 1  # and one message
        assert "over-cap of order tx-full" in caplog.text
        expected = [
            Change("tx-1", (new,)),
            Change("tx-1", (by_srs_id,)),
            Change("order:SRS-9", (orphan,)),
        ]
        assert mine.changes == expected  # in order, each once, no replay
        assert (await theirs.until(2 + 3))[2:] == expected
        assert await store.history("tx-1") == [new, by_srs_id]
        assert await store.history("order:SRS-9") == [orphan]
        assert [u.event_id for u in await other.history("tx-full")] == [
            "full-0",
            "full-1",
        ]


async def test_one_failing_record_fails_alone_and_the_rest_of_its_batch_is_kept(
    server: RedisServer, raw: Redis
) -> None:
    prefix = fresh_prefix()
    mine, theirs = Heard(), Heard()
    # Not a sorted set where the script keeps tx-bad's replay markers: the
    # script's ZSCORE on it fails (WRONGTYPE) in the middle of the batch.
    await raw.set(f"{prefix}u:tx-bad", "not a zset")
    async with opened(server.url, prefix) as store, opened(server.url, prefix) as other:
        other.subscribe(theirs)
        assert (await store.record(update(tx="tx-warm"))).new  # script loaded
        await theirs.until(1)
        store.subscribe(mine)
        before = update(tx="tx-a", event_id="before")
        bad = update(tx="tx-bad", event_id="bad")
        after = update(tx="tx-b", event_id="after")
        await raw.config_resetstat()
        results = await asyncio.gather(
            store.record(before),
            store.record(bad),
            store.record(after),
            return_exceptions=True,
        )
        assert await calls(raw, "evalsha") == 1  # all three in one call
        assert results[0] == Recorded("tx-a", True)
        assert isinstance(results[1], SipsStoreError)
        assert "WRONGTYPE" in str(results[1])
        assert results[2] == Recorded("tx-b", True)

        expected = [Change("tx-a", (before,)), Change("tx-b", (after,))]
        assert mine.changes == expected  # the failed one told nobody
        assert (await theirs.until(1 + 2))[1:] == expected
        assert await other.history("tx-a") == [before]
        assert await other.history("tx-b") == [after]
        # Committed, so a redelivery is a replay...
        assert not (await store.record(after)).new
        # ... and the failed one was not: once its key is fixed it is new.
        await raw.delete(f"{prefix}u:tx-bad")
        assert await store.record(bad) == Recorded("tx-bad", True)
        assert await store.history("tx-bad") == [bad]


async def test_a_redis_dying_under_a_batch_fails_every_caller_of_it(
    server: RedisServer, raw: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    async with opened(server.url, fresh_prefix(), timeout=5.0) as store:
        assert (await store.record(update(tx="tx-warm"))).new  # script loaded
        # Writes wait (the batch is sent and held) until the server dies.
        await raw.client_pause(60_000, all=False)  # CLIENT PAUSE ... WRITE
        batch = [
            asyncio.ensure_future(store.record(update(tx=f"tx-{n}"))) for n in range(8)
        ]
        async with asyncio.timeout(WAIT):
            while not any(
                "b" in c["flags"] and c["cmd"] == "evalsha"
                for c in await raw.client_list()
            ):
                pass  # each CLIENT LIST is a round trip: the batch goes out
        assert not any(task.done() for task in batch)
        with caplog.at_level(logging.WARNING, logger="sips_async"):
            server.stop()
            async with asyncio.timeout(WAIT):
                results = await asyncio.gather(*batch, return_exceptions=True)
        assert all(isinstance(r, SipsStoreError) for r in results), results
        messages = [r.getMessage() for r in caplog.records]
        assert sum("unreachable" in m for m in messages) == 1, messages
        # Back up: the next batch goes out on a fresh connection.
        server.start()
        async with asyncio.timeout(WAIT):
            assert (await store.record(update(tx="tx-after"))).new


async def test_a_batch_published_by_another_instance_is_heard_change_by_change(
    server: RedisServer,
) -> None:
    prefix = fresh_prefix()
    heard = Heard()
    async with opened(server.url, prefix) as a, opened(server.url, prefix) as b:
        b.subscribe(heard)
        await a.begin("tx-m")
        await a.settle("tx-m", OrderState.QUEUED, order_id="SRS-m")
        ours = [update(tx=f"tx-{n}", event_id=f"m{n}") for n in range(20)]
        ours.append(update(tx="tx-m", order_id="SRS-m", event_id="linked"))
        await asyncio.gather(*(a.record(u) for u in ours))
        changes = await heard.until(len(ours))
        assert changes == [Change(u.transaction_id or "", (u,)) for u in ours]


async def test_an_own_batch_whose_answer_was_lost_is_told_in_full(
    server: RedisServer,
) -> None:
    async with opened(server.url, fresh_prefix()) as store:
        heard = Heard()
        store.subscribe(heard)
        store._lost["w-lost"] = None
        mine = store._instance.encode()
        batch = [{"k": "tx-1"}, {"k": "tx-2", "r": True}]
        store._heard(mine + b" w-lost\n" + msgspec.msgpack.encode(batch))
        assert heard.changes == [Change("tx-1"), Change("tx-2", reload=True)]


async def test_a_message_not_a_whole_list_of_changes_is_ignored_and_logged(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with opened(server.url, fresh_prefix()) as store:
        heard = Heard()
        store.subscribe(heard)
        whole = msgspec.msgpack.encode([{"k": "tx-1"}, {"k": "tx-2"}])
        with caplog.at_level(logging.WARNING, logger="sips_async"):
            store._heard(b"someone-else 1\n" + msgspec.msgpack.encode({"k": "tx-1"}))
            store._heard(b"someone-else 2\n" + whole[:-3])  # cut short
            store._heard(b'someone-else 3\n[{"k": "tx-1"}]')  # JSON
        assert heard.changes == []  # nothing half-told
        assert caplog.text.count("ignored a malformed change") == 3


async def test_replies_are_parsed_by_hiredis(server: RedisServer) -> None:
    # The redis extra (and the test and bench extras) install redis[hiredis]:
    # redis-py then parses replies in C. A pure-Python parser here means the
    # extra lost hiredis, and every reply costs several times more.
    async with opened(server.url, fresh_prefix()) as store:
        assert (await store.record(update())).new
        pool = store._pool
        assert pool is not None
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            assert type(connection._parser).__name__ == "_AsyncHiredisParser"
        finally:
            await pool.release(connection)


async def test_big_updates_are_spread_over_several_calls_each_answered(
    server: RedisServer, raw: Redis
) -> None:
    prefix = fresh_prefix()
    # Each stored update is a bit over half the byte bound of one call.
    body = b"x" * (_redis._GROUP_BYTES * 3 // 8)
    big = [update(tx=f"tx-big-{n}", event_id=f"big-{n}", raw=body) for n in range(4)]
    small = [update(tx=f"tx-small-{n}", event_id=f"small-{n}") for n in range(3)]
    async with opened(server.url, prefix) as store:
        assert (await store.record(update(tx="tx-warm"))).new  # script loaded
        await raw.config_resetstat()
        results = await asyncio.gather(
            store.record(small[0]),
            *(store.record(u) for u in big),
            store.record(small[1]),
            store.record(small[2]),
        )
        assert await calls(raw, "evalsha") == 4  # not one call of ~2 MB
        order = [small[0], *big, small[1], small[2]]
        assert list(results) == [Recorded(u.transaction_id or "", True) for u in order]
        for u in order:
            assert await store.history(u.transaction_id or "") == [u]
