"""``OrderUpdate.error_message``: the rejection text users need reaches them.

Issue 11: no test asserted it, so dropping it from the decoded update
survived mutation testing. Real enqueue on a loopback fake SIPS, a real
webhook POST to the client's receiver, the text read from the exception.
"""

from __future__ import annotations

import aiohttp
import pytest

from sips_async import OrderRejectedError, SipsClient, WebhookConfig

from ._fake_sips import FakeSips, post
from .factories import CLIENT_ID, CLIENT_SECRET, HOOK_SECRET, event_body, make_order

REASON = "Branch 'NOWHERE' is closed for ordering; use BRRIV."


async def test_rejection_text_reaches_the_waiter(fake: FakeSips) -> None:
    async with (
        SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=fake.url,
            webhook=WebhookConfig(secret=HOOK_SECRET),
        ) as client,
        aiohttp.ClientSession() as session,
    ):
        order = make_order()
        pending = await client.orders.enqueue(order)
        assert client.webhook_url is not None
        body = event_body(
            transaction_id=order.transaction_id,
            order_id=fake.enqueued[-1].order_id,
            event_id="ev-rejected",
            status="Rejected",
            errorCode="Orders_GeneralError",
            errorMessage=REASON,
        )
        reply = await post(session, client.webhook_url, body)
        assert reply.status == 200
        with pytest.raises(OrderRejectedError) as info:
            await pending.wait(timeout=5)
    update = info.value.update
    assert update.rejected
    assert update.error_code == "Orders_GeneralError"
    assert update.error_message == REASON
    assert pending.history[-1].error_message == REASON
