"""The token: how it is asked for, cached, refreshed, and shared."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aioresponses import aioresponses

from sips_async import (
    RetryConfig,
    SipsAPIError,
    SipsAuthError,
    SipsClient,
    SipsNotFoundError,
    SipsServerError,
)
from sips_async._auth import TokenManager
from sips_async._transport import Response, Transport
from tests._mock import (
    BASE,
    SEED_ORDER,
    TOKEN_URL,
    FakeClock,
    bearer,
    calls,
    count,
    make_client,
    mock_token,
    order_url,
    serve,
)
from tests.factories import CLIENT_ID, CLIENT_SECRET

URL = order_url(874)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def auth(clock: FakeClock) -> AsyncIterator[TokenManager]:
    transport = Transport(
        base_url=BASE, session=None, max_connections=10, connect_timeout=5.0
    )
    await transport.open()
    try:
        yield TokenManager(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            path="/authentication/token",
            transport=transport,
            timeout=5.0,
            clock=clock,
        )
    finally:
        await transport.aclose()


async def test_token_request_is_form_with_client_credentials() -> None:
    with aioresponses() as m:
        mock_token(m, "tok-1")
        m.get(URL, body=SEED_ORDER)
        async with make_client() as client:
            await client.orders.get(874)
        (call,) = calls(m, "POST", TOKEN_URL)
        assert call.kwargs["data"] == {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_type": "client_credentials",
            "scope": "ALL",
        }
        assert "Authorization" not in call.kwargs["headers"]
        (get,) = calls(m, "GET", URL)
        assert bearer(get) == "Bearer tok-1"


async def test_token_request_on_the_wire_is_form_urlencoded() -> None:
    seen: list[tuple[str, dict[str, str]]] = []
    auths: list[str | None] = []

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        seen.append((request.content_type, {k: str(v) for k, v in form.items()}))
        return web.json_response({"access_token": "wire-tok", "expires_in": 60})

    async def order(request: web.Request) -> web.Response:
        auths.append(request.headers.get("Authorization"))
        return web.Response(body=SEED_ORDER, content_type="application/json")

    def routes(app: web.Application) -> None:
        app.router.add_post("/authentication/token", token)
        app.router.add_get("/orders/{id}", order)

    async with serve(routes) as base, make_client(base_url=base) as client:
        await client.orders.get(874)
    assert seen == [
        (
            "application/x-www-form-urlencoded",
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "grant_type": "client_credentials",
                "scope": "ALL",
            },
        )
    ]
    assert auths == ["Bearer wire-tok"]


async def test_token_is_cached_between_calls() -> None:
    with aioresponses() as m:
        mock_token(m, "tok-1")
        mock_token(m, "tok-2")
        m.get(URL, body=SEED_ORDER, repeat=True)
        async with make_client() as client:
            for _ in range(5):
                await client.orders.get(874)
        assert count(m, "POST", TOKEN_URL) == 1
        assert {bearer(c) for c in calls(m, "GET", URL)} == {"Bearer tok-1"}


@pytest.mark.parametrize(
    ("expires_in", "refresh_after"),
    [
        (3600, 3300.0),  # 300 s early
        ("3600", 3300.0),  # a numeric string, as the schema says
        (600, 540.0),  # 10 % early when that is less than 300 s
        ("600", 540.0),
        (" 86400 ", 86100.0),
        (None, 3300.0),  # missing: 1 hour assumed
        ("soon", 3300.0),  # unreadable: 1 hour assumed
        (0, 3300.0),
    ],
)
async def test_token_refreshed_before_expiry(
    auth: TokenManager,
    clock: FakeClock,
    expires_in: int | str | None,
    refresh_after: float,
) -> None:
    start = clock.now
    with aioresponses() as m:
        mock_token(m, "tok-1", expires_in=expires_in)
        mock_token(m, "tok-2", expires_in=expires_in)
        assert await auth.token() == "tok-1"
        clock.now = start + refresh_after - 0.001
        assert await auth.token() == "tok-1"
        assert count(m, "POST", TOKEN_URL) == 1
        clock.now = start + refresh_after
        assert await auth.token() == "tok-2"
        assert count(m, "POST", TOKEN_URL) == 2


async def test_invalidate_drops_only_the_refused_token(
    auth: TokenManager,
) -> None:
    with aioresponses() as m:
        mock_token(m, "tok-1")
        mock_token(m, "tok-2")
        assert await auth.token() == "tok-1"
        auth.invalidate("some-older-token")
        assert await auth.token() == "tok-1"
        auth.invalidate("tok-1")
        assert await auth.token() == "tok-2"
        assert count(m, "POST", TOKEN_URL) == 2


async def test_client_refreshes_expired_token_before_calling() -> None:
    clock = FakeClock()
    with aioresponses() as m:
        mock_token(m, "tok-1", expires_in="120")
        mock_token(m, "tok-2", expires_in="120")
        m.get(URL, body=SEED_ORDER, repeat=True)
        async with make_client(clock=clock) as client:
            await client.orders.get(874)
            clock.now += 107.9  # refresh due at 108 s (10 % early)
            await client.orders.get(874)
            clock.now += 0.1
            await client.orders.get(874)
        assert [bearer(c) for c in calls(m, "GET", URL)] == [
            "Bearer tok-1",
            "Bearer tok-1",
            "Bearer tok-2",
        ]
        assert count(m, "POST", TOKEN_URL) == 2


# --------------------------------------------------------------------------
# Single flight, on a real loopback server
# --------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["no-token", "expired-token"])
async def test_concurrent_calls_share_one_token_request(state: str) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()
    token_requests = 0
    order_auths: list[str | None] = []

    async def token(request: web.Request) -> web.Response:
        nonlocal token_requests
        token_requests += 1
        entered.set()
        await release.wait()
        return web.json_response(
            {"access_token": f"tok-{token_requests}", "expires_in": "3600"}
        )

    async def order(request: web.Request) -> web.Response:
        order_auths.append(request.headers.get("Authorization"))
        return web.Response(body=SEED_ORDER, content_type="application/json")

    def routes(app: web.Application) -> None:
        app.router.add_post("/authentication/token", token)
        app.router.add_get("/orders/{id}", order)

    clock = FakeClock()
    async with serve(routes) as base:
        client = SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=base,
            max_connections=200,
            clock=clock,
        )
        async with client:
            expected = "Bearer tok-1"
            if state == "expired-token":
                release.set()
                await client.orders.get(1)
                release.clear()
                entered.clear()
                order_auths.clear()
                clock.now += 7200  # long expired
                expected = "Bearer tok-2"
            tasks = [asyncio.create_task(client.orders.get(i)) for i in range(100)]
            await entered.wait()
            # Every other call is now parked behind the one token request.
            assert not any(t.done() for t in tasks)
            release.set()
            orders = await asyncio.gather(*tasks)
    assert token_requests == (1 if state == "no-token" else 2)
    assert len(orders) == 100
    assert order_auths == [expected] * 100


async def test_concurrent_callers_share_one_failed_token_request() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()
    token_requests = 0

    async def token(request: web.Request) -> web.Response:
        nonlocal token_requests
        token_requests += 1
        entered.set()
        await release.wait()
        return web.json_response({"code": "GeneralError"}, status=500)

    def routes(app: web.Application) -> None:
        app.router.add_post("/authentication/token", token)

    async with serve(routes) as base:
        client = SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=base,
            retry=RetryConfig(max_tries=1),
        )
        async with client:
            tasks = [asyncio.create_task(client.orders.get(i)) for i in range(100)]
            await entered.wait()
            release.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
    # One failed token request answers all 100 callers, not one each.
    assert token_requests == 1
    assert all(isinstance(r, SipsServerError) for r in results)


# --------------------------------------------------------------------------
# What mutation testing of _auth.py found unpinned
# --------------------------------------------------------------------------

TOKEN_401 = (
    b'{"error": {"code": "AUTHENTICATION_ERROR", "description": "Invalid client.",'
    b' "source": "https://srs.test/authentication/token"}}'
)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, SipsAuthError),
        (401, SipsAuthError),
        (403, SipsAuthError),
        (404, SipsNotFoundError),
        (500, SipsServerError),
    ],
)
async def test_token_endpoint_errors_name_the_request(
    clock: FakeClock, status: int, expected: type[SipsAPIError]
) -> None:
    with aioresponses() as m:
        m.post(TOKEN_URL, status=status, body=TOKEN_401, repeat=True)
        retry = RetryConfig(max_tries=1)
        async with make_client(clock=clock, retry=retry) as client:
            with pytest.raises(SipsAPIError) as info:
                await client.orders.get(874)
    exc = info.value
    assert type(exc) is expected
    assert (exc.status, exc.method, exc.path) == (
        status,
        "POST",
        "/authentication/token",
    )
    assert exc.code == "AUTHENTICATION_ERROR"
    assert exc.description == "Invalid client."
    assert exc.source == "https://srs.test/authentication/token"
    assert exc.raw == TOKEN_401
    assert str(exc) == (
        f"POST /authentication/token HTTP {status} AUTHENTICATION_ERROR: "
        "Invalid client."
    )


async def test_repr_says_whether_a_token_is_cached_and_never_shows_it(
    auth: TokenManager,
) -> None:
    assert repr(auth) == "<TokenManager empty>"
    with aioresponses() as m:
        mock_token(m, "tok-secret-1")
        await auth.token()
    assert repr(auth) == "<TokenManager cached>"
    auth.invalidate("tok-secret-1")
    assert repr(auth) == "<TokenManager empty>"


async def test_first_call_fetches_a_token_on_a_clock_below_zero() -> None:
    # The clock's origin is arbitrary: a negative reading must not pass for
    # "a token is cached and not due yet".
    clock = FakeClock(start=-10_000.0)
    with aioresponses() as m:
        mock_token(m, "tok-1")
        m.get(URL, body=SEED_ORDER)
        async with make_client(clock=clock) as client:
            await client.orders.get(874)
        assert count(m, "POST", TOKEN_URL) == 1
        assert [bearer(c) for c in calls(m, "GET", URL)] == ["Bearer tok-1"]


async def test_token_endpoint_401_is_an_auth_error_whatever_the_body_code(
    clock: FakeClock,
) -> None:
    # A 401 body saying GeneralError would otherwise be a retried server error.
    with aioresponses() as m:
        m.post(TOKEN_URL, status=401, body=b'{"code": "GeneralError"}', repeat=True)
        async with make_client(clock=clock, retry=RetryConfig(max_tries=3)) as client:
            with pytest.raises(SipsAuthError) as info:
                await client.orders.get(874)
        assert count(m, "POST", TOKEN_URL) == 1  # not retried
    assert info.value.code == "GeneralError"


class _HangingTransport(Transport):
    """A token endpoint that never answers; says when it was asked."""

    def __init__(self, asked: asyncio.Event) -> None:
        super().__init__(
            base_url=BASE, session=None, max_connections=1, connect_timeout=1.0
        )
        self._asked = asked

    async def send(self, *args: Any, **kwargs: Any) -> Response:
        self._asked.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def test_a_fetch_cancelled_at_loop_shutdown_raises_nothing_in_callbacks() -> None:
    # asyncio.run cancels the shared fetch on the way out; its done-callback
    # must not ask a cancelled future for its exception.
    errors: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        asked = asyncio.Event()
        auth = TokenManager(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            path="/authentication/token",
            transport=_HangingTransport(asked),
            timeout=5.0,
        )
        asyncio.get_running_loop().create_task(auth.token())
        await asked.wait()

    asyncio.run(main())
    assert errors == []
