"""The tracker: records updates through the store and wakes the orders awaiting them.

Every update goes to the :class:`~sips_async.stores.Store` in one atomic
``record`` (correlation, replays and id links happen there). Waiters are woken
from the store's change notifications only, so an update recorded by this
process, by another instance sharing a Redis store, or merged in by a link,
reaches them the same way.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final

from .._pending import Entry
from ..errors import SipsClientClosedError, SipsStoreError
from ..models import OrderUpdate
from ..stores import EVERYTHING, Change, MemoryStore, OrderState, Store, TrackedOrder

__all__ = ["Tracker", "UpdateCallback"]

logger: Final = logging.getLogger("sips_async")

UpdateCallback = Callable[[OrderUpdate], Awaitable[None] | None]


class Tracker:
    """Records updates through a store and keeps the waited orders' entries fresh.

    Args:
        store: where orders and updates are kept (a :class:`MemoryStore` if
            omitted). The tracker opens it on first use and closes it.
        fed: whether updates reach this tracker (a webhook receiver, or
            polling); ``PendingOrder.wait()`` refuses to wait otherwise.
    """

    __slots__ = (
        "_callbacks",
        "_closed",
        "_entries",
        "_opening",
        "_peek",
        "_rereads",
        "_tasks",
        "_unsubscribe",
        "duplicates",
        "fed",
        "received",
        "store",
    )

    def __init__(self, store: Store | None = None, *, fed: bool = True) -> None:
        self.store: Store = store if store is not None else MemoryStore()
        self.fed = fed
        # A store that holds its orders in this process answers reads
        # without I/O: an order then needs no entry until it is waited on.
        self._peek: Callable[[str], Sequence[OrderUpdate]] | None = getattr(
            self.store, "peek", None
        )
        # Entries held by a PendingOrder (or an enqueue in progress): the
        # handles count them, and the last one to go releases its entry, so
        # no weak registry slot is paid per order.
        self._entries: dict[str, Entry] = {}
        self._callbacks: list[UpdateCallback] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # key -> the re-read in flight after a merge; record() and settle()
        # wait for it, so the caller's answer comes after waiters see it.
        self._rereads: dict[str, asyncio.Task[None]] = {}
        self._opening: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._closed = False
        #: Updates recorded by this process (replays excluded), replays dropped.
        self.received = 0
        self.duplicates = 0

    def __repr__(self) -> str:
        tracked = len(self._entries)
        return (
            f"<Tracker tracked={tracked} received={self.received} "
            f"duplicates={self.duplicates}{' closed' if self._closed else ''}>"
        )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    async def open(self) -> None:
        """Open the store and listen to its changes (once; later calls wait)."""
        if self._unsubscribe is not None:
            return
        if self._closed:
            raise SipsClientClosedError("the order tracker is closed")
        opening = self._opening
        if opening is None or (opening.done() and opening.exception() is not None):
            opening = self._opening = asyncio.ensure_future(self._open())
        await asyncio.shield(opening)

    async def _open(self) -> None:
        await self.store.open()
        if self._unsubscribe is None:
            self._unsubscribe = self.store.subscribe(self._on_change)

    # -- orders ----------------------------------------------------------------

    def entry(self, key: str) -> Entry:
        """The in-process view of order ``key`` (created, unloaded, if new)."""
        if self._closed:
            raise SipsClientClosedError("the order tracker is closed")
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = Entry(key)
            if self._peek is not None:
                entry.load(self._peek(key))
        return entry

    def peek(self, key: str) -> Sequence[OrderUpdate] | None:
        """Order ``key``'s updates when the store holds them in this process.

        ``None`` when it cannot tell without I/O (a durable store): then the
        order's entry is what holds them here.
        """
        entry = self._entries.get(key)
        if entry is not None and entry.loaded:
            return entry.updates
        return self._peek(key) if self._peek is not None else None

    def release(self, entry: Entry) -> None:
        """Forget ``entry`` unless a :class:`PendingOrder` still holds it.

        Called by the last handle to go, and by an enqueue that failed before
        handing one out. Its order stays in the store; ``track()`` makes a
        fresh entry from there.
        """
        if entry.handles <= 0 and self._entries.get(entry.key) is entry:
            del self._entries[entry.key]

    def _loaded(self, entry: Entry, history: list[OrderUpdate]) -> None:
        entry.load(history)

    async def expect(self, key: str, *, po_number: str | None = None) -> Entry:
        """Write an order to the store before its request leaves; its entry.

        Raises:
            SipsStoreError: the store could not write it (nothing is sent).
        """
        if self._unsubscribe is None:
            await self.open()
        entry = self.entry(key)
        self._loaded(entry, await self.store.begin(key, po_number=po_number))
        return entry

    async def register(
        self, key: str, *, po_number: str | None = None, follow: bool = True
    ) -> Entry | None:
        """Write an order to the store before its request leaves.

        ``follow`` (``enqueue``): the order will be waited on, so it gets an
        entry (:meth:`expect`) unless the store can be peeked, where its
        updates stay in the store's row until someone waits on it. Without
        (``submit``) no entry is made. The entry, or ``None``.
        """
        if follow and self._peek is None:
            return await self.expect(key, po_number=po_number)
        if self._unsubscribe is None:
            await self.open()
        if self._closed:
            raise SipsClientClosedError("the order tracker is closed")
        await self.store.begin(key, po_number=po_number)
        return None

    async def attach(self, key: str) -> Entry:
        """Follow order ``key`` (``track()``): its entry, history loaded."""
        await self.open()
        entry = self.entry(key)
        self._loaded(entry, await self.store.adopt(key))
        return entry

    async def load(self, entry: Entry) -> None:
        """Read ``entry``'s history from the store if that was not done yet."""
        if not entry.loaded:
            await self.open()
            self._loaded(entry, await self.store.history(entry.key))

    async def settle(
        self,
        key: str,
        state: OrderState,
        *,
        order_id: str | None = None,
        queue_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record SRS's answer (or the failure) for a sent order."""
        if self._unsubscribe is None:
            await self.open()
        await self.store.settle(
            key, state, order_id=order_id, queue_id=queue_id, error=error
        )
        if self._rereads:
            await self._reread_done(key)
        entry = self._entries.get(key)
        if entry is not None and entry.order_id is None:
            entry.order_id = order_id

    async def outstanding(self) -> AsyncIterator[TrackedOrder]:
        """The store's orders that are not final, oldest first."""
        await self.open()
        async for row in self.store.outstanding():
            yield row

    # -- updates ---------------------------------------------------------------

    def on_update(self, callback: UpdateCallback) -> UpdateCallback:
        """Call ``callback(update)`` for every new update (usable as decorator)."""
        self._callbacks.append(callback)
        return callback

    async def record(self, update: OrderUpdate) -> bool:
        """Record one received update; ``False`` when it is a replay.

        Raises:
            SipsStoreError: the store could not keep it (answer 503: SRS
                delivers it again).
        """
        if self._unsubscribe is None:
            await self.open()
        recorded = await self.store.record(update)
        if self._rereads:
            await self._reread_done(recorded.key)
        if not recorded.new:
            self.duplicates += 1
            logger.debug(
                "replayed update %s for %s dropped", update.event_id, recorded.key
            )
            return False
        self.received += 1
        for callback in self._callbacks:
            self._run_callback(callback, update)
        return True

    def _on_change(self, change: Change) -> None:
        if change.key == EVERYTHING:
            for held in list(self._entries.values()):
                self._reload(held)
            return
        entry = self._entries.get(change.key)
        if entry is None:
            return
        if change.reload:
            self._reload(entry)
        elif entry.add(change.updates):
            entry.wake()

    def _reload(self, entry: Entry) -> None:
        task = asyncio.ensure_future(self._reread(entry))
        self._tasks.add(task)
        self._rereads[entry.key] = task

        def done(task: asyncio.Task[None], key: str = entry.key) -> None:
            self._tasks.discard(task)
            if self._rereads.get(key) is task:
                del self._rereads[key]

        task.add_done_callback(done)

    async def _reread_done(self, key: str) -> None:
        task = self._rereads.get(key)
        if task is not None:
            await asyncio.shield(task)

    async def _reread(self, entry: Entry) -> None:
        try:
            self._loaded(entry, await self.store.history(entry.key))
        except SipsStoreError as exc:
            # Waiters keep waiting; the store says when it is back.
            logger.warning("could not re-read order %s: %s", entry.key, exc)
            return
        entry.wake()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _run_callback(self, callback: UpdateCallback, update: OrderUpdate) -> None:
        try:
            result = callback(update)
        except Exception:
            logger.exception("update callback %r failed", callback)
            return
        if inspect.isawaitable(result):
            self._spawn(self._guarded(callback, result))

    @staticmethod
    async def _guarded(callback: UpdateCallback, pending: Awaitable[None]) -> None:
        try:
            await pending
        except Exception:
            logger.exception("update callback %r failed", callback)

    async def close(self) -> None:
        """Wake every waiter with :class:`SipsClientClosedError`, finish
        callbacks, close the store."""
        if self._closed:
            return
        self._closed = True
        for entry in list(self._entries.values()):
            entry.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._unsubscribe is not None:
            self._unsubscribe()
        opening = self._opening
        if opening is not None and not opening.done():
            await asyncio.gather(opening, return_exceptions=True)
        await self.store.close()
