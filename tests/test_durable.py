"""Durable tracking: SQLite files, crashes, store failures and the outbox.

The crash test runs a real receiver process on a SQLite file, kills it with
SIGKILL while updates arrive, restarts it on the same file and checks that
nothing answered 2xx was lost and nothing was recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aioresponses import aioresponses

from sips_async import (
    MemoryStore,
    OrderUpdate,
    PendingOrder,
    SipsClient,
    SipsServerError,
    SipsStoreError,
    WebhookConfig,
    WebhookReceiver,
)
from sips_async.stores import OrderState, Recorded, SqliteStore, open_store
from sips_async.stores._sqlite import SCHEMA_VERSION
from sips_async.webhooks import Tracker
from sips_async.webhooks._decode import decode_event
from tests._fake_sips import FakeSips, post
from tests._mock import ENQUEUE_URL, mock_token
from tests.factories import (
    CLIENT_ID,
    CLIENT_SECRET,
    HOOK_SECRET,
    event_body,
    make_order,
)

ROOT = Path(__file__).resolve().parent.parent

# -- the SQLite file -----------------------------------------------------------------


async def test_file_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "orders.db"
    store = SqliteStore(path)
    await store.open()
    await store.begin("tx-1")
    await store.record(decode_event(event_body(transaction_id="tx-1")))
    try:
        for name in ("orders.db", "orders.db-wal"):
            mode = stat.S_IMODE(os.stat(tmp_path / name).st_mode)
            assert mode & 0o077 == 0, (name, oct(mode))
    finally:
        await store.close()


async def test_schema_version_is_written_and_a_newer_file_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "orders.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.commit()
    with pytest.raises(SipsStoreError, match="upgrade sips_async"):
        await SqliteStore(path).open()


async def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "orders.db"
    path.write_bytes(b"this is not a database, just text " * 100)
    store = SqliteStore(path)
    with pytest.raises(SipsStoreError, match=r"orders\.db"):
        await store.open()
    await store.close()
    with pytest.raises(SipsStoreError, match="does not exist"):
        await SqliteStore(tmp_path / "missing" / "x.db").open()


async def test_synchronous_full_is_accepted_and_junk_refused(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/full.db?synchronous=full")
    assert isinstance(store, SqliteStore)
    await store.open()
    await store.close()
    with pytest.raises(ValueError, match="synchronous"):
        SqliteStore(tmp_path / "x.db", synchronous="OFF")  # type: ignore[arg-type]


def test_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    relative = open_store("sqlite:///orders.db")
    assert isinstance(relative, SqliteStore) and str(relative.path) == "orders.db"
    absolute = open_store("sqlite:////var/lib/sips/orders.db")
    assert isinstance(absolute, SqliteStore)
    assert str(absolute.path) == "/var/lib/sips/orders.db"
    store = MemoryStore()
    assert open_store(store) is store
    for bad in ("mysql://x/y", "sqlite://host/x.db", "sqlite:///", "memory://x", ""):
        with pytest.raises(ValueError, match=r"store|sqlite|memory"):
            open_store(bad)
    with pytest.raises(ValueError) as info:
        open_store("postgres://user:hunter2@db/x")
    assert "hunter2" not in str(info.value)


# -- the outbox through the client ---------------------------------------------------


async def test_history_and_outbox_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/orders.db"
    async with FakeSips() as fake:
        async with SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=fake.url,
            webhook=WebhookConfig(secret=HOOK_SECRET),
            store=url,
        ) as client:
            pending = await client.orders.enqueue(make_order())
            hook = client.webhook_url
            assert hook is not None
            async with aiohttp.ClientSession() as session:
                reply = await post(
                    session,
                    hook,
                    event_body(transaction_id=pending.transaction_id, event_id="oa"),
                )
                assert reply.status == 200
        async with SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=fake.url,
            webhook=WebhookConfig(secret=HOOK_SECRET),
            store=url,
        ) as again:
            listed = [p async for p in again.orders.outstanding()]
            assert [p.transaction_id for p in listed] == [pending.transaction_id]
            assert [u.event_id for u in listed[0].history] == ["oa"]
            tracked = await again.orders.track(pending.transaction_id)
            assert (await tracked.wait(timeout=5)).event_id == "oa"
            row = await again.receiver.tracker.store.get(pending.transaction_id)  # type: ignore[union-attr]
            assert row is not None
            assert row.state is OrderState.QUEUED
            assert row.po_number == "5641-8Test"
            assert row.queue_id is not None


class _FailingStore(MemoryStore):
    """A store whose writes fail while ``broken`` (a full disk, Redis down)."""

    broken = False

    async def begin(self, *args: object, **kwargs: object) -> list[OrderUpdate]:
        if self.broken:
            raise SipsStoreError("store is down")
        return await super().begin(*args, **kwargs)  # type: ignore[arg-type]

    async def record(self, update: OrderUpdate) -> Recorded:
        if self.broken:
            raise SipsStoreError("store is down")
        return await super().record(update)


async def test_receiver_answers_503_when_the_store_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _FailingStore()
    async with WebhookReceiver(WebhookConfig(secret=HOOK_SECRET), store=store) as rx:
        url = rx.url
        assert url is not None
        body = event_body(transaction_id="tx-503", event_id="1")
        async with aiohttp.ClientSession() as session:
            store.broken = True
            reply = await post(session, url, body)
            assert reply.status == 503
            assert await store.history("tx-503") == []
            store.broken = False  # SRS delivers again: now it is stored
            reply = await post(session, url, body)
            assert reply.status == 200
        assert len(await store.history("tx-503")) == 1
    assert "503" in caplog.text
    assert HOOK_SECRET not in caplog.text


async def test_enqueue_that_cannot_write_its_outbox_sends_nothing() -> None:
    store = _FailingStore()
    store.broken = True
    async with FakeSips() as fake:
        async with SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=fake.url,
            webhook=WebhookConfig(secret=HOOK_SECRET),
            store=store,
        ) as client:
            with pytest.raises(SipsStoreError):
                await client.orders.enqueue(make_order())
            with pytest.raises(SipsStoreError):
                await client.orders.submit(make_order())
        assert fake.enqueued == []
        assert fake.tokens_issued == 0


@pytest.mark.parametrize(
    ("status", "placed"),
    [(500, True), (503, False)],  # 500: after placing?; 503: refused before handling
)
async def test_a_failed_enqueue_says_whether_it_may_be_placed(
    status: int, placed: bool
) -> None:
    order = make_order()
    with aioresponses() as m:
        mock_token(m)
        m.post(ENQUEUE_URL, status=status, body=b"boom", repeat=True)
        async with SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url="https://sips.test",
        ) as client:
            with pytest.raises(SipsServerError) as info:
                await client.orders.enqueue(order)
            assert info.value.transaction_id == order.transaction_id
            assert info.value.maybe_placed is placed
            listed = [p.transaction_id async for p in client.orders.outstanding()]
            # Only an order SRS may have placed stays outstanding.
            assert listed == ([order.transaction_id] if placed else [])


# -- the crash test ------------------------------------------------------------------

ORDERS = 40
STEPS = (("OA", "Accepted"), ("OU", "Processed"), ("DU", "Delivered"))


class Receiver:
    """A receiver subprocess (tests/_crash_receiver.py) and its output."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str) -> None:
        self.proc = proc
        self.url = url
        self.resolved: set[str] = set()

    async def resolved_all(self, expected: set[str]) -> None:
        assert self.proc.stdout is not None
        async with asyncio.timeout(60):
            while not expected <= self.resolved:
                line = (await self.proc.stdout.readline()).decode()
                assert line, "receiver exited"
                if line.startswith("resolved "):
                    self.resolved.add(line.split()[1])


