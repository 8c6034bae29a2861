"""SqliteStore: orders and updates in one SQLite file; survives crashes and restarts.

One process (one host) writes the file. Writes are grouped: every write
that arrives while a commit is in flight joins the next transaction, and the
whole group runs as one call on the connection's thread, so durability costs
one commit per burst, not one per webhook. Within a group, the usual
webhooks (new updates of different orders) are written a chunk at a time, a
few statements per chunk rather than three per webhook. A coroutine returns
only once its write is committed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import aiosqlite

from ..errors import SipsConfigError, SipsStoreError
from ..models import OrderUpdate
from ._base import (
    DEFAULT_MAX_UNKNOWN,
    DEFAULT_MAX_UPDATES,
    DEFAULT_RETENTION,
    OUTSTANDING_STATES,
    SETTLED_STATES,
    Change,
    Listeners,
    OrderState,
    Recorded,
    TrackedOrder,
    decode_update,
    encode_update,
    log_over_cap,
    logger,
    opens_finished,
    order_key,
    replay_key,
)

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

T = TypeVar("T")
Synchronous = Literal["NORMAL", "FULL"]

#: Each entry brings the file from version ``i`` to ``i + 1``.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE orders (
            key TEXT PRIMARY KEY,
            known INTEGER NOT NULL,
            state TEXT,
            po_number TEXT,
            created_at TEXT,
            order_id TEXT,
            queue_id TEXT,
            error TEXT,
            final_at REAL,
            n INTEGER NOT NULL DEFAULT 0,
            seen REAL NOT NULL
        )""",
        "CREATE INDEX orders_open ON orders (known, final_at, seen)",
        """CREATE TABLE updates (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL,
            replay TEXT NOT NULL,
            body BLOB NOT NULL
        )""",
        "CREATE UNIQUE INDEX updates_replay ON updates (key, replay)",
        "CREATE TABLE aliases (order_id TEXT PRIMARY KEY, key TEXT NOT NULL)",
        "CREATE INDEX aliases_key ON aliases (key)",
    ),
)
#: The schema version this code writes.
SCHEMA_VERSION: Final = len(_MIGRATIONS)

#: Seconds between two sweeps for finished orders past their retention.
_SWEEP_EVERY: Final = 60.0
_PAGE: Final = 500
_OUTSTANDING_SQL: Final = ",".join(f"'{s.value}'" for s in OUTSTANDING_STATES)
_ROW_COLUMNS: Final = (
    "key, state, created_at, po_number, order_id, queue_id, error, final_at"
)

_KNOWN_N: Final = "SELECT known, n FROM orders WHERE key = ?"
_EXISTS: Final = "SELECT 1 FROM orders WHERE key = ?"
_ALIAS: Final = "SELECT key FROM aliases WHERE order_id = ?"
# record(): append unless a replay or over the per-order cap (parameters:
# key, replay marker, body, cap).
_APPEND: Final = (
    "INSERT OR IGNORE INTO updates (key, replay, body) SELECT ?1, ?2, ?3 "
    "WHERE COALESCE((SELECT n FROM orders WHERE key = ?1), 0) < ?4"
)
# record(): count the appended update; the SRS id of an update with both ids
# goes on a known order's row; a final update starts a known order's
# retention. Two statements, so that the usual (not final) update leaves the
# orders_open index alone.
_COUNT: Final = (
    "UPDATE orders SET n = n + 1, "
    "order_id = CASE WHEN ?1 IS NOT NULL AND known = 1 THEN ?1 ELSE order_id END "
    "WHERE key = ?2"
)
_COUNT_FINAL: Final = (
    "UPDATE orders SET n = n + 1, "
    "final_at = CASE WHEN known = 1 AND final_at IS NULL THEN ?1 ELSE final_at END, "
    "order_id = CASE WHEN ?2 IS NOT NULL AND known = 1 THEN ?2 ELSE order_id END "
    "WHERE key = ?3"
)
# The row of an order known only by its updates (n: how many were appended).
_INSERT_UNKNOWN: Final = "INSERT INTO orders (key, known, seen, n) VALUES (?, 0, ?, ?)"
# Link an SRS id to a key (parameters: id, key); no row changes when the
# link is there already.
_LINK: Final = (
    "INSERT INTO aliases (order_id, key) VALUES (?1, ?2) "
    "ON CONFLICT (order_id) DO UPDATE SET key = excluded.key "
    "WHERE key != excluded.key"
)
# The same, done only when no updates wait under the id (no orphan order to
# merge): the usual first link in one statement. (Not RETURNING, which costs
# more than a second statement.)
_LINK_NO_ORPHAN: Final = (
    "INSERT INTO aliases (order_id, key) SELECT ?1, ?2 "
    "WHERE NOT EXISTS (SELECT 1 FROM orders WHERE key = 'order:' || ?1) "
    "ON CONFLICT (order_id) DO UPDATE SET key = excluded.key "
    "WHERE key != excluded.key"
)

