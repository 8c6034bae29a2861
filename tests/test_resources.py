"""Every new SIPS call against the bundled sandbox (a real aiohttp server).

customers.validate/get/order_templates, branches.locations/for_customer/
active_products (and its cache), products.price/catalog, invoices.list/get/pdf,
orders.list, orders.check and check=True.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sips_async import (
    LineItem,
    OrderCheckError,
    OrderStatus,
    PriceItem,
    SipsClient,
    SipsNotFoundError,
    SipsValidationError,
    WebhookConfig,
)
from sips_async.models import CALL_BRANCH
from sips_async.sandbox import Sandbox, SandboxConfig

from ._sandbox_helpers import FAST_RETRY, SANDBOX_ID, SANDBOX_SECRET
from .factories import HOOK_SECRET, make_order


def client_for(sb: Sandbox, **kwargs: Any) -> SipsClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return SipsClient(
        client_id=SANDBOX_ID, client_secret=SANDBOX_SECRET, base_url=sb.url, **kwargs
    )


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(step_delay=0.002)) as sandbox:
        yield sandbox


@pytest.fixture
async def client(sb: Sandbox) -> AsyncIterator[SipsClient]:
    async with client_for(sb) as c:
        yield c


# -- customers ---------------------------------------------------------------


async def test_validate_known_customer(client: SipsClient) -> None:
    found = await client.customers.validate("DEMO001", integration_key="DEMO001-KEY")
    assert found.valid and found.valid_indicator == "Y"
    assert found.customer_id == 46225
    assert found.customer_name == "Demo Roofing LLC"
    assert found.home_branch_id == "3"


@pytest.mark.parametrize(
    ("account", "key"),
    [("DEMO001", "wrong-key"), ("HOLD001", None), ("NOBODY", None)],
)
async def test_validate_says_no(client: SipsClient, account: str, key: str) -> None:
    found = await client.customers.validate(account, integration_key=key)
    assert not found.valid
    assert found.valid_indicator == "N"


async def test_validate_needs_an_account_number(
    client: SipsClient, sb: Sandbox
) -> None:
    before = sb.stats().requests
    with pytest.raises(SipsValidationError) as info:
        await client.customers.validate("  ")
    assert info.value.field_path == "accountNumber"
    assert sb.stats().requests == before


async def test_customer_details_and_templates(client: SipsClient) -> None:
    details = await client.customers.get("DEMO001")
    assert details.customer_id == 46225
    assert details.home_branch == "BRRIV" and details.home_branch_id == 3
    assert details.non_saleable_indicator == "N"
    assert details.raw["address"]["city"] == "ONTARIO"  # lenient: raw kept
    (template,) = await client.customers.order_templates("DEMO001")
    assert template.template_id == 501
    assert [p.product_id for p in template.products] == [75664, 40112]
    assert template.products[0].default_uom == "SQ"  # from "defualtUOM"


async def test_unknown_customer_is_not_found(client: SipsClient) -> None:
    with pytest.raises(SipsNotFoundError):
        await client.customers.get("NOBODY")
    with pytest.raises(SipsNotFoundError):
        await client.branches.for_customer("NOBODY")


@pytest.mark.parametrize("code", ["", "../x", "a/b", "x?y", "..", "x" * 65])
async def test_bad_path_parameters_never_leave(
    client: SipsClient, sb: Sandbox, code: str
) -> None:
    before = sb.stats().requests
    for call in (
        client.customers.get,
        client.customers.order_templates,
        client.branches.for_customer,
        client.branches.active_products,
        client.invoices.get,
        client.invoices.pdf,
    ):
        with pytest.raises(SipsValidationError):
            await call(code)
    assert sb.stats().requests == before


# -- branches ----------------------------------------------------------------


async def test_branch_locations(client: SipsClient) -> None:
    every = await client.branches.locations()
    assert {b.branch_code for b in every} == {"BRRIV", "WSGRA", "DEMO"}
    (one,) = await client.branches.locations(branch_code="WSGRA")
    assert one.branch_name == "SRS Grand Rapids"
    assert "Will Call" in one.shipping_methods
    assert one.raw["brand"] == "Heritage Wholesalers"


async def test_customer_branches_carry_job_accounts(client: SipsClient) -> None:
    branches = await client.branches.for_customer("DEMO001")
    assert [b.branch_code for b in branches] == ["BRRIV", "WSGRA"]
    riverside = branches[0]
    assert [j.job_account_number for j in riverside.job_accounts] == [78, 79]
    assert riverside.job_accounts[1].ship_to_sequence_number == 2
    (only,) = await client.branches.for_customer("DEMO001", branch_code="WSGRA")
    assert only.job_accounts[0].job_account_number == 80


async def test_active_products_have_variants_and_uoms(client: SipsClient) -> None:
    products = {p.product_id: p for p in await client.branches.active_products("BRRIV")}
    assert set(products) == {75664, 81230, 40112, 55001}
    shingles = products[75664]
    assert [v.option for v in shingles.product_variant] == [
        "Country Gray",
        "Weathered Wood",
    ]
    assert shingles.product_variant[0].uoms == ["SQ", "BD"]
    assert shingles.product_variant[0].default_uom == "SQ"
    wsgra = {p.product_id for p in await client.branches.active_products("WSGRA")}
    assert 12345 in wsgra and 81230 not in wsgra


async def test_active_products_are_cached_for_the_ttl(sb: Sandbox) -> None:
    now = [1000.0]
    async with client_for(sb, reference_ttl=60) as client:
        client.branches._clock = lambda: now[0]
        first = await client.branches.active_products("BRRIV")
        asked = sb.stats().requests
        again = await client.branches.active_products("brriv")  # same branch
        assert again == first
        assert sb.stats().requests == asked  # from the cache
        now[0] += 61
        await client.branches.active_products("BRRIV")
        assert sb.stats().requests == asked + 1  # expired: asked again
        await client.branches.active_products("BRRIV", refresh=True)
        assert sb.stats().requests == asked + 2


async def test_concurrent_callers_share_one_request(
    client: SipsClient, sb: Sandbox
) -> None:
    await client.customers.get("DEMO001")  # token fetched beforehand
    before = sb.stats().requests
    results = await asyncio.gather(
        *(client.branches.active_products("DEMO") for _ in range(20))
    )
    assert all(r == results[0] for r in results)
    assert sb.stats().requests == before + 1


async def test_unknown_branch_is_not_found_and_not_cached(
    client: SipsClient, sb: Sandbox
) -> None:
    for _ in range(2):
        with pytest.raises(SipsNotFoundError):
            await client.branches.active_products("NOWHERE")
    assert sb.stats().requests >= 2


# -- products ----------------------------------------------------------------


async def test_price_lines(client: SipsClient) -> None:
    lines = await client.products.price(
        customer_code="DEMO001",
        branch_code="BRRIV",
        job_account_number=78,
        items=[
            PriceItem(product_id=75664, quantity=30, uom="SQ"),
            LineItem(product_id=55001, option="N/A", quantity=2, uom="RL"),
            PriceItem(product_id=75664, quantity=1, uom="EACH"),
        ],
        source_system="TESTS",
    )
    shingles, underlayment, bad_uom = lines
    assert shingles.price == 131 and shingles.amount == 131
    assert not shingles.call_branch and shingles.display == "$131.00"
    assert shingles.message_code == 0
    # SRS's rule: a price of 0 is "call branch", never $0.
    assert underlayment.call_branch and underlayment.amount is None
    assert underlayment.display == CALL_BRANCH
    assert bad_uom.call_branch and bad_uom.message_code == 3


@pytest.mark.parametrize("jan", [0, "78", True])
async def test_price_needs_a_numeric_job_account(
    client: SipsClient, sb: Sandbox, jan: Any
) -> None:
    before = sb.stats().requests
    with pytest.raises(SipsValidationError) as info:
        await client.products.price(
            customer_code="DEMO001",
            branch_code="BRRIV",
            job_account_number=jan,
            items=[PriceItem(product_id=75664, quantity=1, uom="SQ")],
        )
    assert info.value.field_path == "jobAccountNumber"
    assert sb.stats().requests == before


async def test_price_refuses_empty_items(client: SipsClient) -> None:
    with pytest.raises(SipsValidationError) as info:
        await client.products.price(
            customer_code="DEMO001",
            branch_code="BRRIV",
            job_account_number=78,
            items=[],
        )
    assert info.value.field_path == "productList"


async def test_catalog(client: SipsClient) -> None:
    items = {i.product_id: i for i in await client.products.catalog()}
    assert 99901 in items  # in the catalog, active nowhere
    assert items[75664].item_code == "CTPRSOL"
    assert len(items[75664].raw["productVariant"]) == 2


# -- invoices ----------------------------------------------------------------


async def test_invoice_list_get_and_pdf(client: SipsClient) -> None:
    found = await client.invoices.list(
        customer_code="DEMO001", start="2020-04-22", end=dt.date(2024, 6, 11)
    )
    assert [i.invoice_number for i in found] == ["0019073403-001"]
    assert found[0].order_number == 19073403
    header = await client.invoices.get("0019073403-001")
    assert header.invoice_total == 3353.83
    assert header.payment_status == "Paid"
    assert header.po_number == "112233" and header.so_type_code == "SO"
    assert header.ship_to_sequence_number == "1"
    pdf = await client.invoices.pdf("0019073403-001")
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"0019073403-001" in pdf


async def test_unknown_invoice_is_not_found(client: SipsClient) -> None:
    with pytest.raises(SipsNotFoundError):
        await client.invoices.get("0000000001-001")
    with pytest.raises(SipsNotFoundError):
        await client.invoices.pdf("0000000001-001")


async def test_invoice_list_refuses_a_bad_date(client: SipsClient) -> None:
    with pytest.raises(SipsValidationError) as info:
        await client.invoices.list(customer_code="DEMO001", start="22/04/2020")
    assert info.value.field_path == "startInvoiceDate"


# -- orders.list, check, and a delivered order's invoice ----------------------


async def test_delivered_order_is_listed_and_invoiced(sb: Sandbox) -> None:
    async with client_for(sb, webhook=WebhookConfig(secret=HOOK_SECRET)) as client:
        sb.webhook_url = client.webhook_url
        order = make_order(po_details=make_order().po_details)
        pending = await client.orders.enqueue(order, check=True)
        await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
        assert pending.result is not None
        (listed,) = await client.orders.list(
            po_number="5641-8Test", include_invoices=True
        )
        assert listed.order_status == "Delivered"
        assert listed.transaction_id == order.transaction_id
        erp_id = int(str(listed.order_id))
        assert listed.raw["invoices"] == [f"{erp_id:010d}-001"]
        invoices = await client.invoices.list(
            customer_code="DEMO001", order_number=erp_id
        )
        (invoice,) = invoices
        assert invoice.invoice_number == f"{erp_id:010d}-001"
        header = await client.invoices.get(invoice.invoice_number)
        assert header.invoice_total == 12  # 1 x 12 as ordered
        assert await client.orders.list(po_number="no-such-po") == []


async def test_orders_list_needs_a_filter(client: SipsClient) -> None:
    with pytest.raises(SipsValidationError):
        await client.orders.list()
    with pytest.raises(SipsValidationError) as info:
        await client.orders.list(po_number="x", from_date="yesterday")
    assert info.value.field_path == "orderFromDate"


async def test_a_good_order_has_no_problems(client: SipsClient) -> None:
    assert await client.orders.check(make_order()) == []


def _line(**overrides: Any) -> LineItem:
    fields: dict[str, Any] = {
        "product_id": 75664,
        "option": "Country Gray",
        "quantity": 2,
        "uom": "SQ",
    }
    fields.update(overrides)
    return LineItem(**fields)


@pytest.mark.parametrize(
    ("order_fields", "field", "words", "suggestion"),
    [
        ({"job_account_number": 1}, "jobAccountNumber", "placeholder", None),
        ({"job_account_number": None}, "jobAccountNumber", "missing", None),
        (
            {"order_line_item_details": [_line(product_id=12345, uom="RL")]},
            "orderLineItemDetails[0].productId",
            "not active at branch BRRIV",
            None,
        ),
        (
            {"order_line_item_details": [_line(uom="EACH")]},
            "orderLineItemDetails[0].uom",
            "sold in SQ, BD",
            "SQ",
        ),
        (
            {
                "order_line_item_details": [
                    _line(product_id=81230, option="Charcoal", uom="EA")
                ]
            },
            "orderLineItemDetails[0].uom",
            "use 'BD'",
            "BD",
        ),
        (
            {"order_line_item_details": [_line(option="N/A")]},
            "orderLineItemDetails[0].option",
            "Country Gray, Weathered Wood",
            "Country Gray",
        ),
        (
            {"order_line_item_details": [_line(option=None)]},
            "orderLineItemDetails[0].option",
            "2 variants",
            "Country Gray",
        ),
        (
            {"order_line_item_details": [_line(option="Purple")]},
            "orderLineItemDetails[0].option",
            "no option 'Purple'",
            "Country Gray",
        ),
        (
            {"order_line_item_details": [_line(quantity=2.5)]},
            "orderLineItemDetails[0].quantity",
            "whole number",
            None,
        ),
        (
            {"branch_code": "NOWHERE"},
            "branchCode",
            "does not know branch",
            None,
        ),
    ],
)
async def test_check_names_each_problem(
    client: SipsClient,
    order_fields: dict[str, Any],
    field: str,
    words: str,
    suggestion: str | None,
) -> None:
    (problem,) = await client.orders.check(make_order(**order_fields))
    assert problem.field == field
    assert words in problem.message
    assert problem.suggestion == suggestion


async def test_check_flags_a_unit_no_variant_has_even_without_option(
    client: SipsClient,
) -> None:
    order = make_order(order_line_item_details=[_line(option=None, uom="EACH")])
    problems = await client.orders.check(order)
    assert [(p.field, p.suggestion) for p in problems] == [
        ("orderLineItemDetails[0].option", "Country Gray"),
        ("orderLineItemDetails[0].uom", "SQ"),
    ]


async def test_ship_to_sequence_stands_in_for_a_missing_job_account(
    client: SipsClient,
) -> None:
    order = make_order(job_account_number=None, ship_to_sequence_number=1)
    assert await client.orders.check(order) == []


async def test_check_reports_every_problem(client: SipsClient) -> None:
    order = make_order(
        job_account_number=1,
        order_line_item_details=[
            _line(option="N/A"),
            _line(product_id=99901, uom="PC"),
        ],
    )
    problems = await client.orders.check(order)
    assert [p.field for p in problems] == [
        "jobAccountNumber",
        "orderLineItemDetails[0].option",
        "orderLineItemDetails[1].productId",
    ]


@pytest.mark.parametrize("queued", [True, False])
async def test_check_true_raises_with_every_problem_and_sends_nothing(
    client: SipsClient, sb: Sandbox, queued: bool
) -> None:
    order = make_order(job_account_number=1, order_line_item_details=[_line(uom="EA")])
    with pytest.raises(OrderCheckError) as info:
        if queued:
            await client.orders.enqueue(order, check=True)
        else:
            await client.orders.submit(order, check=True)
    err = info.value
    assert isinstance(err, SipsValidationError)
    assert [p.field for p in err.problems] == [
        "jobAccountNumber",
        "orderLineItemDetails[0].uom",
    ]
    assert err.field_path == "jobAccountNumber"
    assert "placeholder" in str(err) and "'SQ'" in str(err)
    assert order.transaction_id not in sb.stats().transactions


async def test_checked_submit_goes_through(client: SipsClient, sb: Sandbox) -> None:
    order = make_order()
    result = await client.orders.submit(order, check=True)
    assert result.message == "Order Submitted"
    assert sb.stats().transactions[order.transaction_id] == 1