@contextlib.asynccontextmanager
async def receiver(db: Path) -> AsyncIterator[Receiver]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests._crash_receiver",
        str(db),
        str(ORDERS),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = (await proc.stdout.readline()).decode()
        assert line.startswith("URL "), line
        yield Receiver(proc, line.split()[1])
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


def bodies() -> list[tuple[str, str, bytes]]:
    """Every update of every order: (transaction id, event id, body)."""
    out = []
    for n in range(ORDERS):
        tx = f"crash-{n}"
        for step, (kind, status) in enumerate(STEPS):
            event = f"{tx}-{kind}"
            body = event_body(
                transaction_id=tx,
                event_id=event,
                event_type=kind,
                status=status,
                order_id=f"SRS-{n}",
                when=f"2026-05-20T14:0{step}:00",
            )
            out.append((tx, event, body))
    # Interleave the orders, keeping each order's own updates in order.
    return sorted(out, key=lambda item: (STEPS_INDEX[item[1].rsplit("-", 1)[1]], item))


STEPS_INDEX = {kind: i for i, (kind, _) in enumerate(STEPS)}


async def test_sigkill_mid_run_loses_nothing_that_got_a_2xx(tmp_path: Path) -> None:
    db = tmp_path / "orders.db"
    todo = bodies()
    acked: set[str] = set()
    kill_after = len(todo) // 3
    async with aiohttp.ClientSession() as session, receiver(db) as first:
        killed = asyncio.Event()

        async def deliver(event: str, body: bytes) -> None:
            try:
                reply = await post(session, first.url, body)
            except aiohttp.ClientError:
                return  # the receiver died under it: SRS would deliver again
            if reply.status == 200:
                acked.add(event)
                if len(acked) >= kill_after and not killed.is_set():
                    first.proc.send_signal(signal.SIGKILL)
                    killed.set()

        sem = asyncio.Semaphore(8)

        async def bounded(event: str, body: bytes) -> None:
            async with sem:
                if not killed.is_set():
                    await deliver(event, body)

        await asyncio.gather(*(bounded(e, b) for _, e, b in todo))
        assert killed.is_set()
        await first.proc.wait()
    assert first.proc.returncode == -signal.SIGKILL
    assert kill_after <= len(acked) < len(todo)

    # What the dead process answered 2xx for is all in the file.
    store = SqliteStore(db)
    await store.open()
    try:
        kept = {
            u.event_id for n in range(ORDERS) for u in await store.history(f"crash-{n}")
        }
        assert acked <= kept
        delivered = {e.removesuffix("-DU") for e in kept if e.endswith("-DU")}
        open_orders = {row.transaction_id async for row in store.outstanding()}
        assert open_orders == {f"crash-{n}" for n in range(ORDERS)} - delivered
    finally:
        await store.close()

    # Restarted on the same file: SRS redelivers what got no 2xx, plus some
    # replays of what did; every waiter resolves, nothing is kept twice.
    async with aiohttp.ClientSession() as session, receiver(db) as second:
        for i, (_, event, body) in enumerate(todo):
            if event not in acked or i % 4 == 0:
                reply = await post(session, second.url, body)
                assert reply.status == 200
        await second.resolved_all(open_orders)
        second.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.proc.wait(), 30) == 0

    store = SqliteStore(db)
    await store.open()
    try:
        for n in range(ORDERS):
            history = [u.event_id for u in await store.history(f"crash-{n}")]
            assert sorted(history) == sorted(f"crash-{n}-{k}" for k, _ in STEPS)
        assert [row async for row in store.outstanding()] == []
    finally:
        await store.close()


