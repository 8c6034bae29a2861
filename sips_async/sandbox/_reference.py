"""The sandbox's routes for the rest of SIPS: customers, branches, products,
invoices and Order List, all served from :mod:`._catalog` and the orders the
sandbox has recorded.

Shapes follow SRS's published examples where there are some (validate,
customer details, order templates, customer branch locations, price, invoice
list and details); where SRS publishes none (branch locations, catalog,
Order List's answer, the invoice PDF) they are this project's guesses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

import msgspec
from aiohttp import web

from .._codec import encode
from ..models import OrderStatus
from . import _catalog as catalog
from ._orders import OrderRecord

__all__ = ["ReferenceRoutes", "invoice_number", "minimal_pdf"]

_JSON: Final = "application/json"
_INVOICED: Final = frozenset({OrderStatus.DELIVERED, OrderStatus.INVOICE_GENERATED})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorFactory = Callable[[web.Request, int, str, str], web.Response]


def invoice_number(erp_id: int, shipment: int = 1) -> str:
    """SRS's invoice number form: 10-digit order number, '-', 3-digit shipment."""
    return f"{erp_id:010d}-{shipment:03d}"


def _pdf_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def minimal_pdf(lines: Iterable[str]) -> bytes:
    """A small valid one-page PDF showing ``lines`` (ASCII)."""
    ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        safe = line.encode("ascii", "replace").decode()
        ops.append(f"({_pdf_text(safe)}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _json(doc: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=encode(doc), content_type=_JSON)


def _line_total(record: OrderRecord) -> float:
    total = 0.0
    for line in record.order.order_line_item_details or ():
        price = line.price or 0
        if not price and line.product_id in catalog.PRODUCTS:
            price = catalog.PRODUCTS[line.product_id]["prices"].get(line.uom or "", 0)
        total += (line.quantity or 0) * price
    return round(total, 2)


class ReferenceRoutes:
    """The handlers; the sandbox gives its auth check, error shape and orders.

    Args:
        authorized: whether a request carries a valid token.
        error: builds an error answer in the seed's envelope.
        orders: the orders recorded so far.
    """

    def __init__(
        self,
        *,
        authorized: Callable[[web.Request], bool],
        error: ErrorFactory,
        orders: Callable[[], Iterable[OrderRecord]],
    ) -> None:
        self._authorized = authorized
        self._error = error
        self._orders = orders

    def register(self, app: web.Application) -> None:
        """Add every route to ``app`` (before ``/orders/{id}`` is fine: POST)."""
        add_get, add_post = app.router.add_get, app.router.add_post
        for path in ("/customers/validate/", "/customers/validate"):
            add_get(path, self._guard(self.validate))
        add_get("/customers/v2/orderTemplates/{code}", self._guard(self.templates))
        add_get("/customers/{code}", self._guard(self.customer))
        add_get("/branches/v2/branchLocations", self._guard(self.locations))
        add_get(
            "/branches/v2/customerBranchLocations/{code}",
            self._guard(self.customer_branches),
        )
        add_get("/branches/v2/activeBranchProducts/{code}", self._guard(self.products))
        add_post("/products/v2/price", self._guard(self.price))
        add_get("/products/v2/catalog", self._guard(self.catalog))
        add_post("/invoices/list", self._guard(self.invoice_list))
        add_get("/invoices/{number}/pdf", self._guard(self.invoice_pdf))
        add_get("/invoices/{number}", self._guard(self.invoice))
        for path in ("/orders/List", "/orders/list"):
            add_post(path, self._guard(self.order_list))

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not self._authorized(request):
                return self._error(
                    request, 401, "AUTHENTICATION_ERROR", "Invalid credential or token."
                )
            return await handler(request)

        return guarded

    def _not_found(self, request: web.Request, what: str) -> web.Response:
        return self._error(request, 404, "BAD_REQUEST_ERROR", f"{what} not found.")

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            doc = msgspec.json.decode(await request.read())
        except msgspec.DecodeError:
            doc = None
        if not isinstance(doc, dict):
            return self._error(
                request, 400, "BAD_REQUEST_ERROR", "The body must be a JSON object."
            )
        return doc

    # -- customers -----------------------------------------------------------

    async def validate(self, request: web.Request) -> web.Response:
        query = request.query
        account = query.get("accountNumber", "").strip()
        if not account:
            return self._error(
                request,
                400,
                "FieldsMissingFromRequestBody",
                "Required fields missing: accountNumber",
            )
        customer = catalog.CUSTOMERS.get(account.upper())
        key = query.get("integrationKey")
        valid = (
            customer is not None
            and customer["valid"]
            and (key is None or key == customer["integrationKey"])
        )
        if customer is None:
            return _json({"validIndicator": "N", "accountNumber": account})
        return _json(
            {
                "validIndicator": "Y" if valid else "N",
                "customerId": customer["customerId"],
                "accountNumber": account.upper(),
                "customerName": customer["customerName"],
                "homeBranchId": str(customer["homeBranchId"]),
                "customerAddress1": customer["address"],
                "customerAddress2": "",
                "customerAddress3": "",
                "customerCity": customer["city"],
                "customerState": customer["state"],
                "customerZipCode": customer["zipCode"],
                "customerPhone": customer["phone"],
            }
        )

    async def customer(self, request: web.Request) -> web.Response:
        code = request.match_info["code"].upper()
        c = catalog.CUSTOMERS.get(code)
        if c is None:
            return self._not_found(request, f"Customer {code}")
        return _json(
            {
                "customerId": c["customerId"],
                "customerKey": c["customerKey"],
                "customerCode": code,
                "customerName": c["customerName"],
                "address": {
                    "addressLine1": c["address"],
                    "city": c["city"],
                    "state": c["state"],
                    "zipCode": c["zipCode"],
                },
                "phone": c["phone"],
                "fax": c["fax"],
                "homeBranch": c["homeBranch"],
                "homeBranchId": c["homeBranchId"],
                "nonSaleableIndicator": "N" if c["valid"] else "Y",
            }
        )

    async def templates(self, request: web.Request) -> web.Response:
        code = request.match_info["code"].upper()
        if code not in catalog.CUSTOMERS:
            return self._not_found(request, f"Customer {code}")
        return _json(catalog.ORDER_TEMPLATES.get(code, []))

    # -- branches ------------------------------------------------------------

    async def locations(self, request: web.Request) -> web.Response:
        wanted = request.query.get("branchCode", "").strip().upper()
        return _json(
            [b for code, b in catalog.BRANCHES.items() if not wanted or code == wanted]
        )

    async def customer_branches(self, request: web.Request) -> web.Response:
        code = request.match_info["code"].upper()
        branches = catalog.CUSTOMER_BRANCHES.get(code)
        if branches is None:
            return self._not_found(request, f"Customer {code}")
        wanted = request.query.get("branchCode", "").strip().upper()
        return _json([b for b in branches if not wanted or b["branchCode"] == wanted])

    async def products(self, request: web.Request) -> web.Response:
        code = request.match_info["code"]
        products = catalog.branch_products(code)
        if products is None:
            return self._not_found(request, f"Branch {code.upper()}")
        return _json(products)

    # -- products ------------------------------------------------------------

    async def price(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        missing = [
            key
            for key in ("customerCode", "branchCode", "jobAccountNumber", "productList")
            if body.get(key) in (None, "", [])
        ]
        if missing:
            return self._error(
                request,
                400,
                "FieldsMissingFromRequestBody",
                "Required fields missing: " + ", ".join(missing),
            )
        jan = body["jobAccountNumber"]
        items = body["productList"]
        if isinstance(jan, bool) or not isinstance(jan, int):
            return self._error(
                request, 400, "BAD_REQUEST_ERROR", "jobAccountNumber must be numeric."
            )
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            return self._error(
                request, 400, "BAD_REQUEST_ERROR", "productList must be a list."
            )
        txn = str(body.get("transactionId") or "")
        branch = str(body["branchCode"])
        return _json(
            [
                catalog.price_line(i, branch_code=branch, transaction_id=txn)
                for i in items
            ]
        )

    async def catalog(self, request: web.Request) -> web.Response:
        return _json(
            [
                {
                    "productId": product_id,
                    "productName": p["productName"],
                    "itemCode": p["itemCode"],
                    "productVariant": p["productVariant"],
                }
                for product_id, p in catalog.PRODUCTS.items()
            ]
        )

    # -- invoices ------------------------------------------------------------

    def _invoices(self) -> list[dict[str, Any]]:
        found = list(catalog.INVOICES)
        for record in self._orders():
            if OrderStatus.parse(record.status) not in _INVOICED:
                continue
            order = record.order
            total = _line_total(record)
            found.append(
                {
                    "invoiceNumber": invoice_number(record.erp_id),
                    "orderNumber": record.erp_id,
                    "shipmentNumber": 1,
                    "shipToSequenceNumber": str(order.ship_to_sequence_number or 1),
                    "customerCode": order.customer_code,
                    "branchCode": order.branch_code,
                    "invoiceDate": record.created_at.date().isoformat() + "T00:00:00",
                    "invoiceSubTotal": total,
                    "invoiceCharges": 0,
                    "invoiceTax": 0,
                    "invoiceTotal": total,
                    "paymentStatus": "Open",
                    "SOTypeCode": "SO",
                    "PONumber": order.po_details.po_number if order.po_details else "",
                    "salesTypeCode": (
                        order.po_details.order_type if order.po_details else ""
                    )
                    or "WHSE",
                    "jobNumber": (
                        order.po_details.job_number if order.po_details else ""
                    )
                    or "",
                    "shipToAddress1": order.ship_to.address_line1
                    if order.ship_to
                    else "",
                    "shipToAddress2": "",
                    "shipToAddress3": "",
                }
            )
        return found

    async def invoice_list(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        try:
            start = dt.date.fromisoformat(
                str(body.get("startInvoiceDate") or "0001-01-01")
            )
            end = dt.date.fromisoformat(str(body.get("endInvoiceDate") or "9999-12-31"))
        except ValueError:
            return self._error(
                request, 400, "BAD_REQUEST_ERROR", "Invoice dates must be YYYY-MM-DD."
            )
        limit = body.get("rowReturnLimit")
        rows = []
        for inv in self._invoices():
            day = dt.date.fromisoformat(inv["invoiceDate"][:10])
            if not start <= day <= end:
                continue
            if body.get("customerCode") not in (None, "", inv["customerCode"]):
                continue
            if body.get("branchCode") not in (None, "", inv["branchCode"]):
                continue
            if body.get("orderNumber") not in (None, inv["orderNumber"]):
                continue
            rows.append(
                {
                    key: inv[key]
                    for key in (
                        "invoiceNumber",
                        "orderNumber",
                        "shipmentNumber",
                        "customerCode",
                        "invoiceDate",
                        "invoiceTotal",
                        "paymentStatus",
                        "PONumber",
                    )
                }
            )
        if isinstance(limit, int) and limit > 0:
            rows = rows[:limit]
        return _json({"invoiceList": rows})

    def _find_invoice(self, number: str) -> dict[str, Any] | None:
        return next((i for i in self._invoices() if i["invoiceNumber"] == number), None)

    async def invoice(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        found = self._find_invoice(number)
        if found is None:
            return self._not_found(request, f"Invoice {number}")
        header = {k: v for k, v in found.items() if k != "branchCode"}
        return _json({"invoiceHeader": header})

    async def invoice_pdf(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        found = self._find_invoice(number)
        if found is None:
            return self._not_found(request, f"Invoice {number}")
        pdf = minimal_pdf(
            [
                f"SRS Distribution - invoice {number}",
                f"Order {found['orderNumber']}  PO {found['PONumber']}",
                f"Customer {found['customerCode']}  dated {found['invoiceDate'][:10]}",
                f"Total {found['invoiceTotal']:.2f}  ({found['paymentStatus']})",
            ]
        )
        return web.Response(body=pdf, content_type="application/pdf")

    # -- orders --------------------------------------------------------------

    async def order_list(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        rows = []
        for record in self._orders():
            if not record.visible:
                continue  # rejected or dropped: SRS has no such order
            order = record.order
            po = order.po_details.po_number if order.po_details else None
            row = {
                "orderId": record.erp_id,
                "orderNumber": record.erp_id,
                "PONumber": po,
                "orderStatus": record.status or "Queued",
                "branchCode": order.branch_code,
                "customerNumber": order.customer_code,
                "transactionID": order.transaction_id,
                "orderDate": record.created_at.date().isoformat(),
                "invoices": (
                    [invoice_number(record.erp_id)]
                    if OrderStatus.parse(record.status) in _INVOICED
                    else []
                ),
            }
            if not _matches(body, row, record):
                continue
            if body.get("includeInvoices") != "Y":
                del row["invoices"]
            rows.append(row)
        limit = body.get("rowReturnLimit")
        if isinstance(limit, int) and limit > 0:
            rows = rows[:limit]
        return _json(rows)


def _matches(body: dict[str, Any], row: dict[str, Any], record: OrderRecord) -> bool:
    for key in ("PONumber", "branchCode", "customerNumber", "orderStatus"):
        wanted = body.get(key)
        if (
            wanted not in (None, "")
            and str(wanted).casefold() != str(row[key] or "").casefold()
        ):
            return False
    if body.get("orderId") not in (None, record.erp_id):
        return False
    day = record.created_at.date().isoformat()
    if str(body.get("orderFromDate") or "0001-01-01") > day:
        return False
    return not str(body.get("orderToDate") or "9999-12-31") < day
