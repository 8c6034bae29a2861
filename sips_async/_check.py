"""The pre-submit check: would SRS accept this order, or drop it silently?

SRS answers 200 "Order Queued" for orders it later drops without a webhook
(srs-api.md appendix U2 items 1-2): the placeholder ``jobAccountNumber`` 1, a
product not active at the branch, a unit of measure the product's variant
does not offer, a product with several variants sent without ``option``.
:func:`check_order` finds these against the branch's active products (from
the cache of :class:`~sips_async._branches.BranchesResource`), plus a
quantity that is not a positive whole number.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._branches import BranchesResource
from .errors import SipsNotFoundError
from .models import ActiveProduct, LineItem, OrderProblem, OrderRequest, ProductVariant

__all__ = ["check_order", "line_problems"]

#: Options that mean "no option": SRS's examples use "N/A".
_NO_OPTION = frozenset({"", "N/A", "NA", "NONE"})


def _job_account_problems(order: OrderRequest) -> list[OrderProblem]:
    jan: object = order.job_account_number
    if jan is None:
        if order.ship_to_sequence_number is not None:
            return []  # the minimal contract: the ship-to sequence stands in
        return [
            OrderProblem(
                field="jobAccountNumber",
                message="missing: every order needs the numeric job account "
                "number from client.branches.for_customer(customer_code)",
            )
        ]
    if isinstance(jan, bool) or not isinstance(jan, int) or jan <= 1:
        return [
            OrderProblem(
                field="jobAccountNumber",
                message=f"{jan!r} is SRS's placeholder, not a job account: SRS "
                "queues such an order, then drops it. Use a job account of the "
                "branch from client.branches.for_customer(customer_code), or ask "
                "the SRS rep to provision one",
            )
        ]
    return []


def _variant(
    product: ActiveProduct, option: str | None, where: str
) -> tuple[ProductVariant | None, list[OrderProblem]]:
    variants = product.product_variant
    wanted = (option or "").strip()
    if wanted.upper() in _NO_OPTION:
        if len(variants) > 1:
            names = ", ".join(v.option or "?" for v in variants)
            return None, [
                OrderProblem(
                    field=f"{where}.option",
                    message=f"product {product.product_id} comes in {len(variants)} "
                    f"variants; say which one ({names}): SRS drops the order "
                    "otherwise",
                    suggestion=variants[0].option,
                )
            ]
        return (variants[0] if variants else None), []
    for variant in variants:
        labels = (variant.color_name, variant.selected_option)
        if any(n and n.strip().casefold() == wanted.casefold() for n in labels):
            return variant, []
    if len(variants) <= 1 and not product.product_options:
        return (variants[0] if variants else None), []
    offered = [v.option for v in variants if v.option] or product.product_options
    return None, [
        OrderProblem(
            field=f"{where}.option",
            message=f"product {product.product_id} has no option {wanted!r}; "
            f"it comes in: {', '.join(offered)}",
            suggestion=offered[0] if offered else None,
        )
    ]


def line_problems(
    line: LineItem, index: int, products: dict[int, ActiveProduct], branch: str
) -> list[OrderProblem]:
    """The problems of one line against the branch's active products."""
    where = f"orderLineItemDetails[{index}]"
    problems: list[OrderProblem] = []
    quantity: object = line.quantity
    if (
        quantity is None
        or isinstance(quantity, bool)
        or not isinstance(quantity, (int, float))
        or quantity != int(quantity)
        or quantity < 1
    ):
        problems.append(
            OrderProblem(
                field=f"{where}.quantity",
                message=f"{quantity!r} is not a positive whole number: SRS's "
                "quantity is an integer; order in a unit of measure where it is whole",
            )
        )
    product = products.get(line.product_id) if line.product_id is not None else None
    if product is None:
        problems.append(
            OrderProblem(
                field=f"{where}.productId",
                message=f"product {line.product_id!r} is not active at branch "
                f"{branch}: SRS drops the order. Pick one from "
                f"client.branches.active_products({branch!r})",
            )
        )
        return problems
    variant, option_problems = _variant(product, line.option, where)
    problems.extend(option_problems)
    if variant is not None and variant.uoms:
        uom = (line.uom or "").strip()
        if uom not in variant.uoms:
            fix = variant.default_uom or variant.uoms[0]
            problems.append(
                OrderProblem(
                    field=f"{where}.uom",
                    message=f"{uom!r} is not a unit of measure of product "
                    f"{product.product_id}"
                    + (f" ({variant.option})" if variant.option else "")
                    + f": it is sold in {', '.join(variant.uoms)}; use {fix!r}",
                    suggestion=fix,
                )
            )
    return problems


async def check_order(
    order: OrderRequest, branches: BranchesResource
) -> list[OrderProblem]:
    """Every problem that would make SRS refuse or silently drop ``order``.

    An empty list means none was found. Reads the branch's active products
    (cached); a branch SRS does not know is itself a problem.
    """
    problems = _job_account_problems(order)
    branch = (order.branch_code or "").strip()
    lines: Sequence[LineItem] = order.order_line_item_details or ()
    if not lines:
        problems.append(
            OrderProblem(field="orderLineItemDetails", message="the order has no lines")
        )
    if not branch:
        problems.append(
            OrderProblem(field="branchCode", message="missing: which branch ships it")
        )
        return problems
    try:
        active = await branches.active_products(branch)
    except SipsNotFoundError:
        problems.append(
            OrderProblem(
                field="branchCode",
                message=f"SRS does not know branch {branch!r}; choose one from "
                "client.branches.for_customer(customer_code)",
            )
        )
        return problems
    products = {p.product_id: p for p in active}
    for i, line in enumerate(lines):
        problems.extend(line_problems(line, i, products, branch))
    return problems
