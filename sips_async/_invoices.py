"""``client.invoices``: invoices of delivered orders, their details and PDFs."""

from __future__ import annotations

import builtins
import datetime as dt
from typing import Any

from ._resource import Resource, date_param, from_wire, list_from_wire, segment
from .errors import SipsResponseError
from .models import InvoiceHeader, InvoiceSummary

__all__ = ["InvoicesResource"]


class InvoicesResource(Resource):
    """SIPS's Invoices section, reached as ``client.invoices``."""

    __slots__ = ()

    async def list(
        self,
        *,
        customer_code: str | None = None,
        start: dt.date | str | None = None,
        end: dt.date | str | None = None,
        branch_code: str | None = None,
        ship_to_sequence_number: int | str | None = None,
        order_number: int | None = None,
        limit: int | None = None,
        timeout: float | None = None,
    ) -> builtins.list[InvoiceSummary]:
        """Invoices in a date range (``POST /invoices/list``).

        Only the keys given are sent; SRS's example shows every one and
        ``shipToSequenceNumber`` as a string, so it is sent as one.
        """
        body: dict[str, Any] = {}
        for key, value in (
            ("branchCode", branch_code),
            ("customerCode", customer_code),
            (
                "shipToSequenceNumber",
                None
                if ship_to_sequence_number is None
                else str(ship_to_sequence_number),
            ),
            ("startInvoiceDate", date_param(start, "startInvoiceDate")),
            ("endInvoiceDate", date_param(end, "endInvoiceDate")),
            ("orderNumber", order_number),
            ("rowReturnLimit", limit),
        ):
            if value is not None:
                body[key] = value
        doc = await self._post_json(
            self._endpoints.invoices_list, body, timeout=timeout
        )
        return list_from_wire(
            doc, InvoiceSummary, "invoice list", keys=("invoiceList",)
        )

    async def get(
        self, invoice_number: str, *, timeout: float | None = None
    ) -> InvoiceHeader:
        """An invoice's header (``GET /invoices/{invoiceNumber}``).

        Raises:
            SipsNotFoundError: no such invoice.
        """
        number = segment(invoice_number, "invoiceNumber")
        doc = await self._get_json(
            self._endpoints.invoice.replace("{invoiceNumber}", number),
            timeout=timeout,
        )
        header = doc.get("invoiceHeader", doc) if isinstance(doc, dict) else doc
        return from_wire(header, InvoiceHeader, "invoice")

    async def pdf(self, invoice_number: str, *, timeout: float | None = None) -> bytes:
        """The invoice as PDF bytes (path not published by SRS: configurable).

        Raises:
            SipsNotFoundError: no such invoice.
            SipsResponseError: the answer is not a PDF.
        """
        number = segment(invoice_number, "invoiceNumber")
        body = await self._get(
            self._endpoints.invoice_pdf.replace("{invoiceNumber}", number),
            timeout=timeout,
        )
        if not body.startswith(b"%PDF-"):
            raise SipsResponseError(f"invoice {number}: the answer is not a PDF")
        return body
