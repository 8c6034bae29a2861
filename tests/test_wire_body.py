"""The Submit V2 body on the wire, pinned against SRS's example key by key.

SRS's reference page (srs-api.md appendix U1.1) marks every key required and
declares ``jobAccountNumber``, ``productId``, ``quantity`` and ``price``
integers; the example body is srs-api.md 3.1's.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import pytest

from sips_async import (
    ContactAddress,
    CustomerContactInfo,
    FieldsMissingError,
    LineItem,
    OrderRequest,
    PoDetails,
    ShipTo,
    SipsValidationError,
)
from sips_async._codec import (
    _encode_checked,
    _LineWire,
    _LineWireChecked,
    _OrderWire,
    _OrderWireChecked,
    _OrderWireCheckedWithShipTo,
    _OrderWireWithShipTo,
    encode_order,
)
from sips_async.models import REQUIRED_FIELDS, REQUIRED_LINE_FIELDS
from tests.factories import make_order

#: SRS's Submit Order V2 example body (srs-api.md 3.1; the contact address's
#: values other than "Utah" are not legible in the stored copy: ours).
SRS_EXAMPLE: Final[dict[str, Any]] = {
    "sourceSystem": "SOURCENAME",
    "customerCode": "DEMO001",
    "jobAccountNumber": 1,
    "branchCode": "BRRIV",
    "accountNumber": "DEMO001",
    "transactionID": "3932cdd6-38e7-4d19-a05c-cd866473bdea",
    "transactionDate": "2023-05-11T10:49:34.187",
    "notes": "",
    "shipTo": {
        "name": "John",
        "addressLine1": "1234 COUNTY LINE ROAD",
        "addressLine2": "",
        "addressLine3": "",
        "city": "ONTARIO",
        "state": "NY",
        "zipCode": "14519",
    },
    "poDetails": {
        "poNumber": "5641-8Test",
        "reference": "5641: 7GP",
        "jobNumber": "",
        "orderDate": "2021-04-12",
        "expectedDeliveryDate": "2021-04-15",
        "expectedDeliveryTime": "Anytime",
        "orderType": "WHSE",
        "shippingMethod": "Ground Drop",
    },
    "orderLineItemDetails": [
        {
            "productId": 75664,
            "productName": "CertainTeed Presidential Solaris Shingles",
            "option": "Country Gray",
            "quantity": 1,
            "price": 12,
            "customerItem": "XXXX",
            "uom": "SQ",
        }
    ],
    "customerContactInfo": {
        "customerContactName": "John Dough",
        "customerContactPhone": "9876543210",
        "customerContactEmail": "jdough@example.com",
        "customerContactAddress": {
            "addressLine1": "1 MAIN ST",
            "city": "SALT LAKE CITY",
            "state": "Utah",
            "zipCode": "84101",
        },
        "additionalContactEmails": ["test@example.com"],
    },
}


def example_order() -> OrderRequest:
    """SRS's example, built through the Python API."""
    return OrderRequest(
        source_system="SOURCENAME",
        customer_code="DEMO001",
        job_account_number=1,
        branch_code="BRRIV",
        account_number="DEMO001",
        transaction_id="3932cdd6-38e7-4d19-a05c-cd866473bdea",
        transaction_date="2023-05-11T10:49:34.187",
        ship_to=ShipTo(
            name="John",
            address_line1="1234 COUNTY LINE ROAD",
            city="ONTARIO",
            state="NY",
            zip_code="14519",
        ),
        po_details=PoDetails(
            po_number="5641-8Test",
            reference="5641: 7GP",
            order_date="2021-04-12",
            expected_delivery_date="2021-04-15",
            expected_delivery_time="Anytime",
            order_type="WHSE",
            shipping_method="Ground Drop",
        ),
        order_line_item_details=[
            LineItem(
                product_id=75664,
                product_name="CertainTeed Presidential Solaris Shingles",
                option="Country Gray",
                quantity=1,
                price=12,
                customer_item="XXXX",
                uom="SQ",
            )
        ],
        customer_contact_info=CustomerContactInfo(
            customer_contact_name="John Dough",
            customer_contact_phone="9876543210",
            customer_contact_email="jdough@example.com",
            customer_contact_address=ContactAddress(
                address_line1="1 MAIN ST",
                city="SALT LAKE CITY",
                state="Utah",
                zip_code="84101",
            ),
            additional_contact_emails=["test@example.com"],
        ),
    )


