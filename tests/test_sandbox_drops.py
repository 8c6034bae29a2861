"""The sandbox drops, without a webhook, exactly the queued orders SRS is
reported to drop (srs-api.md appendix U2 items 1-2), and counts them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from sips_async import (
    LineItem,
    OrderStatus,
    SipsClient,
    SipsNotFoundError,
    WebhookConfig,
)
from sips_async.sandbox import Sandbox, SandboxConfig

from ._sandbox_helpers import FAST_RETRY, SANDBOX_ID, SANDBOX_SECRET
from .factories import HOOK_SECRET, make_order


def _line(**overrides: Any) -> LineItem:
    fields: dict[str, Any] = {
        "product_id": 75664,
        "option": "Country Gray",
        "quantity": 2,
        "uom": "SQ",
    }
    fields.update(overrides)
    return LineItem(**fields)


#: Each trigger, and the reason the sandbox records for it.
DROPPED: dict[str, tuple[dict[str, Any], str]] = {
    "placeholder job account": (
        {"job_account_number": 1},
        "jobAccountNumber: placeholder job account",
    ),
    "inactive product": (
        {"order_line_item_details": [_line(product_id=12345, uom="RL")]},
        "orderLineItemDetails[0].productId: not active at BRRIV",
    ),
    "bad uom": (
        {"order_line_item_details": [_line(uom="EACH")]},
        "orderLineItemDetails[0].uom: not a unit of the variant",
    ),
    "missing option": (
        {"order_line_item_details": [_line(option="N/A")]},
        "orderLineItemDetails[0].option: missing or unknown, several variants",
    ),
}


@pytest.fixture
async def hooked() -> AsyncIterator[tuple[Sandbox, SipsClient]]:
    async with Sandbox(SandboxConfig(step_delay=0.002)) as sb:
        client = SipsClient(
            client_id=SANDBOX_ID,
            client_secret=SANDBOX_SECRET,
            base_url=sb.url,
            retry=FAST_RETRY,
            webhook=WebhookConfig(secret=HOOK_SECRET),
        )
        async with client:
            sb.webhook_url = client.webhook_url
            yield sb, client


@pytest.mark.parametrize("case", sorted(DROPPED))
async def test_dropped_orders_are_queued_then_lost_and_counted(
    hooked: tuple[Sandbox, SipsClient], case: str
) -> None:
    sb, client = hooked
    overrides, reason = DROPPED[case]
    bad = await client.orders.enqueue(make_order(**overrides))
    good = await client.orders.enqueue(make_order(po_details=None))
    assert bad.result is not None and bad.result.message == "Order Queued"
    await good.wait_for(OrderStatus.DELIVERED, timeout=10)
    await sb.wait_idle(timeout=10)
    stats = sb.stats()
    assert stats.dropped == {bad.transaction_id: [reason]}
    assert stats.transactions[bad.transaction_id] == 1
    assert stats.deliveries(bad.transaction_id) == []  # never a webhook
    assert stats.deliveries(good.transaction_id)
    assert bad.history == []
    with pytest.raises(SipsNotFoundError):
        await client.orders.get(str(bad.result.queue_id))


async def test_the_check_catches_every_dropped_order(
    hooked: tuple[Sandbox, SipsClient],
) -> None:
    _, client = hooked
    for overrides, _reason in DROPPED.values():
        assert await client.orders.check(make_order(**overrides)), overrides


async def test_drops_can_be_turned_off() -> None:
    async with Sandbox(SandboxConfig(step_delay=0.002, silent_drops=False)) as sb:
        async with SipsClient(
            client_id=SANDBOX_ID,
            client_secret=SANDBOX_SECRET,
            base_url=sb.url,
            webhook=WebhookConfig(secret=HOOK_SECRET),
        ) as client:
            sb.webhook_url = client.webhook_url
            pending = await client.orders.enqueue(make_order(job_account_number=1))
            await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
        assert sb.stats().dropped == {}


async def test_a_synchronous_submit_is_not_dropped(
    hooked: tuple[Sandbox, SipsClient],
) -> None:
    # The drops are reported for SRS's queue only.
    sb, client = hooked
    order = make_order(job_account_number=1)
    result = await client.orders.submit(order)
    assert result.message == "Order Submitted"
    assert sb.stats().dropped == {}
