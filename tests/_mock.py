"""Helpers for the client tests: mocked SIPS URLs, a patched backoff sleep, a
loopback server.

Nothing here is a fixture, so test modules import plain names.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import types
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, Self

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiohttp.client_reqrep import ConnectionKey
from aioresponses import aioresponses
from aioresponses.core import RequestCall
from yarl import URL

from sips_async import RetryConfig, SipsClient, WebhookConfig
from sips_async._codec import SubmitBody
from tests.factories import CLIENT_ID, CLIENT_SECRET

BASE: Final = "https://sips.test"
TOKEN_URL: Final = f"{BASE}/authentication/token"
SUBMIT_URL: Final = f"{BASE}/orders/v2/submit"
ENQUEUE_URL: Final = f"{BASE}/orders/v2/submit/async"
ACCESS_TOKEN: Final = "eyJ-access-token-SECRET-value-42"

_real_sleep: Final = asyncio.sleep

#: The seed's sample success response of ``GET /orders/{id}``, verbatim.
SEED_ORDER: Final = b"""{
"data": {
"id": 874,
"order_no": "00865",
"item_total_amount": 65000,
"discount_amount": 0,
"return_total_amount": 0,
"billable_amount": 65000,
"date": "2021-06-08",
"products": [
{
"id": 257,
"sku": "sku98",
"name": "necklace",
"quantity": 1,
"price": 65000
}
],
"customer": {
"id": 3,
"contact_person_name": "test new",
"company_name": "testing",
"display_name": "testing",
"email": null,
"contactperson_number": "6396281335",
"company_phone": "6396281331",
"gst_treatment": "Registered GST",
"gstin": "7896GHYO2030256",
"customer_code": "1625035402",
"address": []
},
"salesagent": [],
"deliveryagent": {
"id": 1,
"first_name": "archa",
"last_name": "jha",
"phone_number": "7697602300"
},
"laststatus": {
"name": "Shipment Created"
},
"invoices": [
{
"id": 877,
"invoice_number": "INV-21-00001",
"date": "2021-06-08",
"due_date": "2021-06-08",
"total_amount": 65000,
"discount_amount": 0,
"returned_amount": 0,
"invoice_amount": 65000,
"cgst": 0,
"sgst": 0,
"igst": 0
}
]
}
}"""

#: The seed's sample 401 and 404 bodies, verbatim.
SEED_401: Final = b"""{
"error": {
"code": "AUTHENTICATION_ERROR",
"description": "Invalid credential or token.",
"source": "https://webservices.sourcehub.in/api/orders/874",
"status_code": 401
}
}"""
SEED_404: Final = b"""{
"error": {
"code": "BAD_REQUEST_ERROR",
"description": "The id provided does not exist.",
"source": "https://webservices.sourcehub.in/api/orders/17580",
"status_code": 404
}
}"""


def order_url(order_id: int | str) -> str:
    """The mocked URL of ``GET /orders/{id}``."""
    return f"{BASE}/orders/{order_id}"


def make_client(
    *,
    retry: RetryConfig | None = None,
    base_url: str = BASE,
    webhook: WebhookConfig | None = None,
    session: aiohttp.ClientSession | None = None,
    submit_body: SubmitBody = "documented",
) -> SipsClient:
    """A client with the test credentials (not opened)."""
    return SipsClient(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=base_url,
        retry=retry,
        webhook=webhook,
        session=session,
        submit_body=submit_body,
    )


def mock_token(
    m: aioresponses,
    token: str = ACCESS_TOKEN,
    *,
    expires_in: int | str | None = 3600,
    repeat: bool | int = False,
) -> None:
    """Register one (or ``repeat``) successful token answers."""
    payload: dict[str, Any] = {"token_type": "Bearer", "access_token": token}
    if expires_in is not None:
        payload["expires_in"] = expires_in
    m.post(TOKEN_URL, payload=payload, repeat=repeat)


def calls(m: aioresponses, method: str, url: str) -> list[RequestCall]:
    """Every request aioresponses saw for ``method url``."""
    assert m.requests is not None
    return list(m.requests.get((method, URL(url)), []))


def count(m: aioresponses, method: str, url: str) -> int:
    """How many requests aioresponses saw for ``method url``."""
    return len(calls(m, method, url))


def total_requests(m: aioresponses) -> int:
    """How many requests aioresponses saw in all."""
    assert m.requests is not None
    return sum(len(v) for v in m.requests.values())


def bearer(call: RequestCall) -> str:
    """The ``Authorization`` header of a recorded request."""
    headers: dict[str, str] = call.kwargs["headers"]
    return headers["Authorization"]


def sent_transaction_ids(m: aioresponses, url: str) -> list[str]:
    """The ``transactionID`` of every JSON body POSTed to ``url``."""
    ids = []
    for call in calls(m, "POST", url):
        doc = msgspec.json.decode(call.kwargs["data"])
        ids.append(doc["transactionID"])
    return ids


def connector_error(errno: int = 111) -> aiohttp.ClientConnectorError:
    """What aiohttp raises when the connection cannot be opened."""
    key = ConnectionKey("sips.test", 443, True, True, None, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(errno, "refused"))


class Sleeps:
    """Stands in for ``asyncio`` inside ``backoff._async``.

    ``sleep`` records each delay and advances a fake clock instead of
    waiting; ``backoff``'s elapsed-time check reads the same fake clock, so
    ``max_time`` is exercised without real waiting.
    """

    _EPOCH: Final = dt.datetime(2026, 1, 1)

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.clock = 0.0

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        self.clock += delay
        await _real_sleep(0)

    def now(self) -> dt.datetime:
        return self._EPOCH + dt.timedelta(seconds=self.clock)

    def monotonic(self) -> float:
        return self.clock

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> Self:
        sleeps = cls()
        monkeypatch.setattr("backoff._async.asyncio", sleeps)
        clock = types.SimpleNamespace(datetime=types.SimpleNamespace(now=sleeps.now))
        monkeypatch.setattr("backoff._async.datetime", clock)
        monkeypatch.setattr("sips_async._retry._clock", sleeps.monotonic)
        return sleeps


@contextlib.asynccontextmanager
async def serve(
    routes: Callable[[web.Application], None],
) -> AsyncIterator[str]:
    """Run an aiohttp app on 127.0.0.1, port 0; yield its base URL."""
    app = web.Application()
    routes(app)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
