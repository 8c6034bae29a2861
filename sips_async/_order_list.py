"""The Order List request body (``POST /orders/List``, srs-api.md 3.3)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from ._resource import date_param
from .errors import SipsValidationError

__all__ = ["order_list_body"]


def _integer(value: object, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SipsValidationError(
            f"{key} must be a whole number, got {value!r}", field_path=key
        )
    return value


def order_list_body(
    *,
    po_number: str | None,
    customer_number: str | None,
    branch_code: str | None,
    order_id: int | None,
    ship_to_sequence_number: int | None,
    from_date: dt.date | str | None,
    to_date: dt.date | str | None,
    status: str | None,
    job_number: str | None,
    ship_to_address: str | None,
    include_invoices: bool | None,
    limit: int | None,
) -> bytes:
    """The JSON body with only the filters given, under SRS's keys.

    Raises:
        SipsValidationError: a date or number of the wrong form, or no
            filter at all (SRS would be asked for every order).
    """
    pairs: tuple[tuple[str, Any], ...] = (
        ("branchCode", branch_code),
        ("customerNumber", customer_number),
        (
            "shipToSequenceNumber",
            _integer(ship_to_sequence_number, "shipToSequenceNumber"),
        ),
        ("orderId", _integer(order_id, "orderId")),
        ("orderFromDate", date_param(from_date, "orderFromDate")),
        ("orderToDate", date_param(to_date, "orderToDate")),
        ("rowReturnLimit", _integer(limit, "rowReturnLimit")),
        ("orderStatus", status),
        ("PONumber", po_number),
        ("jobNumber", job_number),
        ("shipToAddress", ship_to_address),
        (
            "includeInvoices",
            None if include_invoices is None else ("Y" if include_invoices else "N"),
        ),
    )
    body = {key: value for key, value in pairs if value is not None and value != ""}
    if not body.keys() - {"rowReturnLimit", "includeInvoices"}:
        raise SipsValidationError(
            "give at least one filter (po_number, customer_number, dates...)",
            field_path="$",
        )
    return msgspec.json.encode(body)
