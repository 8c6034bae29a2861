"""Error paths of the new calls, with aioresponses: the same table as orders.

400 is a validation error, 401 refreshes the token once, 404 is not found and
never retried, 5xx is retried (none of these calls places an order), and an
answer we cannot read is a SipsResponseError. A customer's integration key
goes in the query string and never into a message or a log line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec
import pytest
from aioresponses import aioresponses

from sips_async import (
    Endpoints,
    PriceItem,
    SipsAuthError,
    SipsClient,
    SipsConfigError,
    SipsNotFoundError,
    SipsResponseError,
    SipsServerError,
    SipsValidationError,
)
from tests._mock import (
    BASE,
    SUBMIT_URL,
    TOKEN_URL,
    FakeClock,
    calls,
    make_client,
    mock_token,
)
from tests.factories import make_order

Call = Callable[[SipsClient], Awaitable[Any]]

#: One call per endpoint: (name, how to call it, method, URL pattern).
CALLS: Final[list[tuple[str, Call, str, str]]] = [
    (
        "validate",
        lambda c: c.customers.validate("DEMO001"),
        "GET",
        r"/customers/validate/\?accountNumber=DEMO001$",
    ),
    ("customer", lambda c: c.customers.get("DEMO001"), "GET", "/customers/DEMO001$"),
    (
        "templates",
        lambda c: c.customers.order_templates("DEMO001"),
        "GET",
        "/customers/v2/orderTemplates/DEMO001$",
    ),
    (
        "locations",
        lambda c: c.branches.locations(),
        "GET",
        "/branches/v2/branchLocations$",
    ),
    (
        "for_customer",
        lambda c: c.branches.for_customer("DEMO001"),
        "GET",
        "/branches/v2/customerBranchLocations/DEMO001$",
    ),
    (
        "active_products",
        lambda c: c.branches.active_products("BRRIV"),
        "GET",
        "/branches/v2/activeBranchProducts/BRRIV$",
    ),
    (
        "price",
        lambda c: c.products.price(
            customer_code="DEMO001",
            branch_code="BRRIV",
            job_account_number=78,
            items=[PriceItem(product_id=1, quantity=1, uom="EA")],
        ),
        "POST",
        "/products/v2/price$",
    ),
    ("catalog", lambda c: c.products.catalog(), "GET", "/products/v2/catalog$"),
    (
        "invoices",
        lambda c: c.invoices.list(customer_code="DEMO001"),
        "POST",
        "/invoices/list$",
    ),
    (
        "invoice",
        lambda c: c.invoices.get("0019073403-001"),
        "GET",
        "/invoices/0019073403-001$",
    ),
    (
        "pdf",
        lambda c: c.invoices.pdf("0019073403-001"),
        "GET",
        "/invoices/0019073403-001/pdf$",
    ),
    ("order_list", lambda c: c.orders.list(po_number="P1"), "POST", "/orders/List$"),
]
IDS: Final = [name for name, *_ in CALLS]


def _url(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(BASE) + pattern)


def _requests(m: aioresponses, method: str) -> int:
    assert m.requests is not None
    return sum(
        len(v)
        for (meth, url), v in m.requests.items()
        if meth == method and "token" not in str(url)
    )


@pytest.fixture
def sleeps() -> FakeClock:
    return FakeClock()


@pytest.mark.parametrize(("name", "call", "method", "pattern"), CALLS, ids=IDS)
async def test_400_is_a_validation_error_not_retried(
    name: str, call: Call, method: str, pattern: str, sleeps: FakeClock
) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.add(
            _url(pattern),
            method,
            status=400,
            payload={"message": "bad input"},
            repeat=True,
        )
        async with make_client(clock=sleeps) as client:
            with pytest.raises(SipsValidationError) as info:
                await call(client)
        assert info.value.status == 400 and info.value.description == "bad input"
        assert _requests(m, method) == 1


@pytest.mark.parametrize(("name", "call", "method", "pattern"), CALLS, ids=IDS)
async def test_404_is_not_found_not_retried(
    name: str, call: Call, method: str, pattern: str, sleeps: FakeClock
) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.add(_url(pattern), method, status=404, body=b"Not Found", repeat=True)
        async with make_client(clock=sleeps) as client:
            with pytest.raises(SipsNotFoundError):
                await call(client)
        assert _requests(m, method) == 1


@pytest.mark.parametrize(("name", "call", "method", "pattern"), CALLS, ids=IDS)
async def test_401_twice_refreshes_once_then_raises(
    name: str, call: Call, method: str, pattern: str, sleeps: FakeClock
) -> None:
    with aioresponses() as m:
        mock_token(m, repeat=2)
        m.add(_url(pattern), method, status=401, repeat=True)
        async with make_client(clock=sleeps) as client:
            with pytest.raises(SipsAuthError):
                await call(client)
        assert _requests(m, method) == 2
        assert len(calls(m, "POST", TOKEN_URL)) == 2


@pytest.mark.parametrize(("name", "call", "method", "pattern"), CALLS, ids=IDS)
async def test_5xx_is_retried_with_backoff(
    name: str, call: Call, method: str, pattern: str, sleeps: FakeClock
) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.add(_url(pattern), method, status=502, repeat=True)
        async with make_client(clock=sleeps) as client:
            with pytest.raises(SipsServerError):
                await call(client)
        assert _requests(m, method) == 3  # RetryConfig().max_tries
        assert len(sleeps.delays) == 2


@pytest.mark.parametrize(("name", "call", "method", "pattern"), CALLS, ids=IDS)
async def test_unreadable_answer_is_a_response_error(
    name: str, call: Call, method: str, pattern: str
) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.add(_url(pattern), method, status=200, body=b"<html>oops</html>")
        async with make_client() as client:
            with pytest.raises(SipsResponseError):
                await call(client)


@pytest.mark.parametrize(
    ("name", "call", "method", "pattern", "body"),
    [
        (*CALLS[1], [1, 2]),  # customer: a list, not an object
        (
            *CALLS[4],
            [{"branchCode": "BRRIV", "jobAccounts": [{"jobAccountNumber": "x"}]}],
        ),
        (*CALLS[5], {"products": [{"productName": "no id"}]}),
        (*CALLS[9], {"invoiceHeader": "nothing"}),
        (*CALLS[8], {"invoiceList": 7}),
    ],
    ids=["customer", "for_customer", "active_products", "invoice", "invoices"],
)
async def test_a_wrong_shape_is_a_response_error(
    name: str, call: Call, method: str, pattern: str, body: Any
) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.add(_url(pattern), method, status=200, payload=body)
        async with make_client() as client:
            with pytest.raises(SipsResponseError):
                await call(client)


async def test_lenient_models_keep_unknown_fields_and_take_strings_for_numbers() -> (
    None
):
    with aioresponses() as m:
        mock_token(m)
        m.get(
            _url(r"/branches/v2/customerBranchLocations/DEMO001$"),
            payload=[
                {
                    "branchCode": "AMDEN",
                    "jobAccounts": [{"jobAccountNumber": "78", "extra": True}],
                    "somethingNew": 1,
                }
            ],
        )
        m.get(_url("/customers/validate/"), payload={"validIndicator": True})
        m.post(_url("/orders/List$"), payload={"orders": [{"orderId": 5, "new": "x"}]})
        async with make_client() as client:
            (branch,) = await client.branches.for_customer("DEMO001")
            valid = await client.customers.validate("DEMO001")
            (order,) = await client.orders.list(po_number="P1")
    assert branch.job_accounts[0].job_account_number == 78
    assert valid.valid  # true as well as "Y"
    assert order.order_id == 5 and order.raw == {"orderId": 5, "new": "x"}


async def test_a_pdf_answer_that_is_not_a_pdf_is_refused() -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(_url("/invoices/X-1/pdf$"), body=b'{"error": "no"}')
        async with make_client() as client:
            with pytest.raises(SipsResponseError):
                await client.invoices.pdf("X-1")


async def test_integration_key_never_reaches_a_message_or_a_log(
    caplog: pytest.LogCaptureFixture, sleeps: FakeClock
) -> None:
    key = "INTEGRATION-KEY-SECRET-123"
    caplog.set_level(logging.DEBUG, logger="sips_async")
    with aioresponses() as m:
        mock_token(m)
        m.get(_url("/customers/validate/"), status=500, repeat=True)
        async with make_client(clock=sleeps) as client:
            with pytest.raises(SipsServerError) as info:
                await client.customers.validate("DEMO001", integration_key=key)
        (sent, *_) = [
            v for (meth, url), v in (m.requests or {}).items() if "validate" in str(url)
        ]
        assert sent[0].kwargs["params"]["integrationKey"] == key  # it was sent
    assert key not in str(info.value) and key not in repr(info.value)
    assert info.value.path == "/customers/validate/"
    assert key not in caplog.text
    assert "/customers/validate/" in caplog.text  # the calls were logged


async def test_the_client_sends_the_documented_body_by_default() -> None:
    with aioresponses() as m:
        mock_token(m)
        m.post(SUBMIT_URL, payload={"message": "Order Submitted"})
        async with make_client() as client:
            await client.orders.submit(make_order(ship_to=None))
        (sent,) = calls(m, "POST", SUBMIT_URL)
    body = msgspec.json.decode(sent.kwargs["data"])
    assert body["shipTo"]["name"] == "" and body["notes"] == ""
    assert body["orderLineItemDetails"][0]["customerItem"] == ""


def test_endpoints_need_their_placeholders() -> None:
    for name in ("customer", "order_templates", "customer_branch_locations"):
        with pytest.raises(SipsConfigError, match="customerCode"):
            Endpoints(**{name: "/customers/x"})
    with pytest.raises(SipsConfigError, match="branchCode"):
        Endpoints(active_branch_products="/branches/x")
    with pytest.raises(SipsConfigError, match="must start with '/'"):
        Endpoints(price="products/v2/price")


async def test_a_configured_path_is_used() -> None:
    endpoints = Endpoints(invoice_pdf="/invoices/v2/{invoiceNumber}/document")
    with aioresponses() as m:
        mock_token(m)
        m.get(_url("/invoices/v2/X-1/document$"), body=b"%PDF-1.4 tiny")
        client = SipsClient(
            client_id="id", client_secret="secret", base_url=BASE, endpoints=endpoints
        )
        async with client:
            assert await client.invoices.pdf("X-1") == b"%PDF-1.4 tiny"
