"""What the request path builds once and reuses stays right (issue 14).

The transport keeps one ``aiohttp.ClientTimeout`` per ``timeout`` value and
the headers of the current token instead of building them per request; the
requester takes a cached token without awaiting. A reused object that goes
stale (the old token, another call's timeout) fails here.
"""

from __future__ import annotations

import aiohttp
from aioresponses import aioresponses

from sips_async import SipsClient
from sips_async._clock import SYSTEM_CLOCK
from sips_async._transport import _TIMEOUTS_KEPT
from tests._mock import (
    BASE,
    SEED_ORDER,
    SUBMIT_URL,
    FakeClock,
    bearer,
    calls,
    mock_token,
    order_url,
)
from tests.factories import CLIENT_ID, CLIENT_SECRET, make_order

_SUBMITTED = {"message": "Order Submitted", "orderID": "9", "queueID": None}


def _client(clock: FakeClock | None = None) -> SipsClient:
    return SipsClient(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=BASE,
        timeout=30.0,
        submit_timeout=45.0,
        connect_timeout=5.0,
        clock=clock or SYSTEM_CLOCK,
    )


async def test_each_call_gets_the_timeout_it_asked_for() -> None:
    # 1..19: more distinct values than the transport keeps, so its cache
    # starts afresh on the way and must still answer right.
    asked = [None, 2.5, *(float(t) for t in range(1, 20)), None, 2.5]
    with aioresponses() as m:
        mock_token(m)
        m.get(order_url(1), body=SEED_ORDER, repeat=True)
        m.post(SUBMIT_URL, payload=_SUBMITTED, repeat=True)
        async with _client() as client:
            for timeout in asked:
                await client.orders.get(1, timeout=timeout)
            await client.orders.submit(make_order())
            await client.orders.submit(make_order(), timeout=3.0)
            # Bounded: a caller's every distinct timeout is not kept forever.
            assert len(client._transport._timeouts) <= _TIMEOUTS_KEPT
        gets = [c.kwargs["timeout"] for c in calls(m, "GET", order_url(1))]
        posts = [c.kwargs["timeout"] for c in calls(m, "POST", SUBMIT_URL)]
    totals = [30.0 if t is None else t for t in asked]
    assert gets == [aiohttp.ClientTimeout(total=t, connect=min(5.0, t)) for t in totals]
    assert posts == [
        aiohttp.ClientTimeout(total=45.0, connect=5.0),
        aiohttp.ClientTimeout(total=3.0, connect=3.0),
    ]


async def test_a_new_token_replaces_the_reused_headers() -> None:
    clock = FakeClock()
    with aioresponses() as m:
        mock_token(m, "tok-1", expires_in=120)
        mock_token(m, "tok-2", expires_in=120)
        m.get(order_url(1), body=SEED_ORDER, repeat=True)
        m.post(SUBMIT_URL, payload=_SUBMITTED, repeat=True)
        async with _client(clock) as client:
            await client.orders.submit(make_order())
            await client.orders.get(1)
            clock.now += 120  # tok-1 is due: the next call fetches tok-2
            await client.orders.get(1)
            await client.orders.submit(make_order())
        posts = calls(m, "POST", SUBMIT_URL)
        gets = calls(m, "GET", order_url(1))
    assert [bearer(c) for c in posts] == ["Bearer tok-1", "Bearer tok-2"]
    assert [bearer(c) for c in gets] == ["Bearer tok-1", "Bearer tok-2"]
    assert all(c.kwargs["headers"]["Content-Type"] == "application/json" for c in posts)
    assert all("Content-Type" not in c.kwargs["headers"] for c in gets)