def sent(order: OrderRequest, **kwargs: Any) -> dict[str, Any]:
    body = msgspec.json.decode(encode_order(order, **kwargs))
    assert isinstance(body, dict)
    return body


def _same_shape(ours: Any, theirs: Any, path: str = "$") -> None:
    """Same keys, in the same order, and the same JSON types, all the way down."""
    assert type(ours) is type(theirs), f"{path}: {type(ours)} != {type(theirs)}"
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs), path
        for key in theirs:
            _same_shape(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, list) and theirs and ours:
        for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
            _same_shape(a, b, f"{path}[{i}]")


def test_srs_example_goes_out_exactly_as_srs_shows_it() -> None:
    body = sent(example_order())
    _same_shape(body, SRS_EXAMPLE)
    assert body == SRS_EXAMPLE


def test_every_documented_key_is_sent_when_the_caller_gave_nothing() -> None:
    order = OrderRequest(
        source_system="ACME",
        customer_code="DEMO001",
        job_account_number=78,
        branch_code="BRRIV",
        order_line_item_details=[LineItem(product_id=40112, quantity=3, uom="BD")],
    )
    body = sent(order)
    _same_shape(body, SRS_EXAMPLE)
    assert body["shipTo"] == dict.fromkeys(SRS_EXAMPLE["shipTo"], "")
    assert body["poDetails"] == dict.fromkeys(SRS_EXAMPLE["poDetails"], "")
    assert body["notes"] == "" and body["accountNumber"] == ""
    assert body["orderLineItemDetails"] == [
        {
            "productId": 40112,
            "productName": "",
            "option": "",
            "quantity": 3,
            "price": 0,  # integer on the wire: no partner price
            "customerItem": "",
            "uom": "BD",
        }
    ]
    contact = body["customerContactInfo"]
    assert contact["customerContactAddress"] == dict.fromkeys(
        ("addressLine1", "city", "state", "zipCode"), ""
    )
    assert contact["additionalContactEmails"] == []
    assert "shipToSequenceNumber" not in body


def test_integers_stay_integers_on_the_wire() -> None:
    order = example_order()
    lines = [LineItem(product_id=75664, option="Country Gray", quantity=3.0, uom="SQ")]  # type: ignore[arg-type]
    raw = encode_order(msgspec.structs.replace(order, order_line_item_details=lines))
    assert b'"quantity":3,' in raw and b"3.0" not in raw
    assert b'"jobAccountNumber":1,' in raw and b'"productId":75664,' in raw


@pytest.mark.parametrize(
    ("line", "path"),
    [
        ({"quantity": 2.5}, "$.orderLineItemDetails[0].quantity"),
        ({"quantity": 0.5}, "$.orderLineItemDetails[0].quantity"),
        ({"quantity": 1, "price": 12.5}, "$.orderLineItemDetails[0].price"),
    ],
)
def test_a_fraction_is_refused_never_rounded(line: dict[str, Any], path: str) -> None:
    fields: dict[str, Any] = {"product_id": 75664, "uom": "SQ", **line}
    order = msgspec.structs.replace(
        example_order(), order_line_item_details=[LineItem(**fields)]
    )
    for body in ("documented", "minimal"):
        with pytest.raises(SipsValidationError) as info:
            encode_order(order, body=body)
        assert info.value.field_path == path
        assert "whole number" in info.value.description
        assert "rounded" in info.value.description


def test_ship_to_sequence_number_is_an_optional_extra() -> None:
    order = msgspec.structs.replace(example_order(), ship_to_sequence_number=2)
    body = sent(order)
    assert body["shipToSequenceNumber"] == 2
    assert list(body)[: len(SRS_EXAMPLE)] == list(SRS_EXAMPLE)


def test_the_minimal_body_sends_only_what_the_order_sets() -> None:
    # The integrator QA contract (srs-api.md 3.2): no jobAccountNumber, price
    # or shipTo.name, a shipToSequenceNumber instead.
    order = OrderRequest(
        source_system="ACME",
        customer_code="DEMO001",
        branch_code="BRRIV",
        ship_to_sequence_number=1,
        transaction_id="t-1",
        transaction_date="2026-01-02T03:04:05.000",
        ship_to=ShipTo(address_line1="1 MAIN ST", city="ONTARIO"),
        order_line_item_details=[LineItem(product_id=40112, quantity=3, uom="BD")],
    )
    assert sent(order, body="minimal") == {
        "sourceSystem": "ACME",
        "customerCode": "DEMO001",
        "branchCode": "BRRIV",
        "transactionID": "t-1",
        "transactionDate": "2026-01-02T03:04:05.000",
        "shipTo": {"addressLine1": "1 MAIN ST", "city": "ONTARIO"},
        "orderLineItemDetails": [{"productId": 40112, "quantity": 3, "uom": "BD"}],
        "shipToSequenceNumber": 1,
    }
    # The documented body still needs the job account.
    with pytest.raises(FieldsMissingError) as info:
        encode_order(order)
    assert info.value.fields == ("jobAccountNumber",)


