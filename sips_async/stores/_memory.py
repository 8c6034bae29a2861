"""MemoryStore: the in-process store (the default). Nothing survives the process."""

from __future__ import annotations

import collections
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

import msgspec

from ..errors import SipsConfigError
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
    log_over_cap,
    logger,
    order_key,
    replay_key,
)

__all__ = ["MemoryStore"]

_EMPTY: Final[tuple[OrderUpdate, ...]] = ()


class _Row(msgspec.Struct, gc=False):
    """A sent order's row until it needs more: most pending orders stay one.

    The SRS ids linked to it are its ``order_id`` and ``queue_id`` (SRS's
    answer, usually one id twice). An update, a failure, a settled fate or
    a second id turns it into an :class:`_Order` (:meth:`MemoryStore._full`),
    so a pending order costs five fields, not ten. The properties answer
    what an :class:`_Order` would hold: nothing yet. (``gc=False``: strings,
    floats and an enum member never refer back.)
    """

    state: OrderState
    created: float
    po_number: str | None = None
    order_id: str | None = None
    queue_id: str | None = None

    @property
    def error(self) -> str | None:
        return None

    @property
    def final_at(self) -> float | None:
        return None

    @property
    def updates(self) -> tuple[OrderUpdate, ...] | None:
        return None

    @property
    def replays(self) -> tuple[str, ...] | None:
        return None

    def linked(self) -> tuple[str, ...]:
        order_id, queue_id = self.order_id, self.queue_id
        if not queue_id or queue_id == order_id:
            return (order_id,) if order_id else ()
        return (order_id, queue_id) if order_id else (queue_id,)


class _Order(msgspec.Struct, gc=False):
    """One key's row and history, compact: a :class:`TrackedOrder` is built
    only when asked for (``get``, ``outstanding``).

    ``state`` is ``None`` for a key the store never saw as an order (updates
    only). Times are seconds since the epoch. ``aliases`` is the SRS id
    linked to this key, or a tuple of them when SRS used several (most
    orders have one id, ``orderID`` == ``queueID``). (``gc=False``: it holds
    strings, floats and tuples of :class:`OrderUpdate` and of strings, which
    never refer back, so it can never be part of a reference cycle.)

    ``updates`` and ``replays`` are tuples, not a list and a set: histories
    are short, and a tuple of untracked objects leaves the garbage
    collector's lists, where a list or set per order received would be
    scanned by every full collection for as long as the order is kept.
    """

    state: OrderState | None = None
    created: float = 0.0
    po_number: str | None = None
    order_id: str | None = None
    queue_id: str | None = None
    error: str | None = None
    final_at: float | None = None
    # Created on the first update: most pending orders have none yet.
    updates: tuple[OrderUpdate, ...] | None = None
    # The replay markers of ``updates``, in step with it; None until a
    # second update needs them.
    replays: tuple[str, ...] | None = None
    aliases: str | tuple[str, ...] | None = None

    def linked(self) -> tuple[str, ...]:
        aliases = self.aliases
        if aliases is None:
            return ()
        return (aliases,) if isinstance(aliases, str) else aliases

    def link(self, srs_id: str) -> None:
        aliases = self.aliases
        if aliases is None:
            self.aliases = srs_id
        elif srs_id not in self.linked():
            self.aliases = (*self.linked(), srs_id)


def _tracked(order: _Row | _Order, transaction_id: str) -> TrackedOrder:
    assert order.state is not None
    final_at = order.final_at
    return TrackedOrder(
        transaction_id=transaction_id,
        state=order.state,
        created_at=_utc(order.created),
        po_number=order.po_number,
        order_id=order.order_id,
        queue_id=order.queue_id,
        error=order.error,
        final_at=None if final_at is None else _utc(final_at),
    )


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


