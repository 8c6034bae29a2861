"""Models: the seed's order document, statuses, submit answers, the wire form."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import pytest
from aioresponses import aioresponses

from sips_async import (
    ContactAddress,
    CustomerContactInfo,
    LineItem,
    OrderRequest,
    OrderStatus,
    PoDetails,
    SalesOrder,
    ShipTo,
    SipsResponseError,
    SubmitResult,
)
from sips_async._codec import decode_sales_order, decode_submit_result
from sips_async.models import (
    Customer,
    DeliveryAgent,
    Invoice,
    LastStatus,
    SalesOrderProduct,
    TokenResponse,
)
from tests._mock import (
    ENQUEUE_URL,
    SEED_ORDER,
    SUBMIT_URL,
    calls,
    make_client,
    mock_token,
    order_url,
)
from tests.factories import make_order

# --------------------------------------------------------------------------
# SalesOrder: the seed's sample success response
# --------------------------------------------------------------------------


def _check_seed_order(order: SalesOrder) -> None:
    assert type(order) is SalesOrder
    assert order.id == 874
    assert order.order_no == "00865"
    assert order.item_total_amount == 65000
    assert order.discount_amount == 0
    assert order.return_total_amount == 0
    assert order.billable_amount == 65000
    assert order.date == dt.date(2021, 6, 8)
    assert type(order.date) is dt.date
    assert order.products == [
        SalesOrderProduct(id=257, sku="sku98", name="necklace", quantity=1, price=65000)
    ]
    assert order.customer == Customer(
        id=3,
        contact_person_name="test new",
        company_name="testing",
        display_name="testing",
        email=None,
        contactperson_number="6396281335",
        company_phone="6396281331",
        gst_treatment="Registered GST",
        gstin="7896GHYO2030256",
        customer_code="1625035402",
        address=None,
    )
    customer = order.customer
    assert customer is not None
    assert customer.email is None
    assert customer.address is None  # [] on the wire
    assert order.address is None  # absent in the sample
    assert order.salesagent is None  # [] on the wire
    assert order.deliveryagent == DeliveryAgent(
        id=1, first_name="archa", last_name="jha", phone_number="7697602300"
    )
    assert order.laststatus == LastStatus(name="Shipment Created")
    assert order.status == OrderStatus.SHIPMENT_CREATED
    assert order.status is OrderStatus.SHIPMENT_CREATED
    assert len(order.invoices) == 1
    invoice = order.invoices[0]
    assert invoice == Invoice(
        id=877,
        invoice_number="INV-21-00001",
        date=dt.date(2021, 6, 8),
        due_date=dt.date(2021, 6, 8),
        total_amount=65000,
        discount_amount=0,
        returned_amount=0,
        invoice_amount=65000,
        cgst=0,
        sgst=0,
        igst=0,
    )
    assert type(invoice.date) is dt.date
    assert type(invoice.due_date) is dt.date


def test_seed_sales_order_decodes_exactly() -> None:
    _check_seed_order(decode_sales_order(SEED_ORDER))


async def test_get_returns_seed_sales_order() -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(order_url(874), body=SEED_ORDER)
        async with make_client() as client:
            order = await client.orders.get(874)
    _check_seed_order(order)


def test_sales_order_is_lenient() -> None:
    doc = msgspec.json.decode(SEED_ORDER)
    doc["data"]["brand_new_field"] = {"x": 1}
    doc["data"]["customer"]["loyalty"] = "gold"
    doc["data"]["address"] = {
        "addressline1": "1 Main St",
        "addressline2": None,
        "area": {
            "id": 5,
            "name": "Riverside",
            "area_code": "RV",
            "city": {"id": 9, "name": "Ontario", "code": "ONT", "state": []},
        },
        "postalcode": {"id": 2, "code": "14519"},
    }
    doc["data"]["salesagent"] = {"id": 4, "first_name": "Sam", "avatar": None}
    doc["data"]["laststatus"] = {"name": "On Hold For Credit"}
    order = decode_sales_order(msgspec.json.encode(doc))
    assert order.address is not None
    assert order.address.addressline1 == "1 Main St"
    assert order.address.area is not None
    assert order.address.area.city is not None
    assert order.address.area.city.name == "Ontario"
    assert order.address.area.city.state is None
    assert order.address.postalcode is not None
    assert order.address.postalcode.code == "14519"
    assert order.salesagent is not None
    assert (order.salesagent.id, order.salesagent.first_name) == (4, "Sam")
    assert order.status == "On Hold For Credit"
    assert not isinstance(order.status, OrderStatus)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"order": {}}', b'{"data": {"id": "eight"}}'],
)
def test_unreadable_sales_order_is_response_error(body: bytes) -> None:
    with pytest.raises(SipsResponseError):
        decode_sales_order(body)


# --------------------------------------------------------------------------
# OrderStatus
# --------------------------------------------------------------------------

TEN = [
    ("Placed", OrderStatus.PLACED),
    ("Processed", OrderStatus.PROCESSED),
    ("In Review/Invoice Dept", OrderStatus.IN_REVIEW),
    ("Shipment Created", OrderStatus.SHIPMENT_CREATED),
    ("Delivered", OrderStatus.DELIVERED),
    ("Cancelled", OrderStatus.CANCELLED),
    ("Returned", OrderStatus.RETURNED),
    ("Invoice Generated", OrderStatus.INVOICE_GENERATED),
    ("Undelivered", OrderStatus.UNDELIVERED),
    ("Postponed", OrderStatus.POSTPONED),
]


def test_order_status_has_exactly_the_ten_seed_statuses() -> None:
    assert [s.value for s in OrderStatus] == [text for text, _ in TEN]


@pytest.mark.parametrize(("text", "member"), TEN)
def test_order_status_parses(text: str, member: OrderStatus) -> None:
    assert OrderStatus.parse(text) is member
    assert OrderStatus.parse(text.upper()) is member
    assert OrderStatus.parse(f"  {text.lower()}  ") is member
    assert member == text  # a str enum: compares with the wire text


@pytest.mark.parametrize(
    "text", ["On Hold", "Back Ordered", "Delivered!", "In Review", "", "Placed?"]
)
def test_unknown_status_kept_verbatim(text: str) -> None:
    parsed = OrderStatus.parse(text)
    assert parsed == text
    assert type(parsed) is str


def test_no_status_is_none() -> None:
    assert OrderStatus.parse(None) is None


# --------------------------------------------------------------------------
# SubmitResult
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected", "queued"),
    [
        (
            b'{"message": "Order Queued", "transactionID": "t-1", "orderID": null,'
            b' "queueID": "Q-77"}',
            SubmitResult(message="Order Queued", transaction_id="t-1", queue_id="Q-77"),
            True,
        ),
        (
            b'{"message": "Order Queued", "transactionID": "t-1"}',
            SubmitResult(message="Order Queued", transaction_id="t-1"),
            True,
        ),
        (
            b'{"message": "Accepted", "queueID": 9001}',
            SubmitResult(message="Accepted", queue_id="9001"),
            True,
        ),
        (
            b'{"message": "Order Submitted", "transactionID": "t-1",'
            b' "orderID": 35818786, "queueID": null}',
            SubmitResult(
                message="Order Submitted", transaction_id="t-1", order_id="35818786"
            ),
            False,
        ),
        (
            b'{"message": "Order Submitted", "orderID": "35818786", "extra": 1}',
            SubmitResult(message="Order Submitted", order_id="35818786"),
            False,
        ),
    ],
    ids=["queued-id", "queued-message", "queue-id-number", "submitted", "str-id"],
)
def test_submit_result_decodes(
    body: bytes, expected: SubmitResult, queued: bool
) -> None:
    result = decode_submit_result(body)
    assert result == expected
    assert result.queued is queued


async def test_submit_and_enqueue_return_submit_results() -> None:
    order = make_order()
    with aioresponses() as m:
        mock_token(m)
        m.post(
            SUBMIT_URL,
            payload={
                "message": "Order Submitted",
                "transactionID": order.transaction_id,
                "orderID": 35818786,
                "queueID": None,
            },
        )
        m.post(
            ENQUEUE_URL,
            payload={
                "message": "Order Queued",
                "transactionID": order.transaction_id,
                "orderID": None,
                "queueID": "Q-1",
            },
        )
        async with make_client() as client:
            result = await client.orders.submit(order)
            pending = await client.orders.enqueue(order)
    assert result.queued is False
    assert result.order_id == "35818786"
    assert isinstance(result.order_id, str)
    assert result.transaction_id == order.transaction_id
    assert pending.result is not None
    assert pending.result.queued is True
    assert pending.result.queue_id == "Q-1"
    assert pending.transaction_id == order.transaction_id


# --------------------------------------------------------------------------
# OrderRequest on the wire
# --------------------------------------------------------------------------


def test_order_request_wire_names_are_srs_camel_case() -> None:
    order = OrderRequest(
        source_system="ACME",
        customer_code="DEMO001",
        job_account_number=1,
        branch_code="BRRIV",
        transaction_id="txn-1",
        transaction_date="2026-05-20T10:00:00.000",
        ship_to=ShipTo(address_line1="1 Road", zip_code="14519"),
        po_details=PoDetails(po_number="PO-1", expected_delivery_date="2026-06-01"),
        order_line_item_details=[LineItem(product_id=75664, quantity=2, uom="SQ")],
        customer_contact_info=CustomerContactInfo(
            customer_contact_name="Ann",
            customer_contact_address=ContactAddress(zip_code="14519"),
            additional_contact_emails=["a@example.com"],
        ),
    )
    assert msgspec.json.decode(msgspec.json.encode(order)) == {
        "sourceSystem": "ACME",
        "customerCode": "DEMO001",
        "jobAccountNumber": 1,
        "branchCode": "BRRIV",
        "transactionID": "txn-1",
        "transactionDate": "2026-05-20T10:00:00.000",
        "shipTo": {"addressLine1": "1 Road", "zipCode": "14519"},
        "poDetails": {"poNumber": "PO-1", "expectedDeliveryDate": "2026-06-01"},
        "orderLineItemDetails": [{"productId": 75664, "quantity": 2, "uom": "SQ"}],
        "customerContactInfo": {
            "customerContactName": "Ann",
            "customerContactAddress": {"zipCode": "14519"},
            "additionalContactEmails": ["a@example.com"],
        },
    }


def test_transaction_id_is_a_fresh_uuid4_unless_given() -> None:
    a, b = make_order(), make_order()
    assert a.transaction_id != b.transaction_id
    assert uuid.UUID(a.transaction_id).version == 4
    assert make_order(transaction_id="mine").transaction_id == "mine"


async def test_submit_sends_the_order_body_unchanged() -> None:
    # The minimal body: exactly what the order sets (the documented one,
    # every key, is pinned in test_wire_body.py).
    order = make_order()
    with aioresponses() as m:
        mock_token(m)
        m.post(SUBMIT_URL, payload={"message": "Order Submitted"})
        async with make_client(submit_body="minimal") as client:
            await client.orders.submit(order)
        (sent,) = calls(m, "POST", SUBMIT_URL)
        body = sent.kwargs["data"]
        headers = sent.kwargs["headers"]
    assert msgspec.json.decode(body, type=OrderRequest) == order
    assert headers["Content-Type"] == "application/json"


def test_token_response_repr_hides_the_token() -> None:
    token = TokenResponse(access_token="very-secret-token", expires_in="60")
    assert "very-secret-token" not in repr(token)
    assert token.lifetime(3600) == 60.0


@pytest.mark.parametrize("status", [*OrderStatus, "Something Else", None])
@pytest.mark.parametrize("event_type", ["OA", "OU", "OC"])
def test_is_final_follows_final_statuses_and_rejections(
    status: OrderStatus | str | None, event_type: str
) -> None:
    from sips_async.models import FINAL_STATUSES, OrderUpdate

    update = OrderUpdate(event_id="1", event_type=event_type, status=status)
    expected = event_type == "OC" or status in FINAL_STATUSES
    assert update.is_final is expected
    failed = OrderUpdate(
        event_id="1", event_type=event_type, status=status, error_code="E1"
    )
    assert failed.is_final is True  # an error code ends the order
    said = OrderUpdate(
        event_id="1", event_type=event_type, status=status, event_status="Rejected"
    )
    assert said.is_final is (expected or event_type == "OA")


def test_status_parsing_is_cached_within_a_bound() -> None:
    from sips_async.models import _PARSED, _PARSED_MAX

    for i in range(3 * _PARSED_MAX):  # a sender inventing statuses
        assert OrderStatus.parse(f"status {i}") == f"status {i}"
        assert len(_PARSED) <= _PARSED_MAX
    # Still right after the cache was cleared and refilled, both spellings.
    assert OrderStatus.parse("Delivered") is OrderStatus.DELIVERED
    assert OrderStatus.parse("  shipment   CREATED ") is OrderStatus.SHIPMENT_CREATED
    assert OrderStatus.parse("  shipment   CREATED ") is OrderStatus.SHIPMENT_CREATED
    assert OrderStatus.parse("Accepted") == "Accepted"
