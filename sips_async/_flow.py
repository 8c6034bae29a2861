"""SRS's documented order flow (srs-api.md 3.0), walked with the SDK alone.

validate customer -> the customer's branches and job accounts -> the
branch's active products -> price -> check -> enqueue; then, with a webhook
receiver, the updates up to delivery and the invoice. :func:`order_flow`
returns what it did at each step, so a demo or an example can show it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol, TextIO

from .errors import SipsError, SipsValidationError
from .models import (
    ActiveProduct,
    CustomerBranch,
    InvoiceHeader,
    JobAccount,
    LineItem,
    OrderProblem,
    OrderRequest,
    OrderStatus,
    PoDetails,
    PriceItem,
    PriceLine,
    ShipTo,
)

if TYPE_CHECKING:
    from ._client import SipsClient
    from ._pending import PendingOrder

__all__ = ["FlowResult", "FlowStep", "demo_flow", "order_flow", "wait_and_invoice"]

#: The placeholder SRS queues and then drops (srs-api.md appendix U2.1).
_PLACEHOLDER_JOB_ACCOUNT: Final = 1


@dataclass(frozen=True, slots=True)
class FlowStep:
    """One step of the flow: its name and what came of it, for a person."""

    name: str
    detail: str

    def __str__(self) -> str:
        return f"{self.name:<16} {self.detail}"


@dataclass(slots=True)
class FlowResult:
    """What :func:`order_flow` did.

    Attributes:
        steps: every step, in order.
        order: the order it built (``None`` if it stopped before).
        prices: SRS's price lines for it.
        problems: what :meth:`OrdersResource.check` found (empty: none).
        pending: the enqueued order (``None`` when not enqueued).
        invoice: the invoice, once :func:`wait_and_invoice` found it.
    """

    steps: list[FlowStep] = field(default_factory=list)
    order: OrderRequest | None = None
    prices: list[PriceLine] = field(default_factory=list)
    problems: list[OrderProblem] = field(default_factory=list)
    pending: PendingOrder | None = None
    invoice: InvoiceHeader | None = None


def _job_account(
    branches: list[CustomerBranch], branch_code: str | None
) -> tuple[CustomerBranch, JobAccount]:
    for branch in branches:
        if branch_code is not None and branch.branch_code != branch_code:
            continue
        for account in branch.job_accounts:
            if account.job_account_number > _PLACEHOLDER_JOB_ACCOUNT:
                return branch, account
    where = f"branch {branch_code}" if branch_code else "any branch"
    raise SipsValidationError(
        f"the customer has no job account at {where}: ask the SRS rep to "
        "provision one (job account 1 is a placeholder SRS drops)",
        field_path="jobAccountNumber",
    )


def _pick(products: list[ActiveProduct], product_id: int | None) -> ActiveProduct:
    for product in products:
        if product_id is None or product.product_id == product_id:
            return product
    raise SipsValidationError(
        f"product {product_id} is not active at this branch", field_path="productId"
    )


async def order_flow(
    client: SipsClient,
    *,
    account_number: str,
    source_system: str,
    po_number: str,
    integration_key: str | None = None,
    branch_code: str | None = None,
    product_id: int | None = None,
    quantity: int = 1,
    ship_to: ShipTo | None = None,
    enqueue: bool = True,
    on_step: Callable[[FlowStep], object] | None = None,
) -> FlowResult:
    """Walk SRS's order flow for one product and enqueue the checked order.

    Args:
        account_number: the customer (also its ``customerCode``).
        source_system: the partner id SRS assigned.
        po_number: the order's PO number.
        integration_key: the customer's RoofHub key, proof of consent.
        branch_code: the branch to order from (default: the first of the
            customer's branches with a real job account).
        product_id: the product (default: the branch's first active one);
            its first variant and that variant's default unit are ordered.
        quantity: whole units to order.
        enqueue: ``False`` stops after the check.
        on_step: called with each step as it completes (to print it).

    Returns:
        Every step and the order; ``pending`` is set when it was enqueued,
        which happens only if the check found no problem.

    Raises:
        SipsValidationError: the customer may not order, or has no job
            account, or the product is not active at the branch.
    """
    result = FlowResult()

    def step(name: str, detail: str) -> None:
        done = FlowStep(name, detail)
        result.steps.append(done)
        if on_step is not None:
            on_step(done)

    customer = await client.customers.validate(
        account_number, integration_key=integration_key
    )
    step(
        "validate",
        f"{account_number}: validIndicator={customer.valid_indicator!r} "
        f"({customer.customer_name or '-'})",
    )
    if not customer.valid:
        raise SipsValidationError(
            f"SRS says customer {account_number} may not order (validIndicator "
            f"{customer.valid_indicator!r})",
            field_path="accountNumber",
        )
    branches = await client.branches.for_customer(account_number)
    branch, account = _job_account(branches, branch_code)
    step(
        "branches",
        f"{len(branches)} branch(es); using {branch.branch_code} job account "
        f"{account.job_account_number} ({account.job_account_name or '-'})",
    )
    products = await client.branches.active_products(branch.branch_code)
    product = _pick(products, product_id)
    variant = product.product_variant[0] if product.product_variant else None
    uom = (variant.default_uom if variant else None) or "EA"
    option = (variant.option if variant else None) or "N/A"
    step(
        "active products",
        f"{len(products)} at {branch.branch_code}; ordering {product.product_id} "
        f"{product.product_name or ''} ({option}, {uom})".rstrip(),
    )
    prices = await client.products.price(
        customer_code=account_number,
        branch_code=branch.branch_code,
        job_account_number=account.job_account_number,
        items=[
            PriceItem(
                product_id=product.product_id,
                quantity=quantity,
                uom=uom,
                product_name=product.product_name or "",
                product_options=[] if option == "N/A" else [option],
            )
        ],
        source_system=source_system,
    )
    result.prices = prices
    line_price = prices[0] if prices else None
    step("price", f"{line_price.display} per {uom}" if line_price else "no price")
    # SRS's price is an integer on submit: send it only when it is whole.
    amount = line_price.amount if line_price else None
    price = int(amount) if amount is not None and float(amount).is_integer() else None
    order = OrderRequest(
        source_system=source_system,
        customer_code=account_number,
        account_number=account_number,
        branch_code=branch.branch_code,
        job_account_number=account.job_account_number,
        ship_to=ship_to,
        po_details=PoDetails(
            po_number=po_number,
            order_date=dt.date.today().isoformat(),
            order_type="WHSE",
            shipping_method="Ground Drop",
            expected_delivery_time="Anytime",
        ),
        order_line_item_details=[
            LineItem(
                product_id=product.product_id,
                product_name=product.product_name,
                option=option,
                quantity=quantity,
                price=price,
                uom=uom,
            )
        ],
    )
    result.order = order
    result.problems = await client.orders.check(order)
    step(
        "check",
        "no problems"
        if not result.problems
        else "; ".join(str(p) for p in result.problems),
    )
    if not enqueue or result.problems:
        return result
    pending = await client.orders.enqueue(order)
    result.pending = pending
    answer = pending.result
    step(
        "enqueue",
        f"{answer.message if answer else '-'}: transactionID {pending.transaction_id}",
    )
    return result


async def wait_and_invoice(
    client: SipsClient,
    result: FlowResult,
    *,
    timeout: float,
    on_step: Callable[[FlowStep], object] | None = None,
) -> FlowResult:
    """Follow an enqueued order's webhooks to delivery, then fetch its invoice.

    Needs a webhook receiver on ``client``.
    """

    def step(name: str, detail: str) -> None:
        done = FlowStep(name, detail)
        result.steps.append(done)
        if on_step is not None:
            on_step(done)

    pending = result.pending
    if pending is None or result.order is None:
        return result
    delivered = await pending.wait_for(OrderStatus.DELIVERED, timeout=timeout)
    seen = len(pending.history)
    step(
        "webhooks",
        f"{seen} updates, now {delivered.event_type} {delivered.event_status}",
    )
    order_id = delivered.order_id
    if not (order_id and order_id.isdigit()):
        step("invoice", f"SRS gave no order number ({order_id!r})")
        return result
    invoices = await client.invoices.list(
        customer_code=result.order.customer_code, order_number=int(order_id)
    )
    if invoices:
        result.invoice = await client.invoices.get(invoices[0].invoice_number)
        total = result.invoice.invoice_total
        step(
            "invoice",
            f"{result.invoice.invoice_number} total {total} "
            f"({result.invoice.payment_status})",
        )
    else:
        step("invoice", "none yet")
    return result


class Writer(Protocol):
    """Where :func:`demo_flow` prints (a text stream, or one that fits lines)."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


async def demo_flow(
    client: SipsClient, out: TextIO | Writer, *, timeout: float
) -> bool:
    """Walk the whole flow once on the sandbox's data set, printing each step.

    Returns whether the order was checked, enqueued, delivered and invoiced.
    """
    out.write("documented order flow (srs-api.md 3.0), one order:\n")

    def show(done: FlowStep) -> None:
        out.write(f"  {done}\n")
        out.flush()

    try:
        async with asyncio.timeout(timeout):
            result = await order_flow(
                client,
                account_number="DEMO001",
                integration_key="DEMO001-KEY",
                source_system="SIPSDEMO",
                po_number="DEMO-FLOW",
                quantity=30,
                on_step=show,
            )
            await wait_and_invoice(client, result, timeout=timeout, on_step=show)
    except (SipsError, TimeoutError) as exc:
        out.write(f"  flow failed: {type(exc).__name__}: {exc}\n")
        return False
    return result.invoice is not None