class MemoryStore(Listeners):
    """Orders and updates in dictionaries, with the bounds every store keeps.

    Args:
        retention: seconds a finished order is kept after its final update.
        max_unknown: orders never seen here whose updates are kept.
        max_updates: updates kept per order.
        clock: seconds since the epoch (a seam for tests).
    """

    __slots__ = (
        "_aliases",
        "_clock",
        "_finished",
        "_max_unknown",
        "_max_updates",
        "_orders",
        "_retention",
        "_unknown",
    )

    def __init__(
        self,
        *,
        retention: float = DEFAULT_RETENTION,
        max_unknown: int = DEFAULT_MAX_UNKNOWN,
        max_updates: int = DEFAULT_MAX_UPDATES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        if max_unknown < 0 or max_updates < 1:
            raise SipsConfigError("max_unknown must be >= 0 and max_updates >= 1")
        self._retention = retention
        self._max_unknown = max_unknown
        self._max_updates = max_updates
        self._clock = clock
        self._orders: dict[str, _Row | _Order] = {}
        self._aliases: dict[str, str] = {}  # SRS order id -> key
        self._unknown: dict[str, None] = {}  # keys of unknown orders, oldest first
        self._finished: collections.deque[tuple[float, str]] = collections.deque()

    def __repr__(self) -> str:
        return f"<MemoryStore orders={len(self._orders)} unknown={len(self._unknown)}>"

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- orders ----------------------------------------------------------------

    async def begin(
        self,
        transaction_id: str,
        *,
        po_number: str | None = None,
        state: OrderState = OrderState.SENDING,
    ) -> list[OrderUpdate]:
        now = self._clock()
        finished = self._finished
        if finished and finished[0][0] <= now - self._retention:
            self._expire()
        order = self._orders.get(transaction_id)
        if order is None:
            self._orders[transaction_id] = _Row(state, now, po_number)
            return []
        if order.state is None:
            self._unknown.pop(transaction_id, None)
            order.state = state
            order.created = now
            order.po_number = po_number
        else:
            order.state = state
            order.po_number = po_number or order.po_number
        updates = order.updates
        return list(updates) if updates else []

    async def adopt(self, transaction_id: str) -> list[OrderUpdate]:
        order = self._orders.get(transaction_id)
        if order is not None and order.state is not None:
            return list(order.updates or _EMPTY)
        return await self.begin(transaction_id, state=OrderState.TRACKED)

    async def settle(
        self,
        transaction_id: str,
        state: OrderState,
        *,
        order_id: str | None = None,
        queue_id: str | None = None,
        error: str | None = None,
    ) -> None:
        order = self._orders.get(transaction_id)
        if order is None or order.state is None:
            await self.begin(transaction_id, state=state)
            order = self._orders[transaction_id]
        settled = state in SETTLED_STATES
        if type(order) is _Row and (
            # What keeps it a row (see _Row): inline, this is every call's path.
            settled
            or error is not None
            or (queue_id and order.queue_id and queue_id != order.queue_id)
        ):
            # The full row in one construction, not built then assigned to:
            # every synchronously placed order comes this way.
            now = self._clock() if settled else None
            order = self._orders[transaction_id] = _Order(
                state,
                order.created,
                order.po_number,
                order.order_id or order_id,
                queue_id or order.queue_id,
                error,
                now,
                aliases=(
                    _aliases_of(order) if order.order_id or order.queue_id else None
                ),
            )
            if now is not None:
                # Placed, or provably never sent: retention starts now.
                self._finished.append((now, transaction_id))
        else:
            order.state = state
            order.order_id = order.order_id or order_id
            order.queue_id = queue_id or order.queue_id
            if type(order) is _Order:
                order.error = error
                if settled and order.final_at is None:
                    now = order.final_at = self._clock()
                    self._finished.append((now, transaction_id))
        merged = False
        if order_id:
            merged = self._link(transaction_id, order, order_id)
        if queue_id and queue_id != order_id:  # SRS's queue answer: usually equal
            merged = self._link(transaction_id, order, queue_id) or merged
        if merged:
            self.notify(Change(transaction_id, reload=True))

    async def get(self, transaction_id: str) -> TrackedOrder | None:
        order = self._orders.get(transaction_id)
        if order is None or order.state is None:
            return None
        return _tracked(order, transaction_id)

    async def outstanding(self) -> AsyncIterator[TrackedOrder]:
        keys = [
            (order.created, key)
            for key, order in self._orders.items()
            if order.final_at is None and order.state in OUTSTANDING_STATES
        ]
        keys.sort()  # by creation time, ties by key (as SQLite and Redis list them)
        for _, key in keys:
            order = self._orders.get(key)
            if order is not None and order.state is not None:
                yield _tracked(order, key)

    # -- updates ---------------------------------------------------------------

    async def record(self, update: OrderUpdate) -> Recorded:
        key = update.transaction_id
        if key is None:
            alias = None
            if update.order_id is not None:
                alias = self._aliases.get(update.order_id)
            key = order_key(update, alias)
        order = self._orders.get(key)
        if order is None:
            order = self._orders[key] = _Order()
            self._remember_unknown(key)
        elif isinstance(order, _Row):  # its first update
            order = self._full(key)
        updates = order.updates
        if updates is None:
            # The order's first update: nothing to compare with, so its
            # replay marker is worked out when a second one comes.
            order.updates = (update,)
        else:
            replays = order.replays
            if replays is None:
                replays = tuple(map(replay_key, updates))
            marker = replay_key(update)
            if marker in replays:
                order.replays = replays
                return Recorded(key, False)
            if len(updates) >= self._max_updates:
                log_over_cap(update, key, self._max_updates)
                return Recorded(key, False)
            order.replays = (*replays, marker)
            order.updates = (*updates, update)
        if update.is_final and order.state is not None and order.final_at is None:
            now = order.final_at = self._clock()
            self._finished.append((now, key))
        merged = False
        srs_id = update.order_id
        if update.transaction_id is not None and srs_id is not None:
            if order.state is not None:
                order.order_id = srs_id
            if self._aliases.get(srs_id) != key:  # linked already, usually
                merged = self._link(key, order, srs_id)
        self.notify(Change(key, (update,), reload=merged))
        finished = self._finished
        if finished and finished[0][0] <= self._clock() - self._retention:
            self._expire()
        return Recorded(key, True)

    async def history(self, key: str) -> list[OrderUpdate]:
        order = self._orders.get(key)
        return list(order.updates or _EMPTY) if order is not None else []

    def peek(self, key: str) -> tuple[OrderUpdate, ...]:
        """:meth:`history` without the await or the copy (in-process only).

        The tracker reads a pending order's updates from here until someone
        waits on it, so an order nobody waits on costs no entry of its own.
        """
        order = self._orders.get(key)
        return (order.updates or _EMPTY) if order is not None else _EMPTY

    # -- internals -------------------------------------------------------------

    def _full(self, key: str) -> _Order:
        """Key ``key``'s row as an :class:`_Order`, turned into one if need be."""
        order = self._orders[key]
        if isinstance(order, _Order):
            return order
        full = self._orders[key] = _Order(
            order.state,
            order.created,
            order.po_number,
            order.order_id,
            order.queue_id,
            aliases=_aliases_of(order),
        )
        return full

    def _link(self, key: str, order: _Row | _Order, srs_id: str) -> bool:
        """Tie ``srs_id`` to ``key``; move its orphan updates in. True if any moved."""
        if self._aliases.get(srs_id) == key:
            return False
        self._aliases[srs_id] = key
        if type(order) is _Order:
            order.link(srs_id)
        elif srs_id != order.order_id and srs_id != order.queue_id:
            self._full(key).link(srs_id)
        if not self._unknown:  # orphans are unknown orders: none at all
            return False
        orphan_key = f"order:{srs_id}"
        orphan = self._orders.pop(orphan_key, None)
        if orphan is None:
            return False
        self._unknown.pop(orphan_key, None)
        order = self._full(key)
        updates = list(order.updates or _EMPTY)
        replays = (
            list(order.replays)
            if order.replays is not None
            else [replay_key(u) for u in updates]
        )
        moved = False
        for update in orphan.updates or _EMPTY:
            marker = replay_key(update)
            if marker not in replays:
                replays.append(marker)
                updates.append(update)
                moved = True
        if moved:
            updates.sort(key=_arrival)
            order.updates, order.replays = tuple(updates), tuple(replays)
        return moved

    def _remember_unknown(self, key: str) -> None:
        self._unknown[key] = None
        while len(self._unknown) > self._max_unknown:
            dropped = next(iter(self._unknown))
            self._drop(dropped)
            logger.warning(
                "dropped updates of unknown order %s (more than %d unknown orders)",
                dropped,
                self._max_unknown,
            )

    def _expire(self) -> None:
        finished = self._finished
        if not finished:
            return
        horizon = self._clock() - self._retention
        while finished and finished[0][0] <= horizon:
            _, key = finished.popleft()
            self._drop(key)
            logger.warning(
                "dropped finished order %s (kept %g s after its final update)",
                key,
                self._retention,
            )

    def _drop(self, key: str) -> None:
        self._unknown.pop(key, None)
        order = self._orders.pop(key, None)
        if order is None:
            return
        for srs_id in order.linked():
            if self._aliases.get(srs_id) == key:
                del self._aliases[srs_id]


def _aliases_of(row: _Row) -> str | tuple[str, ...] | None:
    """The ids ``row`` links, as an :class:`_Order` holds them."""
    order_id, queue_id = row.order_id, row.queue_id
    if queue_id and queue_id != order_id:
        return (order_id, queue_id) if order_id else queue_id
    return order_id or None


def _arrival(update: OrderUpdate) -> dt.datetime:
    return update.received_at
