"""PendingOrder and the per-order entry it waits on.

An :class:`Entry` is the in-process view of one order: the updates the store
holds for it and the waiters woken when that changes. The tracker keeps at
most one entry per order (while a :class:`PendingOrder` holds it: the
handles are counted, no weak reference per order) and feeds it from the
store's change notifications; :class:`PendingOrder` is the caller's handle on
it. With a store that holds its orders in this process (``MemoryStore``), a
pending order gets its entry only when first waited on: until then the
store's row is the only per-order state besides the handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Final

from .errors import (
    OrderRejectedError,
    OrderWaitTimeout,
    SipsClientClosedError,
    SipsConfigError,
    SipsError,
    SipsValidationError,
)
from .models import OrderStatus, OrderUpdate, SubmitResult
from .stores._base import replay_key

if TYPE_CHECKING:
    from ._poll import Poller
    from .webhooks._tracker import Tracker

__all__ = ["Entry", "Owner", "PendingOrder", "current"]

_NO_RECEIVER: Final = (
    "no webhook receiver is configured: pass webhook=WebhookConfig(...) or a "
    "WebhookReceiver to SipsClient so SRS's updates can reach this order, or "
    "poll=PollConfig(...) to ask SRS instead"
)


class _Done:
    """An awaitable that is done already: awaiting it creates no coroutine."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return iter(())  # type: ignore[return-value]  # ends at once, value None


class _Unwatched:
    """The context of a wait without polling: entering and leaving cost a
    method call each (no coroutine, no frame held by the waiting task)."""

    __slots__ = ()

    def __aenter__(self) -> _Done:
        return _DONE

    def __aexit__(self, *exc_info: object) -> _Done:
        return _DONE  # its value, None, lets an exception through


_DONE: Final = _Done()
#: The context of a wait without polling (stateless, so shared).
_NOT_WATCHED: Final = _Unwatched()

StatusOrPredicate = OrderStatus | str | Callable[[OrderUpdate], bool]


def _is_rejection(update: OrderUpdate) -> bool:
    return update.rejected or update.event_type == "OC"


def _first_outcome(updates: Sequence[OrderUpdate]) -> OrderUpdate | None:
    """The first acknowledgement or rejection among ``updates``, in arrival order.

    An ``OA`` acknowledges, or rejects when its status or error code says
    so; any update with an error code, or an ``OC`` before an
    acknowledgement, rejects. SRS does not promise order, so an ``OU`` that
    beats its ``OA`` is passed over; if the order reaches a final status
    without any ``OA`` (one lost on the way), that update decides. An update
    made from a poll acknowledges too: SRS found the order with a status.
    """
    for update in updates:
        if (
            update.event_type == "OA"
            or update.source == "poll"
            or _is_rejection(update)
            or update.is_final
        ):
            return update
    return None


def _matcher(target: StatusOrPredicate) -> Callable[[OrderUpdate], bool]:
    if callable(target) and not isinstance(target, str):
        return target
    if not str(target).strip():
        raise SipsValidationError(
            "wait_for() needs a status, its text or a predicate; got an empty text"
        )
    wanted = OrderStatus.parse(target)
    if isinstance(wanted, OrderStatus):
        return lambda u: u.status == wanted
    folded = str(target).casefold()
    return lambda u: (u.event_status or "").casefold() == folded


