"""Polling and reconciliation: asking SRS about orders whose updates went missing.

SRS may lose a webhook, and a receiver may be down longer than SRS
redelivers. With :class:`PollConfig`, an order someone is waiting on
(``wait()``, ``wait_for()``, ``updates()``) that has had no update for
``after`` seconds is asked about, at most every ``every`` seconds, through
``GET /orders/{id}`` when SRS's id is known, else Order List by PO number.
SRS's answer becomes an :class:`~sips_async.OrderUpdate` with
``source="poll"``, recorded through the store like a webhook: its
``eventId`` is derived from SRS's order id and the status, so asking again
about an unchanged order is a replay the store drops.

``client.orders.reconcile()`` asks once about every outstanding order.

A poll that finds nothing (404, an empty list) is no proof that SRS dropped
the order: it is logged and the order stays outstanding. Nothing here ever
re-submits an order.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import re
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

import msgspec

from ._codec import decode_sales_order
from ._config import Endpoints
from ._order_list import order_list_body
from ._resource import decode_json, list_from_wire
from ._retry import Requester
from .errors import SipsConfigError, SipsError, SipsNotFoundError, SipsStoreError
from .models import OrderStatus, OrderSummary, OrderUpdate
from .stores import OrderState, TrackedOrder

if TYPE_CHECKING:
    from ._pending import Entry
    from .webhooks._tracker import Tracker

__all__ = [
    "MIN_EVERY",
    "PollConfig",
    "Poller",
    "ReconcileReport",
    "ReconciledOrder",
]

logger: Final = logging.getLogger("sips_async")

#: The shortest interval ``PollConfig.every`` accepts, in seconds.
MIN_EVERY: Final = 0.01
#: Orders ``reconcile()`` asks about at once, unless told otherwise.
DEFAULT_CONCURRENCY: Final = 8

_ORDER_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Status texts that say SRS has the order but has not placed it yet.
_NO_STATUS: Final = frozenset({"", "queued", "pending"})

Outcome = Literal["resolved", "pending", "not_found", "failed"]


def _seconds(name: str, value: object, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SipsConfigError(f"{name} must be a number of seconds, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and number > 0 and number >= minimum):
        least = f"at least {minimum}" if minimum > 0 else "positive"
        raise SipsConfigError(f"{name} must be a finite number {least}, got {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class PollConfig:
    """When to ask SRS about a waited order that has gone quiet.

    Args:
        after: seconds without an update before the first poll.
        every: seconds between two polls of the same order, at least
            :data:`MIN_EVERY` (0.01).

    Example::

        SipsClient(..., poll=PollConfig(after=120, every=300))

    Raises:
        SipsConfigError: a value is not a positive finite number, or
            ``every`` is below the minimum.
    """

    after: float = 120.0
    every: float = 300.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "after", _seconds("after", self.after, 0.0))
        object.__setattr__(self, "every", _seconds("every", self.every, MIN_EVERY))


class ReconciledOrder(msgspec.Struct, frozen=True, kw_only=True):
    """What SRS said about one outstanding order.

    Attributes:
        transaction_id: the order's ``transactionID``.
        po_number: its PO number, when known.
        order_id: SRS's order id, when known (from SRS's answer if found).
        status: SRS's status text, when SRS found the order with one.
        detail: how it was looked up, or why it could not be.
    """

    transaction_id: str
    po_number: str | None = None
    order_id: str | None = None
    status: str | None = None
    detail: str = ""


class ReconcileReport(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of ``client.orders.reconcile()``, one list per outcome.

    Attributes:
        resolved: SRS reports the order final (delivered, cancelled,
            returned, rejected); it is no longer outstanding.
        pending: SRS has the order, not final yet (still outstanding).
        not_found: SRS found nothing (404, empty list) or there was nothing
            to ask by; still outstanding: absence is no proof of a drop.
        failed: the question itself failed (network, SRS error, store).
    """

    resolved: tuple[ReconciledOrder, ...] = ()
    pending: tuple[ReconciledOrder, ...] = ()
    not_found: tuple[ReconciledOrder, ...] = ()
    failed: tuple[ReconciledOrder, ...] = ()

    @property
    def total(self) -> int:
        """How many orders were asked about."""
        return (
            len(self.resolved)
            + len(self.pending)
            + len(self.not_found)
            + len(self.failed)
        )


