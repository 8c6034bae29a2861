"""DESIGN.md's error table, row by row, against mocked SIPS answers."""

from __future__ import annotations

import aiohttp
import msgspec
import pytest
from aioresponses import aioresponses

from sips_async import (
    FieldsMissingError,
    OrderProcessingError,
    RetryConfig,
    SalesOrder,
    SipsAPIError,
    SipsAuthError,
    SipsConnectionError,
    SipsNotFoundError,
    SipsRateLimitError,
    SipsServerError,
    SipsTimeoutError,
    SipsValidationError,
)
from tests._mock import (
    ACCESS_TOKEN,
    SEED_401,
    SEED_404,
    SEED_ORDER,
    SUBMIT_URL,
    TOKEN_URL,
    FakeClock,
    bearer,
    calls,
    connector_error,
    count,
    make_client,
    mock_token,
    order_url,
    total_requests,
)
from tests.factories import make_order

URL = order_url(874)
#: Enough tries that a wrongly retried error is seen to be retried.
MANY = RetryConfig(max_tries=5)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock: retries here never wait for real."""
    return FakeClock()


# --------------------------------------------------------------------------
# 400 / FieldsMissingFromRequestBody
# --------------------------------------------------------------------------

#: The three error body shapes, each saying the same thing.
SHAPES_400 = {
    "envelope": (
        b'{"error": {"code": "INVALID_INPUT", "description": "bad branch",'
        b' "source": "/orders/874", "status_code": 400}}',
        "INVALID_INPUT",
        "bad branch",
        "/orders/874",
    ),
    "flat-code": (
        b'{"code": "INVALID_INPUT", "message": "bad branch"}',
        "INVALID_INPUT",
        "bad branch",
        None,
    ),
    "flat-errorCode": (
        b'{"errorCode": "INVALID_INPUT", "message": "bad branch"}',
        "INVALID_INPUT",
        "bad branch",
        None,
    ),
    "plain-text": (b"bad branch", None, "bad branch", None),
}


@pytest.mark.parametrize("shape", list(SHAPES_400))
async def test_400_is_validation_error_not_retried(
    shape: str, clock: FakeClock
) -> None:
    body, code, description, source = SHAPES_400[shape]
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=400, body=body, repeat=True)
        async with make_client(retry=MANY, clock=clock) as client:
            with pytest.raises(SipsValidationError) as info:
                await client.orders.get(874)
        assert count(m, "GET", URL) == 1
        assert count(m, "POST", TOKEN_URL) == 1
    err = info.value
    assert type(err) is SipsValidationError
    assert (err.status, err.code, err.description, err.source) == (
        400,
        code,
        description,
        source,
    )
    assert err.raw == body
    assert (err.method, err.path) == ("GET", "/orders/874")
    assert err.field_path is None


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            b'{"code": "FieldsMissingFromRequestBody", "message":'
            b' "Required fields missing: poDetails.poNumber, shipTo.zipCode"}',
            ("poDetails.poNumber", "shipTo.zipCode"),
        ),
        (
            b'{"error": {"code": "FieldsMissingFromRequestBody",'
            b' "description": "missing", "fields": ["branchCode", "notes"]}}',
            ("branchCode", "notes"),
        ),
        (
            b'{"errorCode": "FieldsMissingFromRequestBody", "message": "missing",'
            b' "missingFields": ["sourceSystem"]}',
            ("sourceSystem",),
        ),
        (
            b"FieldsMissingFromRequestBody: shipTo.city, shipTo.state",
            ("shipTo.city", "shipTo.state"),
        ),
    ],
    ids=["flat-message", "envelope-list", "flat-list", "plain-text"],
)
async def test_400_fields_missing_names_fields_not_retried(
    body: bytes, fields: tuple[str, ...], clock: FakeClock
) -> None:
    order = make_order()
    with aioresponses() as m:
        mock_token(m)
        m.post(SUBMIT_URL, status=400, body=body, repeat=True)
        async with make_client(
            retry=RetryConfig(max_tries=5, submit="always"), clock=clock
        ) as c:
            with pytest.raises(FieldsMissingError) as info:
                await c.orders.submit(order)
        assert count(m, "POST", SUBMIT_URL) == 1
    err = info.value
    assert err.status == 400
    assert err.code == "FieldsMissingFromRequestBody"
    assert err.fields == fields
    assert err.raw == body


# --------------------------------------------------------------------------
# 401
# --------------------------------------------------------------------------


async def test_401_refreshes_token_once_and_retries_once(clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m, "tok-1")
        mock_token(m, "tok-2")
        m.get(URL, status=401, body=SEED_401)
        m.get(URL, body=SEED_ORDER, repeat=True)
        async with make_client(retry=MANY, clock=clock) as client:
            order = await client.orders.get(874)
            assert count(m, "POST", TOKEN_URL) == 2
            await client.orders.get(874)  # the refreshed token is kept
        assert isinstance(order, SalesOrder)
        assert order.id == 874
        assert count(m, "POST", TOKEN_URL) == 2
        gets = calls(m, "GET", URL)
        assert [bearer(c) for c in gets] == [
            "Bearer tok-1",
            "Bearer tok-2",
            "Bearer tok-2",
        ]


async def test_401_then_401_raises_auth_error_after_one_refresh(
    clock: FakeClock,
) -> None:
    with aioresponses() as m:
        mock_token(m, "tok-1")
        mock_token(m, "tok-2")
        mock_token(m, "tok-3")
        m.get(URL, status=401, body=SEED_401, repeat=True)
        async with make_client(retry=MANY, clock=clock) as client:
            with pytest.raises(SipsAuthError) as info:
                await client.orders.get(874)
        assert count(m, "POST", TOKEN_URL) == 2
        assert [bearer(c) for c in calls(m, "GET", URL)] == [
            "Bearer tok-1",
            "Bearer tok-2",
        ]
    err = info.value
    assert err.status == 401
    assert err.code == "AUTHENTICATION_ERROR"
    assert err.description == "Invalid credential or token."
    assert err.source == "https://webservices.sourcehub.in/api/orders/874"
    assert err.raw == SEED_401


async def test_401_on_submit_is_resent_once_with_same_transaction_id(
    clock: FakeClock,
) -> None:
    order = make_order()
    with aioresponses() as m:
        mock_token(m, "tok-1")
        mock_token(m, "tok-2")
        m.post(SUBMIT_URL, status=401, body=SEED_401)
        m.post(SUBMIT_URL, payload={"message": "Order Submitted", "orderID": 7})
        async with make_client(
            retry=RetryConfig(submit="never"), clock=clock
        ) as client:
            result = await client.orders.submit(order)
        posts = calls(m, "POST", SUBMIT_URL)
        assert [bearer(c) for c in posts] == ["Bearer tok-1", "Bearer tok-2"]
        ids = {msgspec.json.decode(c.kwargs["data"])["transactionID"] for c in posts}
        assert ids == {order.transaction_id}
    assert result.order_id == "7"


async def test_token_endpoint_refusal_is_auth_error_not_retried(
    clock: FakeClock,
) -> None:
    with aioresponses() as m:
        m.post(TOKEN_URL, status=401, body=b'{"error": "invalid_client"}', repeat=True)
        async with make_client(retry=MANY, clock=clock) as client:
            with pytest.raises(SipsAuthError) as info:
                await client.orders.get(874)
        assert count(m, "POST", TOKEN_URL) == 1
        assert count(m, "GET", URL) == 0
    assert info.value.status == 401
    assert info.value.code == "invalid_client"


# --------------------------------------------------------------------------
# 404
# --------------------------------------------------------------------------


async def test_404_seed_body_is_not_found_not_retried(clock: FakeClock) -> None:
    url = order_url(17580)
    with aioresponses() as m:
        mock_token(m)
        m.get(url, status=404, body=SEED_404, repeat=True)
        async with make_client(retry=MANY, clock=clock) as client:
            with pytest.raises(SipsNotFoundError) as info:
                await client.orders.get(17580)
        assert count(m, "GET", url) == 1
    err = info.value
    assert err.status == 404
    assert err.code == "BAD_REQUEST_ERROR"
    assert err.description == "The id provided does not exist."
    assert err.source == "https://webservices.sourcehub.in/api/orders/17580"
    assert err.raw == SEED_404
    assert "The id provided does not exist." in str(err)


@pytest.mark.parametrize(
    ("body", "code", "description"),
    [
        (b'{"errorCode": "NOT_FOUND", "message": "no order"}', "NOT_FOUND", "no order"),
        (b"no such order", None, "no such order"),
        (b"", None, "HTTP 404"),
    ],
    ids=["flat", "plain-text", "empty"],
)
async def test_404_other_body_shapes(
    body: bytes, code: str | None, description: str, clock: FakeClock
) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=404, body=body, repeat=True)
        async with make_client(retry=MANY, clock=clock) as client:
            with pytest.raises(SipsNotFoundError) as info:
                await client.orders.get(874)
        assert count(m, "GET", URL) == 1
    assert (info.value.code, info.value.description) == (code, description)


# --------------------------------------------------------------------------
# 5xx, GeneralError, connection errors, timeouts
# --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("tries", [1, 3, 4])
async def test_5xx_retried_exactly_max_tries_then_server_error(
    status: int, tries: int, clock: FakeClock
) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=status, body=b"upstream trouble", repeat=True)
        async with make_client(
            retry=RetryConfig(max_tries=tries), clock=clock
        ) as client:
            with pytest.raises(SipsServerError) as info:
                await client.orders.get(874)
        assert count(m, "GET", URL) == tries
        assert count(m, "POST", TOKEN_URL) == 1
    assert len(clock.delays) == tries - 1
    assert info.value.status == status
    assert info.value.description == "upstream trouble"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_then_success_returns_result(status: int, clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=status)
        m.get(URL, status=status)
        m.get(URL, body=SEED_ORDER)
        async with make_client(retry=MANY, clock=clock) as client:
            order = await client.orders.get(874)
        assert count(m, "GET", URL) == 3
    assert order.order_no == "00865"


@pytest.mark.parametrize(
    ("status", "body", "source"),
    [
        (500, b'{"error": {"code": "GeneralError", "description": "oops"}}', None),
        (
            400,
            b'{"code": "GeneralError", "message": "oops", "source": "erp"}',
            "erp",
        ),
        (500, b'{"errorCode": "GeneralError", "message": "oops"}', None),
    ],
    ids=["envelope-500", "flat-400", "flat-errorCode"],
)
async def test_general_error_code_is_retried(
    status: int, body: bytes, source: str | None, clock: FakeClock
) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=status, body=body, repeat=True)
        async with make_client(retry=RetryConfig(max_tries=3), clock=clock) as client:
            with pytest.raises(SipsServerError) as info:
                await client.orders.get(874)
        assert count(m, "GET", URL) == 3
    err = info.value
    assert (err.status, err.code, err.description, err.source) == (
        status,
        "GeneralError",
        "oops",
        source,
    )


async def test_general_error_plain_text_is_retried(clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=500, body=b"GeneralError: try later", repeat=True)
        async with make_client(retry=RetryConfig(max_tries=2), clock=clock) as client:
            with pytest.raises(SipsServerError) as info:
                await client.orders.get(874)
        assert count(m, "GET", URL) == 2
    assert info.value.code == "GeneralError"
    assert info.value.description == "GeneralError: try later"


async def test_429_is_retried_then_rate_limit_error(clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=429, repeat=True)
        async with make_client(retry=RetryConfig(max_tries=3), clock=clock) as client:
            with pytest.raises(SipsRateLimitError):
                await client.orders.get(874)
        assert count(m, "GET", URL) == 3


async def test_token_endpoint_5xx_is_retried(clock: FakeClock) -> None:
    with aioresponses() as m:
        m.post(TOKEN_URL, status=502)
        mock_token(m)
        m.get(URL, body=SEED_ORDER)
        async with make_client(retry=RetryConfig(max_tries=3), clock=clock) as client:
            await client.orders.get(874)
        assert count(m, "POST", TOKEN_URL) == 2
        assert [bearer(c) for c in calls(m, "GET", URL)] == [f"Bearer {ACCESS_TOKEN}"]


async def test_connection_refused_is_connection_error_retried(clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, exception=connector_error(), repeat=True)
        async with make_client(retry=RetryConfig(max_tries=3), clock=clock) as client:
            with pytest.raises(SipsConnectionError) as info:
                await client.orders.get(874)
        assert count(m, "GET", URL) == 3
    err = info.value
    assert type(err) is SipsConnectionError
    assert err.sent is False
    assert (err.method, err.path) == ("GET", "/orders/874")


async def test_server_disconnected_is_connection_error_retried(
    clock: FakeClock,
) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, exception=aiohttp.ServerDisconnectedError(), repeat=True)
        async with make_client(retry=RetryConfig(max_tries=4), clock=clock) as client:
            with pytest.raises(SipsConnectionError) as info:
                await client.orders.get(874)
        assert count(m, "GET", URL) == 4
    assert type(info.value) is SipsConnectionError
    assert info.value.sent is True


async def test_connection_error_then_success(clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, exception=aiohttp.ServerDisconnectedError())
        m.get(URL, exception=connector_error())
        m.get(URL, body=SEED_ORDER)
        async with make_client(retry=RetryConfig(max_tries=3), clock=clock) as client:
            order = await client.orders.get(874)
        assert count(m, "GET", URL) == 3
    assert order.id == 874


async def test_timeout_is_timeout_error_retried(clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, timeout=True, repeat=True)
        async with make_client(retry=RetryConfig(max_tries=3), clock=clock) as client:
            with pytest.raises(SipsTimeoutError) as info:
                await client.orders.get(874)
        assert count(m, "GET", URL) == 3
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, SipsConnectionError)


async def test_timeout_message_names_the_timeout_of_the_call(
    clock: FakeClock,
) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, timeout=True, repeat=True)
        async with make_client(retry=RetryConfig(max_tries=1), clock=clock) as client:
            with pytest.raises(SipsTimeoutError) as info:
                await client.orders.get(874, timeout=7.5)
    assert "no answer within 7.5 s" in str(info.value)
    assert info.value.sent is True


async def test_connect_timeout_is_timeout_error_not_sent(clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, exception=aiohttp.ConnectionTimeoutError(), repeat=True)
        async with make_client(retry=RetryConfig(max_tries=2), clock=clock) as client:
            with pytest.raises(SipsTimeoutError) as info:
                await client.orders.get(874)
        assert count(m, "GET", URL) == 2
    assert info.value.sent is False


# --------------------------------------------------------------------------
# Orders_GeneralError
# --------------------------------------------------------------------------

SHAPES_ORDERS = {
    "envelope": (
        b'{"error": {"code": "Orders_GeneralError", "description": "ERP refused",'
        b' "source": "OrderService", "status_code": 500}}',
        "ERP refused",
        "OrderService",
    ),
    "flat-code": (
        b'{"code": "Orders_GeneralError", "message": "ERP refused",'
        b' "source": "OrderService"}',
        "ERP refused",
        "OrderService",
    ),
    "flat-errorCode": (
        b'{"errorCode": "Orders_GeneralError", "message": "ERP refused"}',
        "ERP refused",
        None,
    ),
    "plain-text": (
        b"Orders_GeneralError: ERP refused",
        "Orders_GeneralError: ERP refused",
        None,
    ),
}


@pytest.mark.parametrize("status", [400, 500, 503])
@pytest.mark.parametrize("shape", list(SHAPES_ORDERS))
async def test_orders_general_error_never_retried(
    shape: str, status: int, clock: FakeClock
) -> None:
    body, description, source = SHAPES_ORDERS[shape]
    order = make_order()
    with aioresponses() as m:
        mock_token(m)
        m.post(SUBMIT_URL, status=status, body=body, repeat=True)
        retry = RetryConfig(max_tries=5, submit="always")
        async with make_client(retry=retry, clock=clock) as client:
            with pytest.raises(OrderProcessingError) as info:
                await client.orders.submit(order)
        assert count(m, "POST", SUBMIT_URL) == 1
    err = info.value
    assert err.status == status
    assert err.code == "Orders_GeneralError"
    assert err.description == description
    assert err.source == source
    assert err.raw == body
    assert (err.method, err.path) == ("POST", "/orders/v2/submit")
    assert "Orders_GeneralError" in str(err)


async def test_orders_general_error_on_get_not_retried(clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=500, body=b'{"code": "Orders_GeneralError"}', repeat=True)
        async with make_client(retry=MANY, clock=clock) as client:
            with pytest.raises(OrderProcessingError):
                await client.orders.get(874)
        assert count(m, "GET", URL) == 1


async def test_every_api_error_is_a_sips_api_error(clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=418, body=b"teapot")
        async with make_client(retry=MANY, clock=clock) as client:
            with pytest.raises(SipsAPIError) as info:
                await client.orders.get(874)
        assert total_requests(m) == 2
    assert type(info.value) is SipsAPIError
    assert info.value.status == 418