# --------------------------------------------------------------------------
# The one-conversion path (encode_order's fast path) against the checks
# --------------------------------------------------------------------------


def _checked_path(order: OrderRequest) -> bytes:
    """What encode_order sends when its fast path is skipped."""
    return _encode_checked(order, msgspec.to_builtins(order), "documented")


@pytest.mark.parametrize(
    ("plain", "checked", "required"),
    [
        (_OrderWire, _OrderWireChecked, REQUIRED_FIELDS),
        (_OrderWireWithShipTo, _OrderWireCheckedWithShipTo, REQUIRED_FIELDS),
        (_LineWire, _LineWireChecked, REQUIRED_LINE_FIELDS),
    ],
)
def test_the_checked_structs_differ_only_in_requiring_the_required_fields(
    plain: type[msgspec.Struct],
    checked: type[msgspec.Struct],
    required: tuple[str, ...],
) -> None:
    ours = msgspec.structs.fields(checked)
    theirs = msgspec.structs.fields(plain)
    assert [f.encode_name for f in ours] == [f.encode_name for f in theirs]
    for mine, base in zip(ours, theirs, strict=True):
        if mine.encode_name in required:
            assert mine.required, mine.encode_name
        else:
            assert (mine.default, mine.default_factory) == (
                base.default,
                base.default_factory,
            ), mine.encode_name


@pytest.mark.parametrize(
    "order",
    [
        example_order(),
        make_order(),
        make_order(ship_to_sequence_number=4),
        make_order(ship_to=None, po_details=None, account_number=None),
        make_order(
            order_line_item_details=[
                LineItem(product_id=1, quantity=2, uom="EA"),
                LineItem(product_id=2, quantity=1, uom="SQ", price=0, option="N/A"),
            ],
            customer_contact_info=CustomerContactInfo(customer_contact_name="Jo"),
        ),
        # Whole floats: the fast conversion refuses them, the checks make ints.
        make_order(
            order_line_item_details=[
                LineItem(product_id=1, quantity=3.0, uom="EA")  # type: ignore[arg-type]
            ]
        ),
    ],
    ids=["srs-example", "factory", "ship-to-seq", "sparse", "two-lines", "floats"],
)
def test_the_fast_path_sends_the_bytes_the_checks_send(order: OrderRequest) -> None:
    assert encode_order(order) == _checked_path(order)


_COMPLETE_LINE: Final = {"product_id": 75664, "quantity": 1, "uom": "SQ"}
#: (attribute, its wire path, its empty values): a ``line.`` attribute is one
#: of the line's.
_REQUIRED_CASES: Final[list[tuple[str, str, tuple[Any, ...]]]] = [
    ("source_system", "sourceSystem", (None, "")),
    ("customer_code", "customerCode", (None, "")),
    ("job_account_number", "jobAccountNumber", (None,)),
    ("branch_code", "branchCode", (None, "")),
    ("order_line_item_details", "orderLineItemDetails", (None, [])),
    ("line.product_id", "orderLineItemDetails[0].productId", (None,)),
    ("line.quantity", "orderLineItemDetails[0].quantity", (None,)),
    ("line.uom", "orderLineItemDetails[0].uom", (None, "")),
]


@pytest.mark.parametrize(
    ("field", "wire", "empty"),
    [(f, w, e) for f, w, empties in _REQUIRED_CASES for e in empties],
)
def test_each_required_field_alone_is_named_when_missing(
    field: str, wire: str, empty: Any
) -> None:
    # One field missing from an otherwise complete order: the fast path must
    # not let it through.
    if field.startswith("line."):
        line = {**_COMPLETE_LINE, field.removeprefix("line."): empty}
        order = make_order(order_line_item_details=[LineItem(**line)])
    else:
        order = make_order(**{field: empty})
    with pytest.raises(FieldsMissingError) as info:
        encode_order(order)
    assert info.value.fields == (wire,)
