"""Shared set-up for the examples: the real SIPS from the environment, else the sandbox.

Set ``SIPS_BASE_URL``, ``SIPS_CLIENT_ID`` and ``SIPS_CLIENT_SECRET`` to talk to
SRS; leave them unset and every example starts the bundled sandbox instead, so
it runs offline with no arguments.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from sips_async import LineItem, OrderRequest, PoDetails, ShipTo
from sips_async.sandbox import Sandbox, SandboxConfig


@dataclass(frozen=True)
class Settings:
    """Where to reach SIPS and with which credentials."""

    base_url: str
    client_id: str
    client_secret: str
    sandbox: Sandbox | None


async def sips_settings(
    stack: contextlib.AsyncExitStack, *, step_delay: float = 0.05
) -> Settings:
    """SIPS from the environment, or a sandbox entered on ``stack``."""
    base_url = os.environ.get("SIPS_BASE_URL")
    if base_url:
        return Settings(
            base_url,
            os.environ["SIPS_CLIENT_ID"],
            os.environ["SIPS_CLIENT_SECRET"],
            None,
        )
    config = SandboxConfig(step_delay=step_delay)
    sandbox = await stack.enter_async_context(Sandbox(config))
    return Settings(sandbox.url, config.client_id, config.client_secret, sandbox)


def example_order(po_number: str = "EXAMPLE-0001") -> OrderRequest:
    """A complete order, as SRS's Submit Order V2 example has it."""
    return OrderRequest(
        source_system="EXAMPLES",
        customer_code="DEMO001",
        branch_code="BRRIV",
        job_account_number=78,
        account_number="DEMO001",
        ship_to=ShipTo(
            name="John",
            address_line1="1234 COUNTY LINE ROAD",
            city="ONTARIO",
            state="NY",
            zip_code="14519",
        ),
        po_details=PoDetails(po_number=po_number, order_type="WHSE"),
        order_line_item_details=[
            LineItem(
                product_id=75664,
                product_name="CertainTeed Presidential Solaris Shingles",
                option="Country Gray",
                quantity=1,
                uom="SQ",
            )
        ],
    )