# -- the demo ------------------------------------------------------------------------


async def _sips_async(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sips_async",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "80", "TERM": "dumb"},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_demo_crash_kills_and_restarts_and_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    code, out = await _sips_async(
        "demo", "--crash", "--store", f"sqlite:///{db}", "--orders", "12"
    )
    assert code == 0, out
    assert "service killed (SIGKILL) after" in out
    rows = {
        cells[0].strip(): cells[1].strip()
        for line in out.splitlines()
        if line.startswith("|") and len(cells := line.strip("|").split("|")) == 2
    }
    assert rows["at a final status"] == "12"
    assert rows["updates lost"] == "0"
    assert rows["recorded twice"] == "0"
    assert int(rows["updates answered 2xx"]) == int(rows["updates in the store"]) > 0
    assert int(rows["picked up after restart"]) > 0


async def test_demo_crash_refuses_a_store_that_cannot_survive(tmp_path: Path) -> None:
    code, out = await _sips_async("demo", "--crash", "--store", "memory://")
    assert code == 2
    assert "durable store" in out


async def test_demo_runs_on_a_sqlite_store(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    code, out = await _sips_async(
        "demo", "--fast", "--store", f"sqlite:///{db}", "--orders", "5"
    )
    assert code == 0, out
    store = SqliteStore(db)
    await store.open()
    try:
        assert [row async for row in store.outstanding()] == []
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        sent = conn.execute("SELECT COUNT(*) FROM orders WHERE known = 1")
        # Every order went through the store (and the documented flow's one).
        assert sent.fetchone()[0] == 5 + 1
        final = conn.execute("SELECT COUNT(*) FROM orders WHERE final_at IS NOT NULL")
        assert final.fetchone()[0] == 5 + 1


async def test_updates_yields_each_update_once_across_a_reread(tmp_path: Path) -> None:
    # A merge makes the tracker re-read the order from SQLite: new objects
    # for updates already yielded must not be yielded again.
    tracker = Tracker(SqliteStore(tmp_path / "orders.db"))
    try:
        entry = await tracker.expect("tx-m")
        pending = PendingOrder("tx-m", tracker=tracker, entry=entry)
        seen: list[str] = []
        first = decode_event(
            event_body(transaction_id="tx-m", event_id="1", order_id=None)
        )
        await tracker.record(first)
        orphan = decode_event(
            event_body(
                transaction_id=None, order_id="SRS-9", event_id="2", event_type="OU"
            )
        )
        await tracker.record(orphan)

        started = asyncio.Event()

        async def follow() -> None:
            async for update in pending.updates():
                seen.append(update.event_id)
                started.set()

        task = asyncio.ensure_future(follow())
        await asyncio.wait_for(started.wait(), 10)
        # Linking SRS-9 merges the orphan in: the history is re-read.
        await tracker.settle("tx-m", OrderState.QUEUED, order_id="SRS-9")
        final = decode_event(
            event_body(
                transaction_id="tx-m", event_id="3", event_type="DU", status="Delivered"
            )
        )
        await tracker.record(final)
        await asyncio.wait_for(task, 10)
        assert seen == ["1", "2", "3"]
    finally:
        await tracker.close()  # the SQLite thread must end


async def test_a_store_nobody_closed_does_not_hold_the_process_at_exit(
    tmp_path: Path,
) -> None:
    script = (
        "import asyncio, sys\n"
        "from sips_async.stores import SqliteStore\n"
        "async def main():\n"
        "    store = SqliteStore(sys.argv[1])\n"
        "    await store.open()\n"
        "    await store.begin('tx-left-open')\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(tmp_path / "open.db"), cwd=ROOT
    )
    try:
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    store = SqliteStore(tmp_path / "open.db")
    await store.open()
    try:
        row = await store.get("tx-left-open")  # committed before the exit
        assert row is not None and row.state is OrderState.SENDING
    finally:
        await store.close()
