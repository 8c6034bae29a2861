"""Test helpers: post chosen SRS updates to a webhook receiver.

:class:`WebhookPusher` builds SRS-shaped webhook bodies (flat JSON,
``srs-api.md`` 4.3) and posts them like SRS would, so your tests can deliver
exactly the update, replay or out-of-order update they need::

    pusher = WebhookPusher(client.webhook_url)
    await pusher.send(transaction_id=txn, event_type="OA", status="Accepted")
    await pusher.replay()                       # the same delivery again
    await pusher.send_older(transaction_id=txn, status="Placed")

The pytest plugin (``sips_async.pytest_plugin``) exposes one as the
``sips_webhook`` fixture.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from typing import Any, Final

import aiohttp
import msgspec

from .webhooks._guard import SECRET_HEADER, sign_headers

__all__ = ["WebhookPusher", "event_json"]

_ids: Final = itertools.count(1)


def event_json(
    *,
    transaction_id: str | None,
    event_type: str = "OU",
    status: str | None = "Processed",
    event_id: str | None = None,
    order_id: str | None = None,
    po_number: str | None = None,
    occurred_at: dt.datetime | None = None,
    **extra: Any,
) -> bytes:
    """An SRS webhook body; ``extra`` adds fields verbatim (e.g. ``errorCode``)."""
    when = occurred_at or dt.datetime.now(dt.UTC)
    doc: dict[str, Any] = {
        "eventId": event_id or f"evt-{next(_ids)}",
        "eventType": event_type,
        "eventStatus": status,
        "eventDateTime": when.isoformat(timespec="milliseconds"),
    }
    if po_number is not None:
        doc["subscriberReferenceNum"] = po_number
    if order_id is not None:
        doc["subscriberReferenceNum2"] = order_id
    if transaction_id is not None:
        doc["subscriberReferenceNum3"] = transaction_id
    doc.update(extra)
    return msgspec.json.encode(doc)


class WebhookPusher:
    """Posts SRS-shaped updates to one receiver URL.

    Args:
        url: the receiver URL (``client.webhook_url``, secret segment included).
        secret: also send it in the ``X-SIPS-Webhook-Secret`` header.
        signing_secret: sign every post in the Standard Webhooks scheme.
        session: an ``aiohttp.ClientSession`` to use; one is made (and
            closed by :meth:`aclose`) otherwise.
        timeout: seconds one post may take (then ``TimeoutError``).
        receiver_loop: the event loop the receiver runs on, if known; a post
            from any other loop raises ``RuntimeError`` at once instead of
            waiting on a receiver that cannot answer.
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        signing_secret: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        receiver_loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._receiver_loop = receiver_loop
        self._secret = secret
        self._signing = signing_secret
        self._session = session
        self._owns = session is None
        self._last: bytes | None = None
        self._last_time: dt.datetime | None = None

    async def send(self, **fields: Any) -> int:
        """Post one update built by :func:`event_json`; return the HTTP status."""
        when = fields.setdefault("occurred_at", dt.datetime.now(dt.UTC))
        self._last_time = (
            when if self._last_time is None else max(self._last_time, when)
        )
        return await self.send_raw(event_json(**fields))

    async def replay(self) -> int:
        """Post the previous body again, byte for byte (an SRS replay)."""
        if self._last is None:
            raise RuntimeError("nothing sent yet")
        return await self.send_raw(self._last)

    async def send_older(self, **fields: Any) -> int:
        """Post an update dated before everything sent so far (out of order)."""
        newest = self._last_time or dt.datetime.now(dt.UTC)
        fields["occurred_at"] = newest - dt.timedelta(minutes=5)
        return await self.send_raw(event_json(**fields))

    async def send_raw(self, body: bytes, headers: dict[str, str] | None = None) -> int:
        """Post ``body`` as is; return the HTTP status.

        Raises:
            RuntimeError: the receiver's event loop is not this one.
            TimeoutError: no answer within ``timeout`` seconds.
        """
        loop = self._receiver_loop
        if loop is not None and loop is not asyncio.get_running_loop():
            raise RuntimeError(
                "the webhook receiver runs on another event loop than this "
                "test, so it cannot answer: give the test and the fixture the "
                "same loop scope (asyncio_default_test_loop_scope / "
                "@pytest.mark.asyncio(loop_scope=...))"
            )
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        sent = {"Content-Type": "application/json"}
        if self._secret is not None:
            sent[SECRET_HEADER] = self._secret
        if self._signing is not None:
            sent.update(sign_headers(self._signing, body))
        sent.update(headers or {})
        self._last = body
        async with self._session.post(self.url, data=body, headers=sent) as resp:
            await resp.read()
            return resp.status

    async def aclose(self) -> None:
        """Close the session if this pusher made it."""
        session, self._session = self._session, None
        if session is not None and self._owns:
            await session.close()
