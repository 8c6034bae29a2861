"""The tracker: ties received updates to the orders callers wait on.

Updates are correlated by ``transactionID`` (``subscriberReferenceNum3``),
falling back to SRS's order id. Every update goes to the :class:`Store`
first (replays are dropped there); then the in-process entry of the order,
if any, is updated and its waiters are woken.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Final

from ..errors import SipsClientClosedError
from ..models import OrderUpdate
from ._store import MemoryStore, Store

__all__ = ["Tracker", "UpdateCallback"]

logger: Final = logging.getLogger("sips_async")

UpdateCallback = Callable[[OrderUpdate], Awaitable[None] | None]


class Entry:
    """In-process view of one tracked order: its updates and its waiters."""

    __slots__ = (
        "__weakref__",
        "_event",
        "_on_gone",
        "closed",
        "key",
        "loaded",
        "order_id",
        "updates",
    )

    def __init__(self, key: str, on_gone: Callable[[str], None] | None = None) -> None:
        self.key = key
        self.order_id: str | None = None
        # A shared empty tuple until the first update: most pending orders
        # have none, and an empty list per order costs 56 bytes.
        self.updates: list[OrderUpdate] | tuple[OrderUpdate, ...] = ()
        self.loaded = False
        self._event: asyncio.Event | None = None
        self._on_gone = on_gone
        #: Set when the client that handed this order out was closed.
        self.closed = False

    def __del__(self) -> None:
        # Nobody holds this order any more: let the store bound it again.
        on_gone = self._on_gone
        if on_gone is not None:
            with contextlib.suppress(Exception):
                on_gone(self.key)

    def changed(self) -> asyncio.Event:
        """An event set at the next change (a fresh one per generation)."""
        event = self._event
        if event is None:
            event = self._event = asyncio.Event()
        return event

    def close(self) -> None:
        """Mark closed and wake its waiters (they raise SipsClientClosedError)."""
        self.closed = True
        self.wake()

    def wake(self) -> None:
        """Wake everyone waiting on this entry."""
        event, self._event = self._event, None
        if event is not None:
            event.set()

    def add(self, update: OrderUpdate) -> None:
        """Append one update."""
        if isinstance(self.updates, list):
            self.updates.append(update)
        else:
            self.updates = [*self.updates, update]

    def merge(self, moved: list[OrderUpdate]) -> None:
        """Add updates that arrived under SRS's order id, in arrival order."""
        self.updates = sorted([*self.updates, *moved], key=_arrival)

    def current(self) -> OrderUpdate | None:
        """The update with the latest ``eventDateTime`` (later arrival on ties).

        Updates without a time only count while nothing timed was seen, so a
        late, older update never moves the status backwards.
        """
        best: OrderUpdate | None = None
        for update in self.updates:
            if best is None or (
                update.occurred_at is not None
                and (best.occurred_at is None or update.occurred_at >= best.occurred_at)
            ):
                best = update
        return best


def _arrival(update: OrderUpdate) -> dt.datetime:
    return update.received_at


class Tracker:
    """Correlates updates with tracked orders and wakes their waiters."""

    __slots__ = (
        "_callbacks",
        "_closed",
        "_entries",
        "_release",
        "_tasks",
        "duplicates",
        "received",
        "store",
    )

    def __init__(self, store: Store | None = None) -> None:
        self.store: Store = store if store is not None else MemoryStore()
        # Called when nobody holds an order any more; one bound method shared
        # by every entry (not 64 bytes per order).
        self._release: Callable[[str], None] = (
            self.store.release_nowait
            if isinstance(self.store, MemoryStore)
            else self._release_later
        )
        self._entries: weakref.WeakValueDictionary[str, Entry] = (
            weakref.WeakValueDictionary()
        )
        self._callbacks: list[UpdateCallback] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        #: Updates recorded (replays excluded) and replays dropped.
        self.received = 0
        self.duplicates = 0

    def __repr__(self) -> str:
        return (
            f"<Tracker tracked={len(self._entries)} received={self.received} "
            f"duplicates={self.duplicates}{' closed' if self._closed else ''}>"
        )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    # -- orders --------------------------------------------------------------

    def entry(self, key: str) -> Entry:
        """The entry for ``key``, created (and claimed, in memory) if new."""
        if self._closed:
            raise SipsClientClosedError("the order tracker is closed")
        entry = self._entries.get(key)
        if entry is None:
            entry = Entry(key, self._release)
            store = self.store
            if isinstance(store, MemoryStore):  # no I/O: claim now
                entry.updates = store.claim_nowait(key)
                entry.loaded = True
            self._entries[key] = entry
        return entry

    async def load(self, entry: Entry) -> None:
        """Fill ``entry`` from the store (claiming it) if not done yet."""
        if not entry.loaded:
            history = await self.store.claim(entry.key)
            if len(history) > len(entry.updates):
                entry.updates = history
            entry.loaded = True

    async def expect(self, key: str) -> Entry:
        """Register an order before its submit leaves, so no update is lost."""
        entry = self.entry(key)
        await self.load(entry)
        return entry

    async def link(self, key: str, order_id: str) -> None:
        """Tie SRS's ``order_id`` (from the submit answer) to ``key``."""
        moved = await self.store.link(key, order_id)
        entry = self._entries.get(key)
        if entry is not None:
            entry.order_id = entry.order_id or order_id
            if moved:
                entry.merge(moved)
                entry.wake()

    # -- updates -------------------------------------------------------------

    def _release_later(self, key: str) -> None:
        # An entry was collected; a store that does I/O is told from the loop.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # collected outside the loop (shutdown): skip
            return
        task = loop.create_task(self._released(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _released(self, key: str) -> None:
        try:
            await self.store.release(key)
        except Exception:
            logger.exception("store failed to release order %s", key)

    def on_update(self, callback: UpdateCallback) -> UpdateCallback:
        """Call ``callback(update)`` for every new update (usable as decorator)."""
        self._callbacks.append(callback)
        return callback

    async def record(self, update: OrderUpdate) -> bool:
        """Record one received update; ``False`` when it is a replay."""
        store = self.store
        key = update.transaction_id
        if key is None:
            found = await store.find(update.order_id) if update.order_id else None
            key = found or (
                f"order:{update.order_id}"
                if update.order_id
                else f"event:{update.event_type}:{update.event_id}"
            )
        if not await store.append(key, update):
            self.duplicates += 1
            logger.debug("replayed update %s for %s dropped", update.event_id, key)
            return False
        self.received += 1
        moved: list[OrderUpdate] = []
        if update.transaction_id is not None and update.order_id is not None:
            # Updates that came with SRS's order id only join this order now.
            moved = await store.link(key, update.order_id)
        entry = self._entries.get(key)
        if entry is not None:
            entry.add(update)
            if moved:
                entry.merge(moved)
            entry.order_id = entry.order_id or update.order_id
            entry.wake()
        for callback in self._callbacks:
            self._run_callback(callback, update)
        return True

    def _run_callback(self, callback: UpdateCallback, update: OrderUpdate) -> None:
        try:
            result = callback(update)
        except Exception:
            logger.exception("update callback %r failed", callback)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._guarded(callback, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(callback: UpdateCallback, pending: Awaitable[None]) -> None:
        try:
            await pending
        except Exception:
            logger.exception("update callback %r failed", callback)

    async def close(self) -> None:
        """Wake every waiter with :class:`SipsClientClosedError`; finish callbacks."""
        if self._closed:
            return
        self._closed = True
        for entry in list(self._entries.values()):
            entry.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.store.close()
