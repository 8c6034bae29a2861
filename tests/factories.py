"""Builders shared by the tests: valid orders and SRS webhook bodies."""

from __future__ import annotations

from typing import Any

import msgspec

from sips_async import LineItem, OrderRequest, PoDetails, ShipTo

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret-0123456789"  # must never appear in output
HOOK_SECRET = "hook-secret-abcdefghijklmnop"


def make_order(**overrides: Any) -> OrderRequest:
    """A complete, valid order; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "source_system": "TESTS",
        "customer_code": "DEMO001",
        "branch_code": "BRRIV",
        "job_account_number": 78,  # the sandbox's DEMO001 @ BRRIV
        "account_number": "DEMO001",
        "ship_to": ShipTo(
            name="John",
            address_line1="1234 COUNTY LINE ROAD",
            city="ONTARIO",
            state="NY",
            zip_code="14519",
        ),
        "po_details": PoDetails(po_number="5641-8Test", order_type="WHSE"),
        "order_line_item_details": [
            LineItem(
                product_id=75664,
                product_name="CertainTeed Presidential Solaris Shingles",
                option="Country Gray",
                quantity=1,
                price=12,
                uom="SQ",
            ),
        ],
    }
    fields.update(overrides)
    return OrderRequest(**fields)


def event_body(
    *,
    transaction_id: str | None,
    event_type: str = "OA",
    status: str = "Accepted",
    event_id: str = "1",
    order_id: str | None = "35818786",
    when: str = "2026-05-20T14:03:11",
    po: str = "5641-8Test",
    **extra: Any,
) -> bytes:
    """An SRS webhook body (flat JSON, srs-api.md 4.3)."""
    doc: dict[str, Any] = {
        "eventId": event_id,
        "eventType": event_type,
        "eventStatus": status,
        "eventDateTime": when,
        "subscriberReferenceNum": po,
    }
    if order_id is not None:
        doc["subscriberReferenceNum2"] = order_id
    if transaction_id is not None:
        doc["subscriberReferenceNum3"] = transaction_id
    doc.update(extra)
    return msgspec.json.encode(doc)