# -- records in chunks --------------------------------------------------------
#
# A group's run of records for distinct orders is written a chunk at a time:
# one statement reads whether every record of the chunk takes the usual way
# (a new update, under the cap, for an order the file has; its SRS id linked
# to nothing else and no updates waiting under it), then one statement per
# step (append, count, link) writes the whole chunk. A chunk that does not
# is written record by record, so the outcome is the same either way.
#
# Each statement is a round trip through sqlite3 that gives up the GIL, which
# the event loop then has to hand back: four statements a chunk instead of
# three a record.
#
# UPDATE ... FROM needs SQLite 3.33; an older library writes record by record.
_CHUNKS: Final = sqlite3.sqlite_version_info >= (3, 33, 0)
#: Row counts a statement is prepared for. A chunk's rows are padded up to
#: the next with copies of their last row, which change nothing more: few
#: statements to cache, at most a third of the rows padding.
_CHUNK_SIZES: Final = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
_CHUNK_MAX: Final = _CHUNK_SIZES[-1]
#: Prepared statements kept per connection (sqlite3's default is 128): the
#: chunk statements (5 kinds by 11 sizes) and the others, with room to spare.
_CACHED_STATEMENTS: Final = 256


_NULLS: Final = (None, None, None, None)


def _padded(n: int) -> int:
    for size in _CHUNK_SIZES:
        if size >= n:
            return size
    raise AssertionError(n)  # chunks are cut at _CHUNK_MAX


def _values(rows: int, columns: int) -> str:
    row = "(" + ", ".join("?" * columns) + ")"
    return ", ".join([row] * rows)


@functools.cache
def _check_many(rows: int, links: bool) -> str:
    # Rows: key, replay marker; the cap; (SRS ids to link). How many rows are
    # new updates under the cap of an order the file has, and how many ids
    # have no orphan to merge. (An id linked to its order already is linked
    # again to no effect, as record by record.)
    linkable = (
        f"(SELECT count(*) FROM (VALUES {_values(rows, 1)}) AS l "
        "WHERE NOT EXISTS (SELECT 1 FROM orders WHERE key = 'order:' || l.column1))"
        if links
        else "0"
    )
    return (
        f"SELECT (SELECT count(*) FROM (VALUES {_values(rows, 2)}) AS v "
        "WHERE (SELECT n FROM orders WHERE key = v.column1) < ? "
        "AND NOT EXISTS (SELECT 1 FROM updates "
        f"WHERE key = v.column1 AND replay = v.column2)), {linkable}"
    )


@functools.cache
def _append_many(rows: int) -> str:
    # Rows: key, replay marker, body, arrival; padded with rows of NULLs,
    # which it skips (an ignored row would still use up an id).
    return (
        "INSERT INTO updates (key, replay, body) "
        f"SELECT column1, column2, column3 FROM (VALUES {_values(rows, 4)}) "
        "WHERE column4 IS NOT NULL ORDER BY column4"
    )


@functools.cache
def _count_many(rows: int) -> str:
    # Rows: key, SRS id (or NULL). _COUNT over many rows.
    return (
        "UPDATE orders SET n = n + 1, "
        "order_id = CASE WHEN v.column2 IS NOT NULL AND known = 1 "
        "THEN v.column2 ELSE order_id END "
        f"FROM (VALUES {_values(rows, 2)}) AS v WHERE orders.key = v.column1"
    )


@functools.cache
def _count_final_many(rows: int) -> str:
    # The time, then rows: key, SRS id (or NULL). _COUNT_FINAL over many rows.
    return (
        "UPDATE orders SET n = n + 1, "
        "final_at = CASE WHEN known = 1 AND final_at IS NULL THEN ?1 "
        "ELSE final_at END, "
        "order_id = CASE WHEN v.column2 IS NOT NULL AND known = 1 "
        "THEN v.column2 ELSE order_id END "
        f"FROM (VALUES {_values(rows, 2)}) AS v WHERE orders.key = v.column1"
    )