def event_type_for(status: OrderStatus | str) -> str:
    """The webhook event type a polled status stands for (``OU``, ``DU``, ``OC``)."""
    if status in (OrderStatus.DELIVERED, OrderStatus.UNDELIVERED):
        return "DU"
    if status == OrderStatus.CANCELLED:
        return "OC"
    return "OU"


def poll_update(
    *,
    transaction_id: str,
    srs_id: str | None,
    status_text: str,
    po_number: str | None,
    raw: bytes,
) -> OrderUpdate:
    """The :class:`OrderUpdate` standing for SRS's answer to a poll.

    Its ``eventId`` depends only on SRS's order id and the status, so the
    same answer polled twice (by any instance) is a replay.
    """
    status = OrderStatus.parse(status_text)
    assert status is not None
    return OrderUpdate(
        event_id=f"poll:{srs_id or transaction_id}:{status_text}",
        event_type=event_type_for(status),
        event_status=status_text,
        status=status,
        transaction_id=transaction_id,
        order_id=srs_id,
        po_number=po_number,
        occurred_at=None,  # SRS's order documents carry no status time
        raw=raw,
        source="poll",
    )


def _same_status(update: OrderUpdate, text: str) -> bool:
    return (update.event_status or "").strip().casefold() == text.casefold()


@dataclass(slots=True)
class _Watch:
    """Polling state of one waited order (lives as long as its entry)."""

    since: float
    seen: int = -1
    polled_at: float = -math.inf
    waiters: int = 0
    task: asyncio.Task[None] | None = None