class Entry:
    """In-process view of one tracked order: its updates and its waiters."""

    __slots__ = (
        "__weakref__",
        "_seen",
        "_waiters",
        "closed",
        "handles",
        "key",
        "loaded",
        "order_id",
        "updates",
    )

    def __init__(self, key: str) -> None:
        self.key = key
        self.order_id: str | None = None
        # A shared empty tuple until the first update: most pending orders
        # have none, and an empty list per order costs 56 bytes.
        self.updates: tuple[OrderUpdate, ...] = ()
        self._seen: set[str] | None = None  # replay keys of ``updates``
        #: Whether the store's history was read in (``False``: not yet).
        self.loaded = False
        # Futures of the tasks awaiting the next change: one, or a list.
        self._waiters: asyncio.Future[None] | list[asyncio.Future[None]] | None = None
        #: Set when the client that handed this order out was closed.
        self.closed = False
        #: PendingOrders holding this entry (the tracker keeps it while > 0).
        self.handles = 0

    async def next_change(self) -> None:
        """Return at the next change (:meth:`wake`, or :meth:`close`).

        Each waiter gets its own future, so cancelling one waiter never
        disturbs the others; one waiter's future is held as it is, several
        in a list (an ``asyncio.Event`` per order held a 760-byte deque).
        """
        future = self.waiter()
        try:
            await future
        finally:
            self.forget(future)

    def waiter(self) -> asyncio.Future[None]:
        """A future set at the next change; :meth:`forget` it when done waiting.

        (What :meth:`next_change` awaits: a hot wait awaits it directly,
        one coroutine frame fewer per waiting task.)
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters
        if waiters is None:
            self._waiters = future
        elif isinstance(waiters, list):
            waiters.append(future)
        else:
            self._waiters = [waiters, future]
        return future

    def forget(self, future: asyncio.Future[None]) -> None:
        """Drop a waiter's future that was not woken (cancelled, timed out)."""
        if future.done() and not future.cancelled():
            return  # woken: wake() let go of it already
        waiters = self._waiters
        if waiters is future:
            self._waiters = None
        elif isinstance(waiters, list) and future in waiters:
            waiters.remove(future)

    def close(self) -> None:
        """Mark closed and wake its waiters (they raise SipsClientClosedError)."""
        self.closed = True
        self.wake()

    def wake(self) -> None:
        """Wake everyone waiting on this entry."""
        waiters, self._waiters = self._waiters, None
        if waiters is None:
            return
        for future in waiters if isinstance(waiters, list) else (waiters,):
            if not future.done():
                future.set_result(None)

    def add(self, updates: Sequence[OrderUpdate]) -> bool:
        """Append the updates not held yet, in order; ``True`` if any was new."""
        if not updates:
            return False
        if not self.updates and len(updates) == 1:
            # The common case (an order's first update): nothing to compare
            # with, so its replay key is left for a later add to work out.
            self.updates = (updates[0],)
            self._seen = None
            if self.order_id is None:
                self.order_id = updates[0].order_id
            return True
        seen = self._seen
        if seen is None:
            seen = self._seen = {replay_key(u) for u in self.updates}
        fresh = []
        for update in updates:
            marker = replay_key(update)
            if marker not in seen:
                seen.add(marker)
                fresh.append(update)
                if self.order_id is None:
                    self.order_id = update.order_id
        if not fresh:
            return False
        # A tuple: it leaves the garbage collector's lists (see MemoryStore).
        self.updates = (*self.updates, *fresh)
        return True

    def load(self, history: Sequence[OrderUpdate]) -> None:
        """Take the store's ``history`` as the truth, keeping later arrivals.

        Updates this entry heard of that the read did not see yet (they
        arrived while it was in flight) stay, after the history.
        """
        if not history and not self.updates:  # a new order: nothing to merge
            self.loaded = True
            return
        held = self.updates
        self.updates, self._seen = (), None
        self.add(history)
        self.add(held)
        if self.order_id is None:
            self.order_id = next((u.order_id for u in history if u.order_id), None)
        self.loaded = True

    def current(self) -> OrderUpdate | None:
        """The update with the latest ``eventDateTime`` (see :func:`current`)."""
        return current(self.updates)


def current(updates: Sequence[OrderUpdate]) -> OrderUpdate | None:
    """The update with the latest ``eventDateTime`` (later arrival on ties).

    Updates without a time only count while nothing timed was seen, so a
    late, older update never moves the status backwards. A poll's update
    (SRS's documents carry no status time) counts as of when SRS
    answered: the status was true then.
    """
    best: OrderUpdate | None = None
    best_at: dt.datetime | None = None
    for update in updates:
        at = _when(update)
        if best is None or (at is not None and (best_at is None or at >= best_at)):
            best, best_at = update, at
    return best


def _when(update: OrderUpdate) -> dt.datetime | None:
    at = update.occurred_at
    if at is None and update.source == "poll":
        at = update.received_at
    if at is not None and at.tzinfo is None:
        # Naive times are UTC (as the codec reads eventDateTime), so they
        # compare with a poll's aware received_at instead of raising.
        at = at.replace(tzinfo=dt.UTC)
    return at


class Owner:
    """What the :class:`PendingOrder` handles one client hands out share.

    The tracker and poller they wait through, and whether that client was
    closed (with a receiver shared by several clients, closing one ends
    only the waits on its own orders). One per client, not per order.
    """

    __slots__ = ("closed", "handed_out", "poller", "tracker")

    def __init__(
        self,
        tracker: Tracker,
        poller: Poller | None = None,
        *,
        shared: bool = False,
    ) -> None:
        self.tracker = tracker
        self.poller = poller
        #: Set when the client that handed these orders out was closed.
        self.closed = False
        # With a shared tracker, the entries this client's orders waited on
        # (weakly): closing the client wakes them, and its waiters raise.
        self.handed_out: weakref.WeakSet[Entry] | None = (
            weakref.WeakSet() if shared else None
        )

    def close(self) -> None:
        """Wake this client's waiters; they raise SipsClientClosedError."""
        self.closed = True
        for entry in list(self.handed_out or ()):
            entry.wake()


