"""From credentials to a placed, checked order, using only the SDK.

SRS's documented flow (srs-api.md 3.0): validate the customer, find its
branch and numeric job account, read the branch's active products, price
them, build the order, check it against the branch's catalog, enqueue it,
await SRS's acknowledgement. The check matters: SRS answers "Order Queued"
for orders it then drops without a webhook (job account 1, a unit of measure
the product lacks...), so the bad order shown first is never sent.

Runs against the bundled sandbox unless SIPS_* variables are set (see
``_common.py``); for SRS also set SIPS_CUSTOMER, SIPS_INTEGRATION_KEY and
SIPS_SOURCE_SYSTEM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets

from _common import sips_settings

from sips_async import (
    LineItem,
    OrderCheckError,
    OrderRequest,
    PoDetails,
    PriceItem,
    ShipTo,
    SipsClient,
    WebhookConfig,
)


async def main() -> None:
    customer = os.environ.get("SIPS_CUSTOMER", "DEMO001")
    key = os.environ.get("SIPS_INTEGRATION_KEY", "DEMO001-KEY")
    source = os.environ.get("SIPS_SOURCE_SYSTEM", "EXAMPLES")
    async with contextlib.AsyncExitStack() as stack:
        sips = await sips_settings(stack)
        client = await stack.enter_async_context(
            SipsClient(
                client_id=sips.client_id,
                client_secret=sips.client_secret,
                base_url=sips.base_url,
                webhook=WebhookConfig(secret=secrets.token_urlsafe(24)),
            )
        )
        if sips.sandbox is not None:
            sips.sandbox.webhook_url = client.webhook_url  # SRS: register it once

        # 1. May this customer order?
        validation = await client.customers.validate(customer, integration_key=key)
        print(f"customer {customer}: valid={validation.valid}")
        if not validation.valid:
            raise SystemExit(f"SRS says {customer} may not order")

        # 2. Its branch and a real (numeric, never 1) job account.
        branches = await client.branches.for_customer(customer)
        branch, account = next(
            (b, j) for b in branches for j in b.job_accounts if j.job_account_number > 1
        )
        print(f"branch {branch.branch_code}, job account {account.job_account_number}")

        # 3. What the branch stocks: a product, its variant and unit of measure.
        products = await client.branches.active_products(branch.branch_code)
        product = products[0]
        variant = product.product_variant[0]
        uom = variant.default_uom or variant.uoms[0]
        print(f"product {product.product_id} {product.product_name}: {variant.option}")

        # 4. The customer's price (0 would read "call branch", never $0).
        (price,) = await client.products.price(
            customer_code=customer,
            branch_code=branch.branch_code,
            job_account_number=account.job_account_number,
            items=[PriceItem(product_id=product.product_id, quantity=10, uom=uom)],
            source_system=source,
        )
        print(f"price: {price.display} per {uom}")

        # 5. An order copied from SRS's own example would be dropped silently.
        careless = OrderRequest(
            source_system=source,
            customer_code=customer,
            branch_code=branch.branch_code,
            job_account_number=1,
            order_line_item_details=[
                LineItem(product_id=product.product_id, quantity=10, uom="EACH")
            ],
        )
        for problem in await client.orders.check(careless):
            print(f"check found: {problem.field}: {problem.message}")

        # 6. The real one, checked again by enqueue(check=True) before it leaves.
        order = OrderRequest(
            source_system=source,
            customer_code=customer,
            account_number=customer,
            branch_code=branch.branch_code,
            job_account_number=account.job_account_number,
            ship_to=ShipTo(
                name="Job site",
                address_line1="1234 COUNTY LINE ROAD",
                city="ONTARIO",
                state="NY",
                zip_code="14519",
            ),
            po_details=PoDetails(po_number="EXAMPLE-CHECKED-1", order_type="WHSE"),
            order_line_item_details=[
                LineItem(
                    product_id=product.product_id,
                    product_name=product.product_name,
                    option=variant.option,
                    quantity=10,
                    price=int(price.amount) if price.amount else None,
                    uom=uom,
                )
            ],
        )
        try:
            pending = await client.orders.enqueue(order, check=True)
        except OrderCheckError as exc:
            raise SystemExit(f"not sent: {exc}") from None
        print("queued:", pending.result.message if pending.result else "-")
        ack = await pending.wait(timeout=30)
        print("placed and acknowledged:", ack.event_type, ack.event_status)
        if sips.sandbox is not None:
            print("orders the sandbox dropped:", len(sips.sandbox.stats().dropped))


if __name__ == "__main__":
    asyncio.run(main())