@functools.cache
def _link_many(rows: int) -> str:
    # Rows: SRS id, key. _LINK over many rows.
    return (
        f"INSERT INTO aliases (order_id, key) VALUES {_values(rows, 2)} "
        "ON CONFLICT (order_id) DO UPDATE SET key = excluded.key "
        "WHERE key != excluded.key"
    )


#: A connection or a cursor: what the operations run their statements on.
_Db = sqlite3.Connection | sqlite3.Cursor
_Op = Callable[..., tuple[Any, Sequence[Change]]]
#: A write waiting for the next group: the operation, its arguments, and the
#: future its caller awaits (resolved on the event loop only).
_Queued = tuple[_Op, tuple[Any, ...], "asyncio.Future[Any]"]


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _row(values: tuple[Any, ...]) -> TrackedOrder:
    key, state, created, po, order_id, queue_id, error, final_at = values
    return TrackedOrder(
        transaction_id=key,
        state=OrderState(state),
        created_at=dt.datetime.fromisoformat(created),
        po_number=po,
        order_id=order_id,
        queue_id=queue_id,
        error=error,
        final_at=None if final_at is None else _utc(final_at),
    )


class SqliteStore(Listeners):
    """A :class:`~sips_async.stores.Store` in a SQLite file (WAL mode).

    Args:
        path: the database file; created (mode 0600: webhook bodies carry
            customer names) if missing. Its directory must exist.
        synchronous: ``"NORMAL"`` (default) survives a process crash;
            ``"FULL"`` also survives power loss, at an fsync per commit.
        retention: seconds a finished order is kept after its final update.
        max_unknown: orders never seen here whose updates are kept.
        max_updates: updates kept per order.
        clock: seconds since the epoch (a seam for tests).

    Example::

        store = SqliteStore("orders.db")
        async with SipsClient(..., store=store) as client: ...
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "NORMAL",
        retention: float = DEFAULT_RETENTION,
        max_unknown: int = DEFAULT_MAX_UNKNOWN,
        max_updates: int = DEFAULT_MAX_UPDATES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        if synchronous not in ("NORMAL", "FULL"):
            raise SipsConfigError(
                f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}"
            )
        if max_unknown < 0 or max_updates < 1:
            raise SipsConfigError("max_unknown must be >= 0 and max_updates >= 1")
        self.path = Path(path)
        self._synchronous = synchronous
        self._retention = retention
        self._max_unknown = max_unknown
        self._max_updates = max_updates
        self._clock = clock
        self._conn: aiosqlite.Connection | None = None
        self._opening: asyncio.Lock | None = None
        self._closed = False
        self._queue: list[_Queued] = []
        self._writer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_sweep = 0.0
        # Thread-side state (touched only on the connection's thread).
        self._unknown = 0
        self._linked: dict[str, str] = {}
        self._record_op = self._op_record  # what _apply writes in chunks

    def __repr__(self) -> str:
        state = "open" if self._conn is not None else "closed"
        return f"<SqliteStore {str(self.path)!r} {state}>"

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        if self._conn is not None:
            return
        if self._closed:
            raise SipsStoreError(f"SQLite store {self.path} is closed")
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._conn is None:
                self._conn = await self._connect()

    async def _connect(self) -> aiosqlite.Connection:
        path = self.path
        if not path.parent.is_dir():
            raise SipsStoreError(
                f"SQLite store: directory {path.parent} does not exist"
            )
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            pass
        except OSError as exc:
            raise SipsStoreError(f"SQLite store {path}: {exc.strerror}") from None
        else:
            os.close(fd)
        pending = aiosqlite.connect(
            path, isolation_level=None, cached_statements=_CACHED_STATEMENTS
        )
        # A store nobody closed must not hold the interpreter at exit (the
        # thread is joined before atexit runs). Ending mid-write is safe: WAL
        # rolls an unfinished transaction back on the next open.
        thread = getattr(pending, "_thread", None)
        if thread is not None:
            thread.daemon = True
        try:
            conn = await pending
        except (sqlite3.Error, OSError) as exc:
            raise SipsStoreError(f"SQLite store {path}: {exc}") from None
        try:
            await self._in_thread(conn, self._prepare)
            if self._closed:  # close() came while connecting
                raise SipsStoreError(f"SQLite store {path} is closed")
        except BaseException:
            await conn.close()
            raise
        return conn

    def _prepare(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA busy_timeout = 5000")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise SipsStoreError(f"SQLite store {self.path}: WAL mode unavailable")
        db.execute(f"PRAGMA synchronous = {self._synchronous}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SipsStoreError(
                f"SQLite store {self.path} has schema version {version}; this "
                f"sips_async knows up to {SCHEMA_VERSION}: upgrade sips_async"
            )
        for target in range(version, SCHEMA_VERSION):
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _MIGRATIONS[target]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {target + 1}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        self._unknown = db.execute(
            "SELECT COUNT(*) FROM orders WHERE known = 0"
        ).fetchone()[0]

    async def close(self) -> None:
        self._closed = True
        await opens_finished(self._opening)
        writer = self._writer
        if writer is not None:
            await asyncio.gather(writer, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _in_thread(
        self, conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any
    ) -> T:
        # One call on aiosqlite's connection thread for a whole group of
        # statements: its public API costs a thread round trip per statement
        # (about 33 us measured), which is what group commit must avoid.
        try:
            raw: Any = conn
            result: T = await raw._execute(fn, raw._conn, *args)
        except SipsStoreError:
            raise
        except (sqlite3.Error, OSError, ValueError) as exc:
            raise SipsStoreError(f"SQLite store {self.path}: {exc}") from None
        return result

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        await self.open()
        assert self._conn is not None
        return await self._in_thread(self._conn, fn, *args)

    # -- group commit ----------------------------------------------------------

    async def _write(self, op: _Op, *args: Any) -> Any:
        if self._conn is None:
            await self.open()
        writer, loop = self._writer, self._loop
        if writer is None or loop is None or writer.done():
            # The first write of a group starts its writer; the others join
            # it on the writer's loop (asking for the running loop costs a
            # system call per write).
            loop = self._loop = asyncio.get_running_loop()
            writer = None
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((op, args, future))
        if writer is None:
            self._writer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            now = self._clock()
            sweep = now - self._last_sweep >= _SWEEP_EVERY
            try:
                conn = self._conn
                if conn is None:
                    raise SipsStoreError(f"SQLite store {self.path} is closed")
                outcomes = await self._in_thread(conn, self._apply, batch, now, sweep)
            except Exception as exc:
                # SipsStoreError, or a bug: either way the group was rolled
                # back, and no caller may be left waiting for it.
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            if sweep:
                self._last_sweep = now
            for (_, _, future), (result, changes) in zip(batch, outcomes, strict=True):
                for change in changes:
                    self.notify(change)
                if not future.done():
                    future.set_result(result)

    def _apply(
        self,
        db: sqlite3.Connection,
        batch: list[_Queued],
        now: float,
        sweep: bool,
    ) -> list[tuple[Any, Sequence[Change]]]:
        unknown = self._unknown
        # One cursor for the group: a statement per write costs no cursor.
        cursor = db.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            outcomes: list[tuple[Any, Sequence[Change]]] = []
            records: list[OrderUpdate] = []  # a run of records, in order
            record = self._record_op
            for op, args, _ in batch:
                if op is record:
                    records.append(args[0])
                    continue
                if records:
                    self._record_all(cursor, now, records, outcomes)
                    records = []
                outcomes.append(op(cursor, now, *args))
            if records:
                self._record_all(cursor, now, records, outcomes)
            if sweep:
                self._sweep(cursor, now)
            cursor.execute("COMMIT")
        except BaseException:
            self._unknown = unknown
            self._linked.clear()  # a cache of committed links only
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return outcomes

    # -- orders ----------------------------------------------------------------

    async def begin(
        self,
        transaction_id: str,
        *,
        po_number: str | None = None,
        state: OrderState = OrderState.SENDING,
    ) -> list[OrderUpdate]:
        history: list[OrderUpdate] = await self._write(
            self._op_begin, transaction_id, po_number, state
        )
        return history

    async def adopt(self, transaction_id: str) -> list[OrderUpdate]:
        history: list[OrderUpdate] = await self._write(self._op_adopt, transaction_id)
        return history

    async def settle(
        self,
        transaction_id: str,
        state: OrderState,
        *,
        order_id: str | None = None,
        queue_id: str | None = None,
        error: str | None = None,
    ) -> None:
        await self._write(
            self._op_settle, transaction_id, state, order_id, queue_id, error
        )

    async def get(self, transaction_id: str) -> TrackedOrder | None:
        def read(db: _Db) -> TrackedOrder | None:
            values = db.execute(
                f"SELECT {_ROW_COLUMNS} FROM orders WHERE key = ? AND known = 1",
                (transaction_id,),
            ).fetchone()
            return None if values is None else _row(values)

        return await self._read(read)

    async def outstanding(self) -> AsyncIterator[TrackedOrder]:
        after: tuple[float, str] = (-1.0, "")

        def page(db: _Db) -> list[tuple[Any, ...]]:
            rows: list[tuple[Any, ...]] = db.execute(
                f"SELECT {_ROW_COLUMNS}, seen FROM orders WHERE known = 1 "
                f"AND final_at IS NULL AND state IN ({_OUTSTANDING_SQL}) "
                "AND (seen, key) > (?, ?) ORDER BY seen, key LIMIT ?",
                (*after, _PAGE),
            ).fetchall()
            return rows

        while True:
            rows = await self._read(page)
            for values in rows:
                yield _row(values[:-1])
            if len(rows) < _PAGE:
                return
            after = (rows[-1][-1], rows[-1][0])

    # -- updates ---------------------------------------------------------------

    async def record(self, update: OrderUpdate) -> Recorded:
        recorded: Recorded = await self._write(self._record_op, update)
        return recorded

    async def history(self, key: str) -> list[OrderUpdate]:
        return await self._read(self._history, key)

    @staticmethod
    def _history(db: _Db, key: str) -> list[OrderUpdate]:
        rows = db.execute(
            "SELECT body FROM updates WHERE key = ? ORDER BY id", (key,)
        ).fetchall()
        return [decode_update(body) for (body,) in rows]

    # -- operations (run on the connection's thread, inside a transaction) -----

    def _op_begin(
        self,
        db: _Db,
        now: float,
        key: str,
        po_number: str | None,
        state: OrderState,
    ) -> tuple[list[OrderUpdate], Sequence[Change]]:
        found = db.execute(_KNOWN_N, (key,)).fetchone()
        created = _utc(now).isoformat()
        if found is None:
            db.execute(
                "INSERT INTO orders (key, known, state, po_number, created_at, seen) "
                "VALUES (?, 1, ?, ?, ?, ?)",
                (key, state.value, po_number, created, now),
            )
            return [], ()
        known, n = found
        if known:
            db.execute(
                "UPDATE orders SET state = ?, po_number = COALESCE(?, po_number) "
                "WHERE key = ?",
                (state.value, po_number, key),
            )
        else:
            self._unknown -= 1
            db.execute(
                "UPDATE orders SET known = 1, state = ?, po_number = ?, "
                "created_at = ?, seen = ? WHERE key = ?",
                (state.value, po_number, created, now, key),
            )
        return (self._history(db, key) if n else []), ()

    def _op_adopt(
        self, db: _Db, now: float, key: str
    ) -> tuple[list[OrderUpdate], Sequence[Change]]:
        found = db.execute(_KNOWN_N, (key,)).fetchone()
        if found is not None and found[0]:
            return (self._history(db, key) if found[1] else []), ()
        return self._op_begin(db, now, key, None, OrderState.TRACKED)

    def _op_settle(
        self,
        db: _Db,
        now: float,
        key: str,
        state: OrderState,
        order_id: str | None,
        queue_id: str | None,
        error: str | None,
    ) -> tuple[None, Sequence[Change]]:
        found = db.execute("SELECT known FROM orders WHERE key = ?", (key,)).fetchone()
        if found is None or not found[0]:
            self._op_begin(db, now, key, None, state)
        db.execute(
            "UPDATE orders SET state = ?, order_id = COALESCE(order_id, ?), "
            "queue_id = COALESCE(?, queue_id), error = ?, "
            # Placed, or provably never sent: retention starts now.
            "final_at = CASE WHEN ? THEN COALESCE(final_at, ?) ELSE final_at END "
            "WHERE key = ?",
            (
                state.value,
                order_id,
                queue_id,
                error,
                int(state in SETTLED_STATES),
                now,
                key,
            ),
        )
        merged = False
        for srs_id in (order_id, queue_id):
            if srs_id:
                merged = self._link(db, key, srs_id) or merged
        return None, ((Change(key, reload=True),) if merged else ())

    def _op_record(
        self, db: _Db, now: float, update: OrderUpdate
    ) -> tuple[Recorded, Sequence[Change]]:
        srs_id = update.order_id
        if update.transaction_id is None:
            alias = None
            if srs_id is not None:
                found = db.execute(_ALIAS, (srs_id,)).fetchone()
                alias = found[0] if found else None
            key = order_key(update, alias)
        else:
            key = update.transaction_id
        # The usual update (a new one, under the cap, for an order the file
        # has): two statements, append then count. The cap is checked by the
        # append itself; the row read is folded into the count's UPDATE.
        # A bytearray binds as the same BLOB as bytes, without the adapter
        # lookup sqlite3 does for every parameter that is not an exact int,
        # float, str or bytearray (about 0.5 us each).
        body = bytearray(encode_update(update))
        inserted = db.execute(
            _APPEND, (key, replay_key(update), body, self._max_updates)
        ).rowcount
        if not inserted:
            return self._not_appended(db, now, key, update), ()
        both_ids = update.transaction_id is not None and srs_id is not None
        row_id = srs_id if both_ids else None
        if update.is_final:
            counted = db.execute(_COUNT_FINAL, (now, row_id, key)).rowcount
        else:
            counted = db.execute(_COUNT, (row_id, key)).rowcount
        if not counted:  # updates only: an order this store never saw
            db.execute(_INSERT_UNKNOWN, (key, now, 1))
            self._unknown += 1
            self._cap_unknown(db)
        merged = False
        if both_ids:
            assert srs_id is not None
            merged = self._link(db, key, srs_id)
        return Recorded(key, True), (Change(key, (update,), reload=merged),)

    def _record_all(
        self,
        db: _Db,
        now: float,
        updates: list[OrderUpdate],
        out: list[tuple[Any, Sequence[Change]]],
    ) -> None:
        """Record ``updates`` in order: chunks of distinct orders, else one by one."""
        if not _CHUNKS or len(updates) < 2:
            out.extend([self._op_record(db, now, update) for update in updates])
            return
        chunk: list[OrderUpdate] = []
        keys: set[str] = set()
        for update in updates:
            key = update.transaction_id
            if key is None or key in keys or len(chunk) == _CHUNK_MAX:
                self._record_chunk(db, now, chunk, out)
                chunk, keys = [], set()
                if key is None:  # its key comes from an alias: one by one
                    out.append(self._op_record(db, now, update))
                    continue
            chunk.append(update)
            keys.add(key)
        self._record_chunk(db, now, chunk, out)

    def _record_chunk(
        self,
        db: _Db,
        now: float,
        chunk: list[OrderUpdate],
        out: list[tuple[Any, Sequence[Change]]],
    ) -> None:
        # Every update in ``chunk`` has a transactionID, each a different one.
        n = len(chunk)
        if n < 2:
            out.extend([self._op_record(db, now, update) for update in chunk])
            return
        replays: list[Any] = []
        bodies: list[Any] = []
        counts: list[Any] = []
        finals: list[Any] = []
        links: list[Any] = []
        linked = self._linked
        for arrival, update in enumerate(chunk):
            key = update.transaction_id
            srs_id = update.order_id
            replay = replay_key(update)
            replays += (key, replay)
            bodies += (key, replay, bytearray(encode_update(update)), arrival)
            if update.is_final:
                finals += (key, srs_id)
            else:
                counts += (key, srs_id)
            if srs_id is not None and linked.get(srs_id) != key:
                links += (srs_id, key)
        # The check: the chunk's rows and its links, both padded to its size.
        size = _padded(n)
        check: list[Any] = replays + replays[-2:] * (size - n)
        check.append(self._max_updates)
        if links:
            ids = links[::2]
            check += ids + ids[-1:] * (size - len(ids))
        found = db.execute(_check_many(size, bool(links)), check).fetchone()
        if found != (size, size if links else 0):
            # Something to decide record by record.
            out.extend([self._op_record(db, now, update) for update in chunk])
            return
        # Every row takes the usual way: nothing here can differ from it.
        self._write_many(db, _append_many, bodies, 4, n, pad=_NULLS)
        if counts:
            self._write_many(db, _count_many, counts, 2, len(counts) // 2)
        if finals:
            self._write_many(db, _count_final_many, finals, 2, len(finals) // 2, now)
        if links:
            self._write_many(db, _link_many, links, 2, None)
            if len(linked) > 10_000:
                linked.clear()
            for i in range(0, len(links), 2):
                linked[links[i]] = links[i + 1]
        out.extend(
            [
                (Recorded(key, True), (Change(key, (update,)),))
                for update in chunk
                if (key := update.transaction_id) is not None
            ]
        )

    @staticmethod
    def _write_many(
        db: _Db,
        sql: Callable[[int], str],
        params: list[Any],
        width: int,
        expected: int | None,
        *first: Any,
        pad: Sequence[Any] | None = None,
    ) -> None:
        """Run ``sql`` over ``params`` (rows of ``width``, padded).

        ``expected``: how many rows it must change (``None``: not checked).
        """
        rows = len(params) // width
        size = _padded(rows)
        padding = list(params[-width:] if pad is None else pad) * (size - rows)
        changed = db.execute(sql(size), [*first, *params, *padding]).rowcount
        if expected is not None and changed != expected:
            # The check said every row would: a bug. The group is rolled back.
            raise sqlite3.IntegrityError(
                f"a chunk of records wrote {changed} rows, {expected} expected"
            )

    def _not_appended(
        self, db: _Db, now: float, key: str, update: OrderUpdate
    ) -> Recorded:
        # A replay, or an order at its cap: nothing was written. Which one
        # (and the unknown order's row a first update writes) as before.
        found = db.execute(_KNOWN_N, (key,)).fetchone()
        if found is None:
            db.execute(_INSERT_UNKNOWN, (key, now, 0))
            self._unknown += 1
            self._cap_unknown(db)
        elif found[1] >= self._max_updates:
            log_over_cap(update, key, self._max_updates)
        return Recorded(key, False)

    def _link(self, db: _Db, key: str, srs_id: str) -> bool:
        if self._linked.get(srs_id) == key:
            return False
        if len(self._linked) > 10_000:
            self._linked.clear()
        if db.execute(_LINK_NO_ORPHAN, (srs_id, key)).rowcount:
            self._linked[srs_id] = key
            return False  # linked (or moved), no orphan to merge
        # Linked already, or updates wait under the id: the full way.
        changed = db.execute(_LINK, (srs_id, key)).rowcount
        self._linked[srs_id] = key
        if not changed:
            return False
        orphan = f"order:{srs_id}"
        if db.execute(_EXISTS, (orphan,)).fetchone() is None:
            return False
        moved = db.execute(
            "UPDATE OR IGNORE updates SET key = ? WHERE key = ?", (key, orphan)
        ).rowcount
        db.execute("DELETE FROM updates WHERE key = ?", (orphan,))
        db.execute("DELETE FROM orders WHERE key = ?", (orphan,))
        self._unknown -= 1
        if moved:
            db.execute("UPDATE orders SET n = n + ? WHERE key = ?", (moved, key))
        return moved > 0

    def _cap_unknown(self, db: _Db) -> None:
        excess = self._unknown - self._max_unknown
        if excess <= 0:
            return
        rows = db.execute(
            "SELECT key FROM orders WHERE known = 0 ORDER BY seen LIMIT ?", (excess,)
        ).fetchall()
        for (key,) in rows:
            self._drop(db, key)
            self._unknown -= 1
            logger.warning(
                "dropped updates of unknown order %s (more than %d unknown orders)",
                key,
                self._max_unknown,
            )

    def _sweep(self, db: _Db, now: float) -> None:
        rows = db.execute(
            "SELECT key FROM orders WHERE known = 1 AND final_at <= ?",
            (now - self._retention,),
        ).fetchall()
        for (key,) in rows:
            self._drop(db, key)
            logger.warning(
                "dropped finished order %s (kept %g s after its final update)",
                key,
                self._retention,
            )

    def _drop(self, db: _Db, key: str) -> None:
        db.execute("DELETE FROM updates WHERE key = ?", (key,))
        db.execute("DELETE FROM aliases WHERE key = ?", (key,))
        db.execute("DELETE FROM orders WHERE key = ?", (key,))
        self._linked.clear()  # it may name the dropped order
