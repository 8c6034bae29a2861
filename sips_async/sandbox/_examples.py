"""Records the sandbox holds from the start, so the README's examples work.

``sips-async get 874`` and ``client.orders.get(874)`` (the id the README and
DESIGN.md use) find a delivered order on a fresh sandbox.
"""

from __future__ import annotations

from typing import Final

from ..models import LineItem, OrderRequest, PoDetails, ShipTo
from ._orders import OrderRecord

__all__ = ["EXAMPLE_ORDER_ID", "example_record"]

#: The sales order id the README's examples fetch.
EXAMPLE_ORDER_ID: Final = 874


def example_record(customer_id: int) -> OrderRecord:
    """A delivered order with id 874 for the customer ``DEMO001``."""
    order = OrderRequest(
        source_system="SIPSDEMO",
        customer_code="DEMO001",
        branch_code="BRRIV",
        job_account_number=1,
        account_number="DEMO001",
        transaction_id="example-874",
        ship_to=ShipTo(
            name="Demo Roofing",
            address_line1="1234 COUNTY LINE ROAD",
            city="ONTARIO",
            state="NY",
            zip_code="14519",
        ),
        po_details=PoDetails(po_number="5641-8Test", order_type="WHSE"),
        order_line_item_details=[
            LineItem(
                product_id=75664,
                product_name="CertainTeed Presidential Solaris Shingles",
                option="Country Gray",
                quantity=2,
                price=112,
                uom="SQ",
            )
        ],
    )
    record = OrderRecord(
        order=order, erp_id=EXAMPLE_ORDER_ID, queue_id=None, customer_id=customer_id
    )
    record.advance("Delivered")
    return record
