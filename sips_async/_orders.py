"""``client.orders``: submit, enqueue, get, track, outstanding and reconcile."""

from __future__ import annotations

import builtins
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Final

from ._codec import (
    SubmitBody,
    decode_sales_order,
    decode_submit_result,
    encode_order,
    reserved_transaction_id,
)
from ._config import Endpoints
from ._order_list import order_list_body
from ._outcome import maybe_placed
from ._pending import Owner, PendingOrder
from ._poll import DEFAULT_CONCURRENCY, PollConfig, Poller, ReconcileReport
from ._resource import decode_json, list_from_wire
from ._retry import Requester
from ._transport import Response
from .errors import (
    OrderCheckError,
    SipsConfigError,
    SipsError,
    SipsStoreError,
    SipsValidationError,
)
from .models import OrderProblem, OrderRequest, OrderSummary, SalesOrder, SubmitResult
from .stores import OrderState
from .stores._base import RESERVED_PREFIXES

if TYPE_CHECKING:
    from ._branches import BranchesResource
    from .webhooks._tracker import Tracker

__all__ = ["OrdersResource"]

logger: Final = logging.getLogger("sips_async")

_ORDER_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


class OrdersResource:
    """The order calls of SIPS, reached as ``client.orders``."""

    __slots__ = (
        "_body",
        "_branches",
        "_endpoints",
        "_owner",
        "_poller",
        "_requester",
        "_submit_timeout",
        "_timeout",
        "_tracker",
    )

    def __init__(
        self,
        *,
        requester: Requester,
        endpoints: Endpoints,
        timeout: float,
        submit_timeout: float,
        tracker: Tracker,
        tracker_shared: bool = False,
        branches: BranchesResource | None = None,
        body: SubmitBody = "documented",
        poll: PollConfig | None = None,
    ) -> None:
        if body not in ("documented", "minimal"):
            raise SipsConfigError("submit_body must be 'documented' or 'minimal'")
        self._branches = branches
        self._body: SubmitBody = body
        self._requester = requester
        self._endpoints = endpoints
        self._timeout = timeout
        self._submit_timeout = submit_timeout
        self._tracker = tracker
        self._poller = Poller(
            poll,
            requester=requester,
            endpoints=endpoints,
            timeout=timeout,
            tracker=tracker,
        )
        # What this client's PendingOrders share. With a receiver shared with
        # others, closing this client wakes only the orders it handed out.
        self._owner = Owner(tracker, self._poller, shared=tracker_shared)

    async def submit(
        self,
        order: OrderRequest,
        *,
        timeout: float | None = None,
        check: bool = False,
    ) -> SubmitResult:
        """Place an order synchronously: SRS answers once its ERP has it.

        The order is checked locally first; nothing is sent if it fails.
        With ``check=True`` :meth:`check` runs first too. The order is
        written to the store before the request leaves, and SRS's answer (or
        the failure) after. A retry (see
        :class:`~sips_async.RetryConfig`) re-sends the same ``transactionID``.

        Raises:
            FieldsMissingError: required fields are missing (all named).
            OrderCheckError: ``check=True`` and :meth:`check` found problems.
            SipsValidationError: a field is of the wrong type, or SRS said 400.
            OrderProcessingError: SRS answered ``Orders_GeneralError``.
            SipsServerError, SipsConnectionError, SipsTimeoutError: SRS or
                the network failed and the retries ran out (or were unsafe).
            SipsStoreError: the store could not write the order (not sent).
        """
        if check:
            await self._raise_problems(order)
        body = encode_order(order, body=self._body)
        key = order.transaction_id
        tracker = self._tracker
        details = order.po_details
        await tracker.register(
            key,
            po_number=details.po_number if details is not None else None,
            follow=False,
        )
        # The hot path of the benchmarks: _send and _settle inlined.
        try:
            resp = await self._requester.request(
                "POST",
                self._endpoints.submit,
                json=body,
                timeout=timeout or self._submit_timeout,
                places_order=True,
            )
            result = decode_submit_result(resp.body, sent_id=key)
        except SipsError as exc:
            await self._failed(key, exc)
            raise
        # SRS has the order: a store failure now must not hide that answer.
        try:
            await tracker.settle(
                key,
                OrderState.PLACED,
                order_id=result.order_id,
                queue_id=result.queue_id,
            )
        except SipsStoreError as exc:
            logger.error("could not record SRS's answer for order %s: %s", key, exc)
        return result

    async def enqueue(
        self,
        order: OrderRequest,
        *,
        timeout: float | None = None,
        check: bool = False,
    ) -> PendingOrder:
        """Place an order in SRS's queue (asynchronous mode, SRS's preferred).

        The order is written to the store (and its waiters registered) before
        the request leaves, so an update that beats the HTTP answer is not
        lost, and after a crash ``outstanding()`` still lists it. With
        ``check=True`` :meth:`check` runs first and raises
        :class:`~sips_async.errors.OrderCheckError` with every problem: SRS
        queues such orders and then drops them without a webhook.

        Returns:
            A :class:`PendingOrder` holding SRS's answer; await
            ``pending.wait()`` for the acknowledgement.

        Raises:
            SipsStoreError: the store could not write the order (not sent).
            SipsError: as :meth:`submit`; the order then stays outstanding
                in the store unless SRS provably never got it.
        """
        if check:
            await self._raise_problems(order)
        body = encode_order(order, body=self._body)
        key = order.transaction_id
        entry = await self._tracker.register(key, po_number=_po(order))
        try:
            resp = await self._send(
                key, self._endpoints.enqueue, body, timeout or self._timeout
            )
            try:
                result = decode_submit_result(resp.body, sent_id=key)
            except SipsError as exc:
                await self._failed(key, exc)
                raise
            await self._settle(key, OrderState.QUEUED, result)
        except BaseException:
            # No PendingOrder holds the entry: let the tracker forget it
            # (the order itself stays in the store).
            if entry is not None:
                self._tracker.release(entry)
            raise
        return PendingOrder._handed(key, result, self._owner, entry)

    async def _send(self, key: str, path: str, body: bytes, timeout: float) -> Response:
        try:
            return await self._requester.request(
                "POST", path, json=body, timeout=timeout, places_order=True
            )
        except SipsError as exc:
            await self._failed(key, exc)
            raise

    async def _failed(self, key: str, exc: SipsError) -> None:
        # The failure is written after the fact; if the store fails too, the
        # order stays "sending" (outstanding), which errs on the safe side.
        exc.transaction_id = key
        # The requester judged every attempt (a token failure before sending
        # placed nothing); an error raised here after its answer has no verdict.
        placed = exc.maybe_placed
        if placed is None:
            placed = maybe_placed(exc)
        exc.maybe_placed = placed
        state = OrderState.UNCERTAIN if placed else OrderState.FAILED
        try:
            await self._tracker.settle(key, state, error=type(exc).__name__)
        except SipsStoreError as store_exc:
            logger.error("could not record the failure of order %s: %s", key, store_exc)

    async def _settle(self, key: str, state: OrderState, result: SubmitResult) -> None:
        # SRS has the order: a store failure now must not hide that answer.
        try:
            await self._tracker.settle(
                key, state, order_id=result.order_id, queue_id=result.queue_id
            )
        except SipsStoreError as exc:
            logger.error("could not record SRS's answer for order %s: %s", key, exc)

    async def get(
        self, order_id: int | str, *, timeout: float | None = None
    ) -> SalesOrder:
        """Fetch a sales order by id (``GET /orders/{id}``).

        Raises:
            SipsNotFoundError: no such order (404).
            SipsAuthError: the credentials were refused (401).
        """
        text = str(order_id).strip()
        if not _ORDER_ID.fullmatch(text):
            raise SipsValidationError(
                f"order id must be 1-64 letters, digits, '-' or '_', got {order_id!r}",
                field_path="id",
            )
        resp = await self._requester.request(
            "GET",
            self._endpoints.order.replace("{id}", text),
            timeout=timeout or self._timeout,
        )
        return decode_sales_order(resp.body)

    async def check(self, order: OrderRequest) -> builtins.list[OrderProblem]:
        """Find what would make SRS refuse or silently drop ``order``.

        Checks, against the branch's active products (cached, see
        ``client.branches.active_products``): ``jobAccountNumber`` missing or
        SRS's placeholder 1; a ``productId`` not active at the branch; a
        ``uom`` the product's variant does not offer (suggesting its
        ``defaultUOM``); a missing ``option`` on a product with several
        variants; a quantity that is not a positive whole number.

        Returns:
            Every problem found, each with its field path and a message a
            person can act on; empty when none was found.
        """
        from ._check import check_order

        if self._branches is None:
            raise SipsConfigError("this client has no branches resource to check with")
        return await check_order(order, self._branches)

    async def list(
        self,
        *,
        po_number: str | None = None,
        customer_number: str | None = None,
        branch_code: str | None = None,
        order_id: int | None = None,
        ship_to_sequence_number: int | None = None,
        from_date: dt.date | str | None = None,
        to_date: dt.date | str | None = None,
        status: str | None = None,
        job_number: str | None = None,
        ship_to_address: str | None = None,
        include_invoices: bool | None = None,
        limit: int | None = None,
        timeout: float | None = None,
    ) -> builtins.list[OrderSummary]:
        """Search orders (``POST /orders/List``, srs-api.md 3.3).

        Only the filters given are sent, under SRS's request keys
        (``PONumber``, ``customerNumber``, ``orderFromDate``...; dates as
        ``YYYY-MM-DD``, ``includeInvoices`` as ``"Y"``/``"N"``). SRS has not
        published the answer's shape: each entry is a lenient
        :class:`OrderSummary` whose ``raw`` keeps what SRS sent.
        """
        body = order_list_body(
            po_number=po_number,
            customer_number=customer_number,
            branch_code=branch_code,
            order_id=order_id,
            ship_to_sequence_number=ship_to_sequence_number,
            from_date=from_date,
            to_date=to_date,
            status=status,
            job_number=job_number,
            ship_to_address=ship_to_address,
            include_invoices=include_invoices,
            limit=limit,
        )
        resp = await self._requester.request(
            "POST",
            self._endpoints.order_list,
            json=body,
            timeout=timeout or self._timeout,
        )
        return list_from_wire(
            decode_json(resp.body, self._endpoints.order_list),
            OrderSummary,
            "order list",
            keys=("orders", "orderList"),
        )

    async def _raise_problems(self, order: OrderRequest) -> None:
        problems = await self.check(order)
        if problems:
            raise OrderCheckError(tuple(problems))

    async def track(self, transaction_id: str) -> PendingOrder:
        """Re-attach to an order by ``transactionID`` (after a restart, say).

        Returns once its stored history is loaded: updates received while
        nobody waited (or before a restart, with a durable store) are in
        ``history``; ``wait()`` and ``updates()`` work as after ``enqueue``.
        An order the store did not know is kept from now on until final.
        """
        key = str(transaction_id).strip()
        if not key:
            raise SipsValidationError("transaction_id is empty", field_path="id")
        if key.startswith(RESERVED_PREFIXES):
            raise reserved_transaction_id(key)
        entry = await self._tracker.attach(key)
        return PendingOrder._handed(key, None, self._owner, entry)

    async def outstanding(self) -> AsyncIterator[PendingOrder]:
        """Every order not final yet, oldest first, history loaded.

        After a restart this is what was in flight: queued orders awaiting
        their updates, and orders whose submit failed in a way that may
        have placed them (ambiguous failures included).
        """
        async for row in self._tracker.outstanding():
            yield await self.track(row.transaction_id)

    async def reconcile(
        self,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: Callable[[int, int], None] | None = None,
    ) -> ReconcileReport:
        """Ask SRS once about every outstanding order; what it said, per order.

        Each order is looked up with ``GET /orders/{id}`` when SRS's id is
        known, else Order List by PO number (``concurrency`` at a time, with
        the retry policy). A status SRS reports is recorded through the
        store as an update with ``source="poll"``, so waiters anywhere wake
        and a final status ends the order. An order SRS does not find stays
        outstanding: absence is no proof SRS dropped it, and nothing is ever
        re-submitted. Run it on start-up (see the README's "after a restart").

        Args:
            concurrency: orders asked about at once (default 8).
            progress: called with ``(done, total)`` after each order.

        Returns:
            A :class:`~sips_async.ReconcileReport`: ``resolved``,
            ``pending``, ``not_found`` and ``failed``, each entry with the
            order's ``transactionID`` and PO number.
        """
        rows = [row async for row in self._tracker.outstanding()]
        return await self._poller.reconcile(
            rows, concurrency=concurrency, progress=progress
        )

    async def close_polls(self) -> None:
        """Stop polling (the client is closing)."""
        await self._poller.aclose()

    def close_handed_out(self) -> None:
        """Wake every waiter on orders this client handed out (client closing)."""
        self._owner.close()


def _po(order: OrderRequest) -> str | None:
    details = order.po_details
    return details.po_number if details is not None else None
