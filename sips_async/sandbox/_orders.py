"""Orders the sandbox has recorded, and the documents it builds from them.

An :class:`OrderRecord` holds what was submitted and where the order stands;
:func:`sales_order_document` renders it in the shape of the seed "Fetch a
Sales Order With ID" and :meth:`OrderRecord.event` builds an SRS webhook body.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from ..models import OrderRequest, OrderStatus

__all__ = ["OrderRecord", "Step", "sales_order_document"]

#: One webhook step: (eventType, eventStatus).
Step = tuple[str, str]

#: The life of an order SRS accepted from its queue.
QUEUED_STEPS: Final[tuple[Step, ...]] = (
    ("OA", "Accepted"),
    ("OU", OrderStatus.PLACED.value),
    ("OU", OrderStatus.PROCESSED.value),
    ("OU", OrderStatus.SHIPMENT_CREATED.value),
    ("DU", OrderStatus.DELIVERED.value),
)
#: A synchronously placed order is already "Placed"; its updates follow.
SUBMITTED_STEPS: Final[tuple[Step, ...]] = QUEUED_STEPS[1:]
#: A queued order that fails a business rule is rejected by its ``OA``.
REJECTED_STEPS: Final[tuple[Step, ...]] = (("OA", "Rejected"),)

_SHIPPED: Final = frozenset(
    {OrderStatus.SHIPMENT_CREATED, OrderStatus.DELIVERED, OrderStatus.INVOICE_GENERATED}
)
_DELIVERY_AGENT: Final = {
    "id": 1,
    "first_name": "Sandy",
    "last_name": "Box",
    "phone_number": "5550100100",
}


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(slots=True, kw_only=True)
class OrderRecord:
    """One recorded order and its progress.

    Attributes:
        order: the submitted body, decoded.
        erp_id: SRS's numeric order id (``GET /orders/{erp_id}``).
        queue_id: the GUID a queued order is known by at first (``None`` for
            a synchronous submit).
        customer_id: a stable numeric id for the order's ``customerCode``.
        rejection: why the queue will reject the order (``None``: it won't).
        dropped: why SRS drops the queued order without a webhook (empty:
            it doesn't).
        status: the current status text (``None`` until SRS places it).
        steps: the webhook steps still to come, in delivery order.
        swapped: per step, whether it is delivered after the next one.
        duplicated: per step, whether its delivery is replayed.
        lost: per step, whether its webhook is lost for good (never sent).
    """

    order: OrderRequest
    erp_id: int
    queue_id: str | None
    customer_id: int
    rejection: str | None = None
    dropped: tuple[str, ...] = ()
    status: str | None = None
    steps: tuple[Step, ...] = ()
    swapped: tuple[bool, ...] = ()
    duplicated: tuple[bool, ...] = ()
    lost: tuple[bool, ...] = ()
    created_at: dt.datetime = field(default_factory=_utc_now)
    last_event_at: dt.datetime | None = None

    @property
    def transaction_id(self) -> str:
        """The partner's ``transactionID``."""
        return self.order.transaction_id

    @property
    def visible(self) -> bool:
        """Whether ``GET /orders/{id}`` finds the order (rejected, dropped vanish)."""
        return self.rejection is None and not self.dropped

    @property
    def webhook_order_id(self) -> str:
        """``subscriberReferenceNum2``: the ERP id, or the queue GUID if rejected."""
        if self.rejection is not None and self.queue_id is not None:
            return self.queue_id
        return str(self.erp_id)

    def next_event_time(self) -> dt.datetime:
        """Now, or 1 ms after the previous event: strictly increasing per order."""
        now = _utc_now()
        last = self.last_event_at
        if last is not None and now <= last:
            now = last + dt.timedelta(milliseconds=1)
        self.last_event_at = now
        return now

    def advance(self, status: str) -> None:
        """Move the order to ``status`` if it is one of the ten order statuses."""
        if isinstance(OrderStatus.parse(status), OrderStatus):
            self.status = status

    def event(
        self,
        event_type: str,
        status: str,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> dict[str, Any]:
        """Build one SRS webhook body (flat JSON, ``srs-api.md`` 4.3) for now."""
        po = self.order.po_details.po_number if self.order.po_details else None
        return build_event(
            event_type=event_type,
            status=status,
            when=self.next_event_time(),
            po_number=po,
            order_id=self.webhook_order_id,
            transaction_id=self.transaction_id,
            error_code=error_code,
            error_message=error_message,
        )


def build_event(
    *,
    event_type: str,
    status: str,
    when: dt.datetime,
    po_number: str | None,
    order_id: str | None,
    transaction_id: str | None,
    event_id: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> dict[str, Any]:
    """An SRS webhook body; ``eventId`` is a fresh unique id unless given."""
    body: dict[str, Any] = {
        "eventId": event_id or str(uuid.uuid4()),
        "eventType": event_type,
        "eventStatus": status,
        "eventDateTime": when.isoformat(timespec="milliseconds"),
        "subscriberReferenceNum": po_number,
        "subscriberReferenceNum2": order_id,
        "subscriberReferenceNum3": transaction_id,
    }
    if error_code is not None:
        body["errorCode"] = error_code
    if error_message is not None:
        body["errorMessage"] = error_message
    return body


def _order_date(record: OrderRecord) -> dt.date:
    try:
        return dt.datetime.fromisoformat(record.order.transaction_date).date()
    except ValueError:
        return record.created_at.date()


def _address(record: OrderRecord) -> dict[str, Any] | list[Any]:
    ship = record.order.ship_to
    if ship is None:
        return []
    return {
        "addressline1": ship.address_line1,
        "addressline2": ship.address_line2,
        "area": {
            "id": 1,
            "name": ship.city,
            "area_code": ship.zip_code,
            "city": {
                "id": 1,
                "name": ship.city,
                "code": ship.city,
                "state": {"id": 1, "code": ship.state, "name": ship.state},
            },
        },
        "postalcode": {"id": 1, "code": ship.zip_code},
    }


def sales_order_document(record: OrderRecord) -> dict[str, Any]:
    """The order as ``GET /orders/{id}`` returns it: ``{"data": {...}}``.

    The shape follows the seed's sample: objects with nothing to say are
    ``[]`` (``salesagent``, ``customer.address``, and here ``laststatus``
    before SRS places a queued order and ``deliveryagent`` before shipping);
    an invoice appears once the order is delivered.
    """
    order = record.order
    products = []
    total = 0.0
    for i, line in enumerate(order.order_line_item_details or ()):
        quantity = line.quantity or 0.0
        price = line.price or 0.0
        total += quantity * price
        products.append(
            {
                "id": line.product_id if line.product_id is not None else i + 1,
                "sku": line.customer_item or str(line.product_id or ""),
                "name": line.product_name,
                "quantity": quantity,
                "price": price,
            }
        )
    contact = order.customer_contact_info
    status = OrderStatus.parse(record.status)
    date = _order_date(record)
    invoices: list[dict[str, Any]] = []
    if status in (OrderStatus.DELIVERED, OrderStatus.INVOICE_GENERATED):
        invoices.append(
            {
                "id": record.erp_id,
                "invoice_number": f"{record.erp_id:010d}-001",
                "date": date.isoformat(),
                "due_date": (date + dt.timedelta(days=30)).isoformat(),
                "total_amount": total,
                "discount_amount": 0,
                "returned_amount": 0,
                "invoice_amount": total,
                "cgst": 0,
                "sgst": 0,
                "igst": 0,
            }
        )
    data: dict[str, Any] = {
        "id": record.erp_id,
        "order_no": f"{record.erp_id:08d}",
        "item_total_amount": total,
        "discount_amount": 0,
        "return_total_amount": 0,
        "billable_amount": total,
        "date": date.isoformat(),
        "products": products,
        "customer": {
            "id": record.customer_id,
            "contact_person_name": contact.customer_contact_name if contact else None,
            "company_name": order.customer_code,
            "display_name": order.customer_code,
            "email": contact.customer_contact_email if contact else None,
            "contactperson_number": (
                contact.customer_contact_phone if contact else None
            ),
            "company_phone": None,
            "gst_treatment": None,
            "gstin": None,
            "customer_code": order.customer_code,
            "address": [],
        },
        "address": _address(record),
        "salesagent": [],
        "deliveryagent": dict(_DELIVERY_AGENT) if status in _SHIPPED else [],
        "laststatus": {"name": record.status} if record.status else [],
        "invoices": invoices,
    }
    return {"data": data}
