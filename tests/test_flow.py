"""SRS's documented order flow, walked with the SDK against the sandbox, and
the demo showing it."""

from __future__ import annotations

import io

import pytest

from sips_async import SipsClient, SipsValidationError, WebhookConfig
from sips_async._demo import run_demo
from sips_async._flow import order_flow, wait_and_invoice
from sips_async.cli import build_parser
from sips_async.sandbox import Sandbox, SandboxConfig

from ._sandbox_helpers import FAST_RETRY, SANDBOX_ID, SANDBOX_SECRET
from .factories import HOOK_SECRET

STEPS = ["validate", "branches", "active products", "price", "check", "enqueue"]


async def test_flow_places_a_checked_order_and_finds_its_invoice() -> None:
    async with (
        Sandbox(SandboxConfig(step_delay=0.002)) as sb,
        SipsClient(
            client_id=SANDBOX_ID,
            client_secret=SANDBOX_SECRET,
            base_url=sb.url,
            retry=FAST_RETRY,
            webhook=WebhookConfig(secret=HOOK_SECRET),
        ) as client,
    ):
        sb.webhook_url = client.webhook_url
        seen: list[str] = []
        result = await order_flow(
            client,
            account_number="DEMO002",
            source_system="TESTS",
            po_number="FLOW-1",
            quantity=3,
            on_step=lambda s: seen.append(s.name),
        )
        assert seen == STEPS
        assert result.problems == []
        order = result.order
        assert order is not None
        assert order.branch_code == "WSGRA" and order.job_account_number == 210
        (line,) = order.order_line_item_details or []
        assert (line.product_id, line.option, line.uom) == (75664, "Country Gray", "SQ")
        assert line.price == 131  # SRS's whole-dollar price carried over
        await wait_and_invoice(client, result, timeout=10)
        assert [s.name for s in result.steps] == [*STEPS, "webhooks", "invoice"]
        assert result.invoice is not None
        assert result.invoice.invoice_total == 3 * 131
        assert result.pending is not None
        assert sb.stats().transactions[result.pending.transaction_id] == 1
        assert sb.stats().dropped == {}


async def test_flow_stops_for_a_customer_who_may_not_order() -> None:
    async with (
        Sandbox() as sb,
        SipsClient(
            client_id=SANDBOX_ID, client_secret=SANDBOX_SECRET, base_url=sb.url
        ) as client,
    ):
        with pytest.raises(SipsValidationError) as info:
            await order_flow(
                client, account_number="HOLD001", source_system="T", po_number="P"
            )
        assert info.value.field_path == "accountNumber"
        assert sb.stats().orders == 0


async def test_demo_walks_the_documented_flow() -> None:
    args = build_parser().parse_args(
        ["demo", "--orders", "2", "--step-delay", "0.002", "--error-rate", "0"]
    )
    out = io.StringIO()
    assert await run_demo(args, out) == 0
    text = out.getvalue()
    for name in [*STEPS, "webhooks", "invoice"]:
        assert f"\n  {name:<16} " in text, name
    assert "validIndicator='Y'" in text and "job account 78" in text
    assert "DU Delivered" in text
