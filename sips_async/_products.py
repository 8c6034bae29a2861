"""``client.products``: customer-specific prices and the product catalog."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from ._resource import Resource, list_from_wire
from .errors import SipsValidationError
from .models import CatalogItem, LineItem, PriceItem, PriceLine

__all__ = ["ProductsResource"]


def _price_item(given: PriceItem | LineItem, index: int) -> dict[str, Any]:
    where = f"productList[{index}]"
    thing: object = given
    if isinstance(thing, LineItem):
        line = thing
        if line.product_id is None or line.quantity is None or not line.uom:
            raise SipsValidationError(
                "a line to price needs product_id, quantity and uom", field_path=where
            )
        options = [line.option] if line.option and line.option != "N/A" else []
        item = PriceItem(
            product_id=line.product_id,
            quantity=line.quantity,
            uom=line.uom,
            product_name=line.product_name or "",
            product_options=options,
        )
    elif isinstance(thing, PriceItem):
        item = thing
    else:
        raise SipsValidationError(
            f"expected a PriceItem or LineItem, got {type(thing).__name__}",
            field_path=where,
        )
    for name, value in (
        ("productId", item.product_id),
        ("quantity", item.quantity),
    ):
        number: object = value
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise SipsValidationError(
                f"{name} must be a positive whole number, got {value!r}",
                field_path=f"{where}.{name}",
            )
    return {
        "productId": item.product_id,
        "productName": item.product_name,
        "productOptions": list(item.product_options),
        "quantity": item.quantity,
        "uom": item.uom,
    }


class ProductsResource(Resource):
    """SIPS's Products section, reached as ``client.products``."""

    __slots__ = ()

    async def price(
        self,
        *,
        customer_code: str,
        branch_code: str,
        job_account_number: int,
        items: Sequence[PriceItem | LineItem],
        source_system: str = "",
        transaction_id: str | None = None,
        timeout: float | None = None,
    ) -> list[PriceLine]:
        """Customer-specific prices (``POST /products/v2/price``).

        A line whose ``price`` is 0 must be shown as "call branch", never $0
        (:attr:`PriceLine.display`); ``message_code`` other than 0 says why a
        line was not priced. SRS needs the numeric job account number of the
        customer's branch (from :meth:`BranchesResource.for_customer`).

        Raises:
            SipsValidationError: no items, a bad item, or a job account
                number that is not a positive integer.
        """
        if not customer_code or not branch_code:
            raise SipsValidationError(
                "customer_code and branch_code are required",
                field_path="customerCode" if not customer_code else "branchCode",
            )
        jan: object = job_account_number
        if isinstance(jan, bool) or not isinstance(jan, int) or jan < 1:
            raise SipsValidationError(
                "job_account_number must be the numeric job account from "
                f"customerBranchLocations, got {job_account_number!r}",
                field_path="jobAccountNumber",
            )
        given_items: object = items
        if isinstance(given_items, (str, bytes)) or not items:
            raise SipsValidationError(
                "items must list at least one product", field_path="productList"
            )
        body = {
            "sourceSystem": source_system,
            "customerCode": customer_code,
            "branchCode": branch_code,
            "transactionId": transaction_id or str(uuid.uuid4()),
            "jobAccountNumber": jan,
            "productList": [_price_item(item, i) for i, item in enumerate(items)],
        }
        doc = await self._post_json(self._endpoints.price, body, timeout=timeout)
        return list_from_wire(doc, PriceLine, "price", keys=("productList",))

    async def catalog(self, *, timeout: float | None = None) -> list[CatalogItem]:
        """The product catalog (``GET /products/v2/catalog``; cache it daily)."""
        doc = await self._get_json(self._endpoints.catalog, timeout=timeout)
        return list_from_wire(doc, CatalogItem, "catalog", keys=("products",))
