"""Local checks: a bad order raises before anything is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aioresponses import aioresponses

from sips_async import (
    FieldsMissingError,
    LineItem,
    OrderRequest,
    SipsClient,
    SipsValidationError,
)
from tests._mock import make_client, total_requests
from tests.factories import make_order


@pytest.fixture
async def mocked() -> AsyncIterator[tuple[SipsClient, aioresponses]]:
    """An open client behind aioresponses with nothing registered."""
    with aioresponses() as m:
        async with make_client() as client:
            yield client, m


async def _both(client: SipsClient, order: Any) -> list[SipsValidationError]:
    """Submit and enqueue ``order``; return the two errors raised."""
    errors: list[SipsValidationError] = []
    for call in (client.orders.submit, client.orders.enqueue):
        with pytest.raises(SipsValidationError) as info:
            await call(order)
        errors.append(info.value)
    return errors


@pytest.mark.parametrize(
    ("order", "fields"),
    [
        (
            OrderRequest(),
            (
                "sourceSystem",
                "customerCode",
                "jobAccountNumber",
                "branchCode",
                "orderLineItemDetails",
            ),
        ),
        (make_order(customer_code=None), ("customerCode",)),
        (
            make_order(branch_code="", source_system=None),
            ("sourceSystem", "branchCode"),
        ),
        (make_order(order_line_item_details=[]), ("orderLineItemDetails",)),
        (
            make_order(
                job_account_number=None,
                order_line_item_details=[
                    LineItem(product_id=1, quantity=1),
                    LineItem(product_id=2, quantity=1, uom="EA"),
                    LineItem(uom=""),
                ],
            ),
            (
                "jobAccountNumber",
                "orderLineItemDetails[0].uom",
                "orderLineItemDetails[2].productId",
                "orderLineItemDetails[2].quantity",
                "orderLineItemDetails[2].uom",
            ),
        ),
    ],
    ids=["empty", "customer", "two-top", "no-lines", "per-line"],
)
async def test_missing_fields_all_named_and_nothing_sent(
    mocked: tuple[SipsClient, aioresponses],
    order: OrderRequest,
    fields: tuple[str, ...],
) -> None:
    client, m = mocked
    for err in await _both(client, order):
        assert isinstance(err, FieldsMissingError)
        assert err.fields == fields
        assert err.code == "FieldsMissingFromRequestBody"
        assert err.status is None
        for name in fields:
            assert name in str(err)
    assert total_requests(m) == 0


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"customer_code": 12345}, "$.customerCode"),
        ({"job_account_number": "one"}, "$.jobAccountNumber"),
        ({"notes": ["a", "list"]}, "$.notes"),
        (
            {
                "order_line_item_details": [
                    LineItem(product_id="x", quantity=1, uom="SQ")  # type: ignore[arg-type]
                ]
            },
            "$.orderLineItemDetails[0].productId",
        ),
        (
            {
                "order_line_item_details": [
                    LineItem(product_id=1, quantity=1, uom="SQ"),
                    LineItem(product_id=2, quantity=1, uom=7),  # type: ignore[arg-type]
                ]
            },
            "$.orderLineItemDetails[1].uom",
        ),
    ],
    ids=["customerCode", "jobAccountNumber", "notes", "line-productId", "line-uom"],
)
async def test_wrong_type_names_its_json_path_and_nothing_sent(
    mocked: tuple[SipsClient, aioresponses], overrides: dict[str, Any], path: str
) -> None:
    client, m = mocked
    for err in await _both(client, make_order(**overrides)):
        assert type(err) is SipsValidationError
        assert err.field_path == path
        assert err.status is None
    assert total_requests(m) == 0


@pytest.mark.parametrize("quantity", [0, -1])
async def test_quantity_must_be_positive(
    mocked: tuple[SipsClient, aioresponses], quantity: int
) -> None:
    client, m = mocked
    lines = [
        LineItem(product_id=1, quantity=3, uom="SQ"),
        LineItem(product_id=2, quantity=quantity, uom="SQ"),
    ]
    for err in await _both(client, make_order(order_line_item_details=lines)):
        assert type(err) is SipsValidationError
        assert err.field_path == "$.orderLineItemDetails[1].quantity"
    assert total_requests(m) == 0


async def test_not_an_order_request_is_refused(
    mocked: tuple[SipsClient, aioresponses],
) -> None:
    client, m = mocked
    for err in await _both(client, {"customerCode": "DEMO001"}):
        assert err.field_path == "$"
    assert total_requests(m) == 0


async def test_unencodable_value_is_validation_error(
    mocked: tuple[SipsClient, aioresponses],
) -> None:
    client, m = mocked
    for err in await _both(client, make_order(notes=object())):
        assert type(err) is SipsValidationError
    assert total_requests(m) == 0


@pytest.mark.parametrize("order_id", ["", "  ", "../admin", "874?x=1", "a/b", "x" * 65])
async def test_bad_order_id_is_refused_before_sending(
    mocked: tuple[SipsClient, aioresponses], order_id: str
) -> None:
    client, m = mocked
    with pytest.raises(SipsValidationError) as info:
        await client.orders.get(order_id)
    assert info.value.field_path == "id"
    assert total_requests(m) == 0


def test_validation_errors_are_value_errors() -> None:
    err = FieldsMissingError("missing", fields=("a",))
    assert isinstance(err, SipsValidationError)
    assert isinstance(err, ValueError)


@pytest.mark.parametrize("tid", ["", "   ", " padded ", "tab\t"])
def test_unusable_transaction_id_is_refused(tid: str) -> None:
    from sips_async._codec import encode_order

    with pytest.raises(SipsValidationError) as info:
        encode_order(make_order(transaction_id=tid))
    assert info.value.field_path == "$.transactionID"


@pytest.mark.parametrize("tid", ["order:35818786", "event:OA:1"])
def test_a_transaction_id_in_the_stores_own_namespace_is_refused(tid: str) -> None:
    from sips_async._codec import encode_order

    with pytest.raises(SipsValidationError, match="must not start with 'order:'"):
        encode_order(make_order(transaction_id=tid))
    # A prefix inside the id is fine.
    assert encode_order(make_order(transaction_id=f"x-{tid}"))


async def test_track_refuses_a_key_in_the_stores_own_namespace() -> None:
    async with SipsClient(
        client_id="id", client_secret="secret", base_url="http://127.0.0.1:9"
    ) as client:
        with pytest.raises(SipsValidationError) as info:
            await client.orders.track("order:35818786")
    assert info.value.field_path == "$.transactionID"
