"""The Store protocol: what every backend keeps, and the rules it keeps it by.

A store holds two things:

* **orders** this SDK sent or was asked to follow (the outbox): their
  ``transactionID``, PO number, when they were created, their state
  (:class:`OrderState`) and SRS's ids for them;
* **updates**: every :class:`~sips_async.OrderUpdate` received, filed under an
  *order key*. The key is the update's ``transactionID``; an update carrying
  only SRS's order id is filed under the order that id was linked to, or
  under ``order:<id>`` until a link arrives; one with neither under
  ``event:<type>:<id>``.

Every write is atomic (correlate, drop replays, append, link ids in one step)
and durable once the coroutine returns. Listeners registered with
:meth:`Store.subscribe` hear of every change the store sees (for Redis, the
changes other processes make too); the tracker wakes waiters from there.

Bounds, the same in every backend:

* an order that is not final is never dropped on its own;
* a finished order (and its updates) is kept ``retention`` seconds after its
  final update (7 days by default);
* updates for orders the store never saw are kept for at most
  ``max_unknown`` such orders, oldest dropped first;
* each order keeps at most ``max_updates`` updates.

Every drop is logged at WARNING.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
from collections.abc import AsyncIterator, Callable
from typing import Final, Protocol, runtime_checkable

import msgspec

from ..models import OrderStatus, OrderUpdate

__all__ = [
    "DEFAULT_MAX_UNKNOWN",
    "DEFAULT_MAX_UPDATES",
    "DEFAULT_RETENTION",
    "EVERYTHING",
    "Change",
    "ChangeListener",
    "Listeners",
    "OrderState",
    "RESERVED_PREFIXES",
    "Recorded",
    "Store",
    "TrackedOrder",
    "decode_update",
    "encode_update",
    "log_over_cap",
    "order_key",
    "replay_key",
]

logger: Final = logging.getLogger("sips_async")

#: Seconds a finished order is kept after its final update (7 days).
DEFAULT_RETENTION: Final = 7 * 24 * 3600.0
#: Orders the store never saw whose updates are kept.
DEFAULT_MAX_UNKNOWN: Final = 10_000
#: Updates kept per order.
DEFAULT_MAX_UPDATES: Final = 1_000


class OrderState(enum.StrEnum):
    """Where an order stands between this SDK and SRS (not SRS's status)."""

    #: Written before the request left; no answer yet (or the process died).
    SENDING = "sending"
    #: SRS answered "Order Queued"; updates come by webhook (or poll).
    QUEUED = "queued"
    #: SRS placed it synchronously (``submit``).
    PLACED = "placed"
    #: The request provably never reached SRS: nothing was placed.
    FAILED = "failed"
    #: The request may have reached SRS, but no answer says so.
    UNCERTAIN = "uncertain"
    #: Followed with ``track()`` without being sent from here.
    TRACKED = "tracked"


#: States SRS's answer (or a failure before sending) settles for good: a
#: synchronous submit placed, or a request that never reached SRS. Their
#: retention starts when they are settled, as a final update's does.
SETTLED_STATES: Final = frozenset({OrderState.PLACED, OrderState.FAILED})

#: States in which an order not yet final is still outstanding.
OUTSTANDING_STATES: Final = frozenset(
    {OrderState.SENDING, OrderState.QUEUED, OrderState.UNCERTAIN, OrderState.TRACKED}
)


class TrackedOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One order as the store keeps it (the outbox row)."""

    transaction_id: str
    state: OrderState
    created_at: dt.datetime
    po_number: str | None = None
    #: SRS's order id: from the submit answer, replaced by the id SRS's
    #: webhooks carry once one arrives.
    order_id: str | None = None
    queue_id: str | None = None
    #: Why the request failed, when it did (redacted text, no secrets).
    error: str | None = None
    #: When the order's fate was settled: a final update recorded, or a
    #: synchronous submit placed, or a request that never reached SRS
    #: (``None`` while the order is open). Retention counts from here.
    final_at: dt.datetime | None = None

    @property
    def is_final(self) -> bool:
        """Whether a final update (delivered, cancelled, rejected...) arrived."""
        return self.final_at is not None

    @property
    def outstanding(self) -> bool:
        """Whether the order's fate is still open (what ``outstanding()`` lists)."""
        return self.final_at is None and self.state in OUTSTANDING_STATES


class Change(msgspec.Struct, frozen=True, gc=False):
    """What a listener hears: ``key``'s history grew, or must be re-read.

    ``updates`` are the new updates in arrival order. ``reload`` is set when
    the history changed in a way appending cannot show (updates merged in
    from an SRS order id, a reconnect that may have missed changes); the
    listener then reads :meth:`Store.history` again.
    """

    key: str
    updates: tuple[OrderUpdate, ...] = ()
    reload: bool = False


#: The key of a :class:`Change` that says "re-read every order you hold"
#: (sent with ``reload=True`` after a reconnect that may have missed changes).
EVERYTHING: Final = ""


class Recorded(msgspec.Struct, frozen=True, gc=False):
    """The outcome of :meth:`Store.record`."""

    #: The order key the update was filed under.
    key: str
    #: ``False`` for a replay (or an update over the per-order cap): not kept.
    new: bool


ChangeListener = Callable[[Change], None]


#: Key prefixes the store files updates under when no order claims them: a
#: transactionID may not start with one (its order would take in strangers).
RESERVED_PREFIXES: Final = ("order:", "event:")


def log_over_cap(update: OrderUpdate, key: str, max_updates: int) -> None:
    """Log, as every store does, an update dropped at its order's update cap."""
    logger.warning(
        "dropped update %s of order %s: it has %d updates already",
        update.event_id,
        key,
        max_updates,
    )


async def opens_finished(opening: asyncio.Lock | None) -> None:
    """Wait until an ``open()`` in flight (holding ``opening``) has finished.

    ``close()`` calls it after marking the store closed: the open sees that
    when its connection is up, undoes it and raises, so nothing is left open.
    """
    if opening is not None and opening.locked():
        async with opening:
            pass


def order_key(update: OrderUpdate, alias: str | None) -> str:
    """The key to file ``update`` under, given the order its SRS id is linked to."""
    if update.transaction_id is not None:
        return update.transaction_id
    if alias is not None:
        return alias
    if update.order_id is not None:
        return f"order:{update.order_id}"
    return f"event:{update.event_type}:{update.event_id}"


def replay_key(update: OrderUpdate) -> str:
    """What makes two deliveries the same event: id, type, status and time."""
    when = update.occurred_at.isoformat() if update.occurred_at else ""
    parts = (update.event_id, update.event_type, update.event_status or "", when)
    return "\x1f".join(parts)


class _Stored(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    # OrderUpdate as stored: ``status`` as text (msgspec cannot decode the
    # ``OrderStatus | str`` union), everything else as it is.
    event_id: str
    event_type: str
    event_status: str | None = None
    status: str | None = None
    transaction_id: str | None = None
    order_id: str | None = None
    po_number: str | None = None
    occurred_at: dt.datetime | None = None
    received_at: dt.datetime
    error_code: str | None = None
    error_message: str | None = None
    raw: bytes = b""
    source: str = "webhook"


_stored_encoder: Final = msgspec.json.Encoder()
_stored_decoder: Final = msgspec.json.Decoder(_Stored)


def encode_update(update: OrderUpdate) -> bytes:
    """The stored form of ``update`` (JSON; ``raw`` as base64)."""
    status = update.status
    return _stored_encoder.encode(
        _Stored(
            event_id=update.event_id,
            event_type=update.event_type,
            event_status=update.event_status,
            status=None if status is None else str(status),
            transaction_id=update.transaction_id,
            order_id=update.order_id,
            po_number=update.po_number,
            occurred_at=update.occurred_at,
            received_at=update.received_at,
            error_code=update.error_code,
            error_message=update.error_message,
            raw=update.raw,
            source=update.source,
        )
    )


def decode_update(data: bytes | str) -> OrderUpdate:
    """Read back an update written by :func:`encode_update`, field for field."""
    s = _stored_decoder.decode(data)
    status: OrderStatus | str | None = s.status
    if s.status is not None:
        try:
            status = OrderStatus(s.status)
        except ValueError:
            status = s.status
    return OrderUpdate(
        event_id=s.event_id,
        event_type=s.event_type,
        event_status=s.event_status,
        status=status,
        transaction_id=s.transaction_id,
        order_id=s.order_id,
        po_number=s.po_number,
        occurred_at=s.occurred_at,
        received_at=s.received_at,
        error_code=s.error_code,
        error_message=s.error_message,
        raw=s.raw,
        source=s.source,
    )


class Listeners:
    """The subscribe/notify half every store shares."""

    __slots__ = ("_listeners",)

    def __init__(self) -> None:
        self._listeners: list[ChangeListener] = []

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener(change)`` for every change; returns an unsubscribe."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def notify(self, change: Change) -> None:
        """Tell every listener; one that raises is logged and skipped."""
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:
                logger.exception("store change listener %r failed", listener)


@runtime_checkable
class Store(Protocol):
    """Where orders and their updates are kept; see the module docstring.

    Every coroutine raises :class:`~sips_async.SipsStoreError` when the
    backend cannot read or write. Nothing is half-done then: a failed
    :meth:`record` recorded nothing, so SRS's redelivery is not a replay.

    Optional: a store that holds its orders in this process may also define
    ``peek(key) -> Sequence[OrderUpdate]``, :meth:`history` without I/O (as
    ``MemoryStore`` does). The tracker then gives a pending order no entry of
    its own until it is waited on, and reads it from the store meanwhile.
    """

    async def open(self) -> None:
        """Connect and prepare (create tables, run migrations). Idempotent."""
        ...

    async def close(self) -> None:
        """Flush and release resources. Idempotent."""
        ...

    async def begin(
        self,
        transaction_id: str,
        *,
        po_number: str | None = None,
        state: OrderState = OrderState.SENDING,
    ) -> list[OrderUpdate]:
        """Write the order before its request leaves; return its history.

        Called again for the same ``transactionID`` (a retry, a re-send),
        it sets the state and keeps what was recorded.
        """
        ...

    async def adopt(self, transaction_id: str) -> list[OrderUpdate]:
        """Follow an order not sent from here (``track()``); return its history.

        An order the store does not know yet is written in state
        :attr:`OrderState.TRACKED` (so it is kept until final); a known
        order is left as it is.
        """
        ...

    async def settle(
        self,
        transaction_id: str,
        state: OrderState,
        *,
        order_id: str | None = None,
        queue_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record SRS's answer (or the failure) for a sent order.

        ``order_id`` and ``queue_id`` are linked to the order: updates
        filed under them so far move into its history (arrival order kept).
        """
        ...

    async def record(self, update: OrderUpdate) -> Recorded:
        """Correlate, drop a replay, append, link SRS's id: one atomic step."""
        ...

    async def history(self, key: str) -> list[OrderUpdate]:
        """Every update kept for ``key``, in arrival order."""
        ...

    async def get(self, transaction_id: str) -> TrackedOrder | None:
        """The order row, if the store knows the order."""
        ...

    def outstanding(self) -> AsyncIterator[TrackedOrder]:
        """Every order not final whose state is outstanding, oldest first."""
        ...

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener(change)`` after each change; returns an unsubscribe."""
        ...
