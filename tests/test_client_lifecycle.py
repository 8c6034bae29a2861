"""SipsClient lifecycle: no I/O in __init__, open/close, borrowed sessions."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses

from sips_async import (
    SipsClient,
    SipsClientClosedError,
    SipsConfigError,
    WebhookConfig,
)
from tests._mock import (
    BASE,
    ENQUEUE_URL,
    SEED_ORDER,
    count,
    make_client,
    mock_token,
    order_url,
    serve,
    total_requests,
)
from tests.factories import CLIENT_ID, CLIENT_SECRET, HOOK_SECRET, make_order

URL = order_url(874)


def _closed(session: aiohttp.ClientSession) -> bool:
    return session.closed


def _is_open(client: SipsClient) -> bool:
    return client.is_open


def test_construction_needs_no_loop_and_does_no_io() -> None:
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    with aioresponses() as m:
        client = make_client(
            webhook=WebhookConfig(host="127.0.0.1", port=0, secret=HOOK_SECRET)
        )
        assert not client.is_open
        assert client.webhook_url is None  # nothing bound yet
        assert total_requests(m) == 0

        async def use() -> int:
            mock_token(m)
            m.get(URL, body=SEED_ORDER)
            async with client:
                assert client.is_open
                assert client.webhook_url is not None
                order = await client.orders.get(874)
            return order.id

        assert asyncio.run(use()) == 874
        assert total_requests(m) == 2
    assert not client.is_open


@pytest.mark.parametrize(
    "kwargs",
    [
        {"client_id": ""},
        {"client_secret": "  "},
        {"base_url": "sips.test"},
        {"timeout": 0},
        {"submit_timeout": -1},
        {"connect_timeout": 0},
        {"max_connections": 0},
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict[str, Any]) -> None:
    settings: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "base_url": BASE,
        **kwargs,
    }
    with pytest.raises(SipsConfigError):
        SipsClient(**settings)


async def test_async_with_opens_and_closes() -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, body=SEED_ORDER, repeat=True)
        client = make_client()
        async with client as entered:
            assert entered is client
            assert _is_open(client)
            await client.orders.get(874)
            session = client._transport._session
            assert session is not None
            assert not _closed(session)
        assert not client.is_open
        assert _closed(session)
        with pytest.raises(SipsClientClosedError):
            await client.orders.get(874)
        assert count(m, "GET", URL) == 1


async def test_aclose_is_idempotent() -> None:
    client = make_client()
    async with client:
        assert await client.open() is client  # opening twice is harmless
        session = client._transport._session
        await client.aclose()
        await client.aclose()
        assert not client.is_open
    # __aexit__ closed once more, harmlessly.
    assert not client.is_open
    assert session is not None
    assert _closed(session)


async def test_aclose_before_open_is_fine() -> None:
    client = make_client()
    await client.aclose()
    await client.aclose()
    assert not client.is_open


async def test_closed_client_cannot_be_used_or_reopened() -> None:
    with aioresponses() as m:
        client = make_client()
        async with client:
            pass
        with pytest.raises(SipsClientClosedError):
            await client.orders.get(874)
        with pytest.raises(SipsClientClosedError):
            await client.orders.submit(make_order())
        with pytest.raises(SipsClientClosedError):
            await client.orders.enqueue(make_order())
        with pytest.raises(SipsClientClosedError):
            await client.open()
        with pytest.raises(SipsClientClosedError):
            async with client:
                pass
        assert total_requests(m) == 0


async def test_unopened_client_refuses_calls() -> None:
    with aioresponses() as m:
        client = make_client()
        with pytest.raises(SipsClientClosedError):
            await client.orders.get(874)
        assert total_requests(m) == 0


async def test_caller_session_is_used_and_never_closed() -> None:
    seen: list[str | None] = []

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": "tok", "expires_in": 3600})

    async def order(request: web.Request) -> web.Response:
        seen.append(request.headers.get("X-Caller"))
        return web.Response(body=SEED_ORDER, content_type="application/json")

    def routes(app: web.Application) -> None:
        app.router.add_post("/authentication/token", token)
        app.router.add_get("/orders/{id}", order)

    async with (
        serve(routes) as base,
        aiohttp.ClientSession(headers={"X-Caller": "mine"}) as session,
    ):
        client = make_client(base_url=base, session=session)
        async with client:
            await client.orders.get(874)
        await client.aclose()
        assert not session.closed
        with pytest.raises(SipsClientClosedError):
            await client.orders.get(874)
        # The session still works for its owner.
        async with session.get(f"{base}/orders/1") as resp:
            assert resp.status == 200
    assert seen == ["mine", "mine"]


async def test_closing_wakes_no_receiver_when_none_configured() -> None:
    client = make_client()
    async with client:
        assert client.receiver is None
        assert client.webhook_url is None
    assert not client.is_open


async def test_pending_wait_without_webhook_is_config_error() -> None:
    order = make_order()
    with aioresponses() as m:
        mock_token(m)
        m.post(
            ENQUEUE_URL,
            payload={"message": "Order Queued", "queueID": "Q-1"},
        )
        async with make_client() as client:
            pending = await client.orders.enqueue(order)
            for wait in (pending.wait, (await client.orders.track("t-1")).wait):
                with pytest.raises(SipsConfigError) as info:
                    await wait(timeout=1)
                message = str(info.value)
                assert "receiver" in message
                assert "webhook=WebhookConfig" in message
            with pytest.raises(SipsConfigError, match="receiver"):
                await pending.wait_for("Delivered", timeout=1)
        assert count(m, "POST", ENQUEUE_URL) == 1


async def test_webhook_receiver_started_and_stopped_with_client() -> None:
    client = make_client(
        webhook=WebhookConfig(host="127.0.0.1", port=0, secret=HOOK_SECRET)
    )
    async with client:
        url = client.webhook_url
        assert url is not None
        async with aiohttp.ClientSession() as session, session.post(url) as resp:
            assert 400 <= resp.status < 500  # listening; an empty post is refused
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.post(url):
                pass
