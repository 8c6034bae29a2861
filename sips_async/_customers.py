"""``client.customers``: validate a customer, its details and order templates."""

from __future__ import annotations

import datetime as dt

from ._resource import Resource, from_wire, list_from_wire, segment
from .errors import SipsValidationError
from .models import CustomerDetails, CustomerValidation, OrderTemplate

__all__ = ["CustomersResource"]


class CustomersResource(Resource):
    """SIPS's Customers section, reached as ``client.customers``."""

    __slots__ = ()

    async def validate(
        self,
        account_number: str,
        *,
        integration_key: str | None = None,
        invoice_number: str | None = None,
        invoice_date: dt.date | str | None = None,
        billed_amount: float | str | None = None,
        timeout: float | None = None,
    ) -> CustomerValidation:
        """Ask SRS whether a customer may order (``GET /customers/validate/``).

        SRS's flow (srs-api.md 3.0) proceeds only when
        :attr:`~sips_async.models.CustomerValidation.valid` is true. The
        integration key or an invoice (number with date or amount) proves the
        customer's consent; the account number alone is accepted too. The
        key is sent in the query string and never logged.

        Raises:
            SipsValidationError: an empty account number, or SRS said 400.
            SipsNotFoundError: SRS answered 404.
        """
        account = str(account_number or "").strip()
        if not account:
            raise SipsValidationError(
                "account_number is required", field_path="accountNumber"
            )
        params = {"accountNumber": account}
        for key, value in (
            ("integrationKey", integration_key),
            ("invoiceNumber", invoice_number),
            ("invoiceDate", invoice_date),
            ("billedAmount", billed_amount),
        ):
            if value is not None and str(value).strip():
                params[key] = (
                    value.isoformat()
                    if isinstance(value, dt.date)
                    else str(value).strip()
                )
        doc = await self._get_json(
            self._endpoints.validate_customer, params=params, timeout=timeout
        )
        return from_wire(doc, CustomerValidation, "customer validation")

    async def get(
        self, customer_code: str, *, timeout: float | None = None
    ) -> CustomerDetails:
        """A customer's details (``GET /customers/{customerCode}``).

        Raises:
            SipsNotFoundError: no such customer.
        """
        code = segment(customer_code, "customerCode")
        doc = await self._get_json(
            self._endpoints.customer.replace("{customerCode}", code), timeout=timeout
        )
        return from_wire(doc, CustomerDetails, "customer details")

    async def order_templates(
        self, customer_code: str, *, timeout: float | None = None
    ) -> list[OrderTemplate]:
        """The customer's RoofHub order templates (``orderTemplates``)."""
        code = segment(customer_code, "customerCode")
        doc = await self._get_json(
            self._endpoints.order_templates.replace("{customerCode}", code),
            timeout=timeout,
        )
        return list_from_wire(doc, OrderTemplate, "order templates")