class PendingOrder:
    """An order in SRS's queue, resolved by the webhooks SRS posts back.

    Returned by ``client.orders.enqueue()`` and ``await client.orders.track()``.
    Waiting never cancels shared state: many tasks may wait on one order, a
    cancelled or timed-out waiter leaves the order tracked for the others.

    Example::

        pending = await client.orders.enqueue(order)
        ack = await pending.wait(timeout=60)
        done = await pending.wait_for(OrderStatus.DELIVERED, timeout=3600)
    """

    # With an in-process store (MemoryStore) a PendingOrder holds no entry
    # until it is first waited on: until then its updates are read from the
    # store itself, so a pending order costs the store's row and this handle.
    __slots__ = ("_entry", "_owner", "result", "transaction_id")

    def __init__(
        self,
        transaction_id: str,
        *,
        result: SubmitResult | None = None,
        tracker: Tracker | None = None,
        entry: Entry | None = None,
        poller: Poller | None = None,
    ) -> None:
        self.transaction_id = transaction_id
        #: SRS's answer to the enqueue (``None`` for a re-attached order).
        self.result = result
        self._owner = Owner(tracker, poller) if tracker is not None else None
        self._entry: Entry | None = None
        if entry is not None:
            self._hold(entry)

    @classmethod
    def _handed(
        cls,
        transaction_id: str,
        result: SubmitResult | None,
        owner: Owner,
        entry: Entry | None,
    ) -> PendingOrder:
        """One handle of a client's ``owner`` (the hot path of ``enqueue``)."""
        pending = cls.__new__(cls)
        pending.transaction_id = transaction_id
        pending.result = result
        pending._owner = owner
        pending._entry = None
        if entry is not None:
            pending._hold(entry)
        return pending

    def _hold(self, entry: Entry) -> None:
        entry.handles += 1
        self._entry = entry
        owner = self._owner
        if owner is not None and owner.handed_out is not None:
            owner.handed_out.add(entry)

    def __del__(self) -> None:
        entry: Entry | None = getattr(self, "_entry", None)
        if entry is not None:
            handles = entry.handles = entry.handles - 1
            if handles <= 0 and self._owner is not None:
                self._owner.tracker.release(entry)

    def __repr__(self) -> str:
        status = self.status
        return (
            f"<PendingOrder {self.transaction_id} order_id={self.order_id} "
            f"status={status!s} updates={len(self.history)}>"
        )

    def _updates(self) -> Sequence[OrderUpdate]:
        """The updates known here: the entry's, or the in-process store's."""
        entry = self._entry
        if entry is not None:
            return entry.updates
        owner = self._owner
        if owner is None:
            return ()
        return owner.tracker.peek(self.transaction_id) or ()

    @property
    def order_id(self) -> str | None:
        """SRS's order id, from the submit answer or a later update."""
        if self.result is not None and self.result.order_id:
            return self.result.order_id
        if self._entry is not None:
            return self._entry.order_id
        return next((u.order_id for u in self._updates() if u.order_id), None)

    @property
    def history(self) -> list[OrderUpdate]:
        """Every update received so far, in arrival order (replays excluded)."""
        return list(self._updates())

    @property
    def current(self) -> OrderUpdate | None:
        """The update with the latest ``eventDateTime``."""
        return current(self._updates())

    @property
    def status(self) -> OrderStatus | str | None:
        """The current status: it only moves forward in ``eventDateTime``."""
        current = self.current
        return current.status if current is not None else None

    @property
    def rejection(self) -> OrderUpdate | None:
        """The update that rejected the order, if its first outcome was one."""
        outcome = _first_outcome(self._updates())
        return outcome if outcome is not None and _is_rejection(outcome) else None

    @property
    def is_final(self) -> bool:
        """Whether an update received so far ended the order."""
        return any(u.is_final for u in self._updates())

    async def wait(self, timeout: float | None = None) -> OrderUpdate:
        """Wait for the first outcome of the queued order.

        Returns:
            The acknowledgement (normally the ``OA`` update).

        Raises:
            OrderRejectedError: SRS rejected the order; ``.update`` says how.
            OrderWaitTimeout: nothing arrived within ``timeout`` seconds; the
                order stays tracked and a later ``wait()`` still works.
            SipsClientClosedError: the client was closed while waiting.
        """

        update = await self._wait(_first_outcome, timeout)
        if _is_rejection(update):
            raise OrderRejectedError(update)
        return update

    async def wait_for(
        self, status: StatusOrPredicate, timeout: float | None = None
    ) -> OrderUpdate:
        """Wait for the first update with ``status`` (or matching a predicate).

        Args:
            status: an :class:`OrderStatus`, status text, or a function of an
                :class:`OrderUpdate` returning ``True`` when it is the one.

        Raises:
            OrderRejectedError: the order was rejected or cancelled before
                a matching update arrived.
            OrderWaitTimeout: no match within ``timeout`` seconds.
        """
        match = _matcher(status)

        def pick(updates: Sequence[OrderUpdate]) -> OrderUpdate | None:
            for update in updates:
                if match(update) or _is_rejection(update):
                    return update
            return None

        update = await self._wait(pick, timeout)
        if not match(update):
            raise OrderRejectedError(update)
        return update

    async def updates(self) -> AsyncIterator[OrderUpdate]:
        """Yield every update in arrival order, past ones first, then live ones.

        Ends once a final update (delivered, cancelled, returned, rejected)
        was yielded, after the updates already received with it; SRS may
        still deliver an older one late, and it then lands in :attr:`history`.
        Closing the client ends it with :class:`SipsClientClosedError`.
        """
        tracker, entry = self._require()
        await tracker.load(entry)
        # Replay keys, not ids: a merge may insert earlier updates, and a
        # re-read from the store brings new objects for the same updates.
        yielded: set[str] = set()
        final = False
        async with self._watching(entry):
            while True:
                for update in list(entry.updates):
                    marker = replay_key(update)
                    if marker not in yielded:
                        yielded.add(marker)
                        final = final or update.is_final
                        yield update
                if final:
                    return
                self._check_open(tracker, entry)
                await entry.next_change()

    def _watching(
        self, entry: Entry
    ) -> _Unwatched | contextlib.AbstractAsyncContextManager[None]:
        """Poll SRS about the order while a caller waits (with a PollConfig)."""
        poller = self._owner.poller if self._owner is not None else None
        if poller is None or poller.config is None:
            return _NOT_WATCHED
        return poller.watching(entry)

    def _check_open(self, tracker: Tracker, entry: Entry | None) -> None:
        owner = self._owner
        if (
            tracker.closed
            or (entry is not None and entry.closed)
            or (owner is not None and owner.closed)
        ):
            raise SipsClientClosedError(
                f"the client was closed while order {self.transaction_id} was awaited"
            )

    def _fed(self) -> Tracker:
        owner = self._owner
        if owner is None or not owner.tracker.fed:
            raise SipsConfigError(_NO_RECEIVER)
        return owner.tracker

    def _require(self) -> tuple[Tracker, Entry]:
        tracker = self._fed()
        entry = self._entry
        if entry is None:
            entry = self._take_entry(tracker)
        return tracker, entry

    def _take_entry(self, tracker: Tracker) -> Entry:
        """The first wait on this order: from now on it holds an entry."""
        self._check_open(tracker, None)
        entry = tracker.entry(self.transaction_id)
        self._hold(entry)
        return entry

    async def _wait(
        self,
        pick: Callable[[Sequence[OrderUpdate]], OrderUpdate | None],
        timeout: float | None,
    ) -> OrderUpdate:
        tracker = self._fed()
        entry = self._entry
        if entry is None:
            held = tracker.peek(self.transaction_id)
            if held is not None:  # the in-process store has it: no entry yet
                found = pick(held)
                if found is not None:
                    return found
            entry = self._take_entry(tracker)
        elif entry.loaded:  # already here (often, under load): no timer at all
            found = pick(entry.updates)
            if found is not None:
                return found
        try:
            async with asyncio.timeout(timeout):
                if not entry.loaded:
                    await tracker.load(entry)
                    found = pick(entry.updates)
                    if found is not None:
                        return found
                async with self._watching(entry):
                    while True:
                        found = pick(entry.updates)
                        if found is not None:
                            return found
                        self._check_open(tracker, entry)
                        future = entry.waiter()
                        try:
                            await future
                        finally:
                            entry.forget(future)
        except TimeoutError as exc:
            if isinstance(exc, SipsError):
                raise
            raise OrderWaitTimeout(self.transaction_id, timeout) from None