class Poller:
    """Asks SRS about orders: for waited orders when they go quiet, and on demand.

    Args:
        config: when to poll waited orders; ``None``: never on its own
            (``reconcile()`` still works).
        clock: monotonic seconds (a seam for tests).
        sleep: how to wait (a seam for tests; ``asyncio.sleep``).
    """

    __slots__ = (
        "_endpoints",
        "_requester",
        "_tasks",
        "_timeout",
        "_tracker",
        "_watches",
        "clock",
        "config",
        "polls",
        "sleep",
    )

    def __init__(
        self,
        config: PollConfig | None,
        *,
        requester: Requester,
        endpoints: Endpoints,
        timeout: float,
        tracker: Tracker,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self._requester = requester
        self._endpoints = endpoints
        self._timeout = timeout
        self._tracker = tracker
        self.clock = clock
        self.sleep = sleep
        self._watches: weakref.WeakKeyDictionary[Entry, _Watch] = (
            weakref.WeakKeyDictionary()
        )
        self._tasks: set[asyncio.Task[None]] = set()
        #: Questions asked of SRS so far (one per order asked about).
        self.polls = 0

    @property
    def active(self) -> int:
        """Orders being polled right now (a waiter inside, not final yet)."""
        return sum(1 for task in self._tasks if not task.done())

    # -- waited orders -------------------------------------------------------

    @contextlib.asynccontextmanager
    async def watching(self, entry: Entry) -> AsyncIterator[None]:
        """Poll ``entry``'s order while the caller is inside (no-op unconfigured)."""
        if self.config is None:
            yield
            return
        watch = self._watches.get(entry)
        if watch is None:
            watch = self._watches[entry] = _Watch(since=self.clock())
        watch.waiters += 1
        if watch.task is None or watch.task.done():
            task = watch.task = asyncio.create_task(self._run(entry, watch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            yield
        finally:
            watch.waiters -= 1
            if watch.waiters == 0 and watch.task is not None:
                watch.task.cancel()
                watch.task = None

    async def _run(self, entry: Entry, watch: _Watch) -> None:
        try:
            await self._poll_while_waited(entry, watch)
        except Exception:
            # Waiters keep waiting for webhooks; the next waiter polls again.
            logger.exception("polling order %s stopped", entry.key)

    async def _poll_while_waited(self, entry: Entry, watch: _Watch) -> None:
        config = self.config
        assert config is not None
        while not (entry.closed or self._tracker.closed):
            if any(u.is_final for u in entry.updates):
                return
            count = len(entry.updates)
            if count != watch.seen:
                if watch.seen >= 0:
                    watch.since = self.clock()
                watch.seen = count
            due = max(watch.since + config.after, watch.polled_at + config.every)
            delay = due - self.clock()
            if delay > 0:
                await self._quiet(entry, delay)
                continue
            watch.polled_at = self.clock()
            try:
                row = await self._tracker.store.get(entry.key)
            except SipsStoreError as exc:
                logger.warning("poll of %s skipped: %s", entry.key, exc)
                continue
            if row is None:
                row = TrackedOrder(
                    transaction_id=entry.key,
                    state=OrderState.TRACKED,
                    created_at=dt.datetime.now(dt.UTC),
                    order_id=entry.order_id,
                )
            await self.ask(row, order_id=entry.order_id)

    async def _quiet(self, entry: Entry, delay: float) -> None:
        """Return after ``delay`` seconds, or earlier when ``entry`` changes."""
        changed = asyncio.ensure_future(entry.next_change())
        slept = asyncio.ensure_future(self.sleep(delay))
        try:
            await asyncio.wait({changed, slept}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            slept.cancel()

    async def aclose(self) -> None:
        """Stop every poll in progress (the client is closing)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- asking SRS ------------------------------------------------------------

    async def ask(
        self, row: TrackedOrder, *, order_id: str | None = None
    ) -> tuple[Outcome, ReconciledOrder]:
        """Ask SRS once about one order and record what it says.

        Never raises for SRS's or the network's failures: they come back as
        ``"failed"`` (and are logged).
        """
        self.polls += 1
        key, po = row.transaction_id, row.po_number
        ids = _unique(row.order_id, row.queue_id, order_id)
        try:
            found = await self._lookup(key, po, ids)
        except SipsError as exc:
            logger.warning("poll of order %s failed: %s", key, exc)
            return "failed", ReconciledOrder(
                transaction_id=key,
                po_number=po,
                order_id=ids[0] if ids else None,
                detail=f"{type(exc).__name__}: {exc}",
            )
        if found is None:
            how = ", ".join(f"GET {i}" for i in ids) or "no SRS id"
            how += f", Order List PO {po}" if po else ", no PO number"
            logger.info(
                "poll: SRS found no order %s (%s); it stays outstanding", key, how
            )
            return "not_found", ReconciledOrder(
                transaction_id=key,
                po_number=po,
                order_id=ids[0] if ids else None,
                detail=f"not found ({how})",
            )
        srs_id, text, raw, how = found
        report = ReconciledOrder(
            transaction_id=key,
            po_number=po,
            order_id=srs_id,
            status=text or None,
            detail=how,
        )
        try:
            final = await self._record(key, po, srs_id, text, raw)
        except SipsStoreError as exc:
            logger.warning("poll answer for order %s not recorded: %s", key, exc)
            return "failed", msgspec.structs.replace(
                report, detail=f"{how}; not recorded: {exc}"
            )
        return ("resolved" if final else "pending"), report

    async def _lookup(
        self, key: str, po: str | None, ids: Sequence[str]
    ) -> tuple[str | None, str, bytes, str] | None:
        """SRS's (order id, status text, raw answer, how) for the order, if found."""
        for srs_id in ids:
            path = self._endpoints.order.replace("{id}", srs_id)
            try:
                resp = await self._requester.request("GET", path, timeout=self._timeout)
            except SipsNotFoundError:
                continue
            order = decode_sales_order(resp.body)
            name = order.laststatus.name if order.laststatus else None
            return str(order.id), (name or "").strip(), resp.body, f"GET {srs_id}"
        if not po:
            return None
        resp = await self._requester.request(
            "POST",
            self._endpoints.order_list,
            json=_by_po(po),
            timeout=self._timeout,
        )
        found = _pick(
            list_from_wire(
                decode_json(resp.body, self._endpoints.order_list),
                OrderSummary,
                "order list",
                keys=("orders", "orderList"),
            ),
            key,
            po,
        )
        if found is None:
            return None
        number = found.order_id if found.order_id is not None else found.order_number
        return (
            None if number is None else str(number),
            (found.order_status or "").strip(),
            msgspec.json.encode(found.raw),
            f"Order List PO {po}",
        )

    async def _record(
        self, key: str, po: str | None, srs_id: str | None, text: str, raw: bytes
    ) -> bool:
        """Record SRS's status as a poll update unless known; whether final now."""
        store = self._tracker.store
        history = await store.history(key)
        if text.casefold() in _NO_STATUS or any(_same_status(u, text) for u in history):
            return any(u.is_final for u in history)
        update = poll_update(
            transaction_id=key,
            srs_id=srs_id,
            status_text=text,
            po_number=po,
            raw=raw,
        )
        # Shielded: a waiter leaving must not cut a store write in half.
        await asyncio.shield(self._tracker.record(update))
        return update.is_final or any(u.is_final for u in history)

    async def reconcile(
        self,
        rows: Sequence[TrackedOrder],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: Callable[[int, int], None] | None = None,
    ) -> ReconcileReport:
        """Ask once about each of ``rows``, ``concurrency`` at a time."""
        if isinstance(concurrency, bool) or not isinstance(concurrency, int):
            raise SipsConfigError("concurrency must be a whole number")
        if concurrency < 1:
            raise SipsConfigError("concurrency must be at least 1")
        gate = asyncio.Semaphore(concurrency)
        done = 0
        results: dict[Outcome, list[ReconciledOrder]] = {
            "resolved": [],
            "pending": [],
            "not_found": [],
            "failed": [],
        }

        async def one(row: TrackedOrder) -> tuple[Outcome, ReconciledOrder]:
            nonlocal done
            async with gate:
                answer = await self.ask(row)
            done += 1
            if progress is not None:
                progress(done, len(rows))
            return answer

        for outcome, order in await asyncio.gather(*(one(row) for row in rows)):
            results[outcome].append(order)
        return ReconcileReport(
            resolved=tuple(results["resolved"]),
            pending=tuple(results["pending"]),
            not_found=tuple(results["not_found"]),
            failed=tuple(results["failed"]),
        )


def _by_po(po: str) -> bytes:
    return order_list_body(
        po_number=po,
        customer_number=None,
        branch_code=None,
        order_id=None,
        ship_to_sequence_number=None,
        from_date=None,
        to_date=None,
        status=None,
        job_number=None,
        ship_to_address=None,
        include_invoices=None,
        limit=None,
    )


def _unique(*ids: str | None) -> list[str]:
    seen: list[str] = []
    for value in ids:
        text = (value or "").strip()
        if text and _ORDER_ID.fullmatch(text) and text not in seen:
            seen.append(text)
    return seen


def _pick(found: Sequence[OrderSummary], key: str, po: str) -> OrderSummary | None:
    """The entry of an Order List answer that is our order, if one clearly is."""
    mine = [s for s in found if s.transaction_id == key]
    if mine:
        return mine[0]
    # Without our transactionID on the entries, only an unambiguous PO match.
    same_po = [
        s
        for s in found
        if s.transaction_id is None and (s.po_number or "").strip() == po.strip()
    ]
    if len(same_po) == 1:
        return same_po[0]
    if len(same_po) > 1:
        logger.warning(
            "poll: PO %s matches %d orders at SRS; none taken for %s",
            po,
            len(same_po),
            key,
        )
    return None
