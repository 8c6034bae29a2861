"""Encoding and decoding: orders out, answers in (webhook bodies: webhooks/_decode).

Encoders and decoders are module-level singletons (msgspec's advice). Error
bodies are parsed leniently because SRS documents no error shape: the seed's
``{"error": {...}}`` envelope, a flat ``{code, message}`` body and plain text
all work.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Final, Literal

import msgspec

from ._redact import redact, redact_bytes
from .errors import (
    FieldsMissingError,
    OrderProcessingError,
    SipsAPIError,
    SipsAuthError,
    SipsNotFoundError,
    SipsRateLimitError,
    SipsResponseError,
    SipsServerError,
    SipsValidationError,
)
from .models import (
    REQUIRED_FIELDS,
    REQUIRED_LINE_FIELDS,
    LineItem,
    OrderRequest,
    SalesOrder,
    SubmitResult,
    TokenResponse,
)
from .stores._base import RESERVED_PREFIXES

KNOWN_CODES: Final = (
    "FieldsMissingFromRequestBody",
    "Orders_GeneralError",
    "GeneralError",
)

_encoder: Final = msgspec.json.Encoder()
_order_decoder: Final = msgspec.json.Decoder(OrderRequest)
_token_decoder: Final = msgspec.json.Decoder(TokenResponse)
_any_decoder: Final = msgspec.json.Decoder()


class _SubmitWire(msgspec.Struct, frozen=True):
    # orderID is a string in SRS's example but a number elsewhere: take both.
    message: str | None = None
    transactionID: str | int | None = None
    orderID: str | int | None = None
    queueID: str | int | None = None


_submit_decoder: Final = msgspec.json.Decoder(_SubmitWire)


def _text(value: object) -> str | None:
    if type(value) is str:  # the common case first
        return value.strip() or None
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


# --------------------------------------------------------------------------
# Orders out
# --------------------------------------------------------------------------


_ORDER_ATTRS: Final = {
    f.encode_name: f.name for f in msgspec.structs.fields(OrderRequest)
}
_LINE_ATTRS: Final = {f.encode_name: f.name for f in msgspec.structs.fields(LineItem)}


#: ``(wire name, attribute)`` of the required fields, resolved once.
_REQUIRED: Final = tuple((name, _ORDER_ATTRS[name]) for name in REQUIRED_FIELDS)
_REQUIRED_LINE: Final = tuple(
    (name, _LINE_ATTRS[name]) for name in REQUIRED_LINE_FIELDS
)


# The body SRS's Submit V2 reference page documents (srs-api.md appendix
# U1.1): every key, in the order of SRS's example, "" where the caller gave
# nothing. Converting the order's builtins into these structs fills the
# defaults at C speed; ``price`` absent is the integer 0 ("no partner price").


class _Wire(msgspec.Struct, kw_only=True, rename="camel", gc=False):
    pass


class _ShipToWire(_Wire, kw_only=True):
    name: str = ""
    address_line1: str = ""
    address_line2: str = ""
    address_line3: str = ""
    city: str = ""
    state: str = ""
    zip_code: str = ""


class _PoDetailsWire(_Wire, kw_only=True):
    po_number: str = ""
    reference: str = ""
    job_number: str = ""
    order_date: str = ""
    expected_delivery_date: str = ""
    expected_delivery_time: str = ""
    order_type: str = ""
    shipping_method: str = ""


class _LineWire(_Wire, kw_only=True):
    product_id: int
    product_name: str = ""
    option: str = ""
    quantity: Annotated[int, msgspec.Meta(gt=0)]
    price: Annotated[int, msgspec.Meta(ge=0)] = 0
    customer_item: str = ""
    uom: str = ""


class _ContactAddressWire(_Wire, kw_only=True):
    address_line1: str = ""
    city: str = ""
    state: str = ""
    zip_code: str = ""


class _ContactWire(_Wire, kw_only=True):
    customer_contact_name: str = ""
    customer_contact_phone: str = ""
    customer_contact_email: str = ""
    customer_contact_address: _ContactAddressWire = msgspec.field(
        default_factory=_ContactAddressWire
    )
    additional_contact_emails: list[str] = []


class _OrderWire(_Wire, kw_only=True):
    source_system: str = ""
    customer_code: str = ""
    job_account_number: int
    branch_code: str = ""
    account_number: str = ""
    transaction_id: str = msgspec.field(name="transactionID")
    transaction_date: str
    notes: str = ""
    ship_to: _ShipToWire = msgspec.field(default_factory=_ShipToWire)
    po_details: _PoDetailsWire = msgspec.field(default_factory=_PoDetailsWire)
    order_line_item_details: list[_LineWire] = []
    customer_contact_info: _ContactWire = msgspec.field(default_factory=_ContactWire)


class _OrderWireWithShipTo(_OrderWire, kw_only=True):
    ship_to_sequence_number: int


# The same bodies with every required field required and non-empty
# (REQUIRED_FIELDS, REQUIRED_LINE_FIELDS): an order that converts into these
# has nothing missing, so the Python check of each field is skipped. Their
# fields, order and defaults are those of the structs above (the same bytes
# go out); an order that does not convert takes the checks that name every
# problem. tests/test_codec.py checks the two stay in step.
_Text = Annotated[str, msgspec.Meta(min_length=1)]


class _LineWireChecked(_LineWire, kw_only=True):
    uom: _Text  # productId and quantity are required already


class _OrderWireChecked(_OrderWire, kw_only=True):
    source_system: _Text
    customer_code: _Text
    branch_code: _Text
    # Narrower than the base's list[_LineWire] on purpose (mypy's list
    # invariance): a checked order holds checked lines.
    order_line_item_details: Annotated[  # type: ignore[assignment]
        list[_LineWireChecked], msgspec.Meta(min_length=1)
    ]


class _OrderWireCheckedWithShipTo(_OrderWireChecked, kw_only=True):
    ship_to_sequence_number: int


def documented_wire(doc: dict[str, Any]) -> msgspec.Struct:
    """The documented body for an order's builtins (every key, SRS's order).

    ``shipToSequenceNumber`` follows the documented keys when the order has
    one. The caller has checked the required fields.
    """
    if "shipToSequenceNumber" in doc:
        return msgspec.convert(doc, _OrderWireWithShipTo)
    return msgspec.convert(doc, _OrderWire)


#: Wire keys SRS declares as integers (appendix U1.1), top level and per line.
_INTEGER_KEYS: Final = frozenset({"jobAccountNumber", "shipToSequenceNumber"})
_INTEGER_LINE_KEYS: Final = frozenset({"productId", "quantity", "price"})

#: The two body styles ``encode_order`` can send.
SubmitBody = Literal["documented", "minimal"]


def missing_fields(
    order: OrderRequest, *, body: SubmitBody = "documented"
) -> tuple[str, ...]:
    """Return the wire path of every required field that is absent or empty.

    With ``body="minimal"`` (the integrator QA contract of srs-api.md 3.2)
    ``jobAccountNumber`` may be left out when ``shipToSequenceNumber`` is given.
    """
    # Inlined emptiness test (None, "" or []): this runs on every submit.
    missing = []
    for name, attr in _REQUIRED:
        value = getattr(order, attr)
        if value is None or (isinstance(value, (str, list)) and not value):
            if (
                body == "minimal"
                and name == "jobAccountNumber"
                and order.ship_to_sequence_number is not None
            ):
                continue
            missing.append(name)
    lines: object = order.order_line_item_details
    if isinstance(lines, list):
        for i, line in enumerate(lines):
            if not isinstance(line, LineItem):
                continue  # a wrong type: reported by the type check
            for name, attr in _REQUIRED_LINE:
                value = getattr(line, attr)
                if value is None or (isinstance(value, (str, list)) and not value):
                    missing.append(f"orderLineItemDetails[{i}].{name}")
    return tuple(missing)


def _whole(value: Any, path: str) -> Any:
    """An integer-declared value: ints pass, whole floats become ints.

    A fractional number is refused, never rounded: SRS cannot express it.
    """
    if isinstance(value, float) and not isinstance(value, bool):
        if not value.is_integer():
            raise SipsValidationError(
                f"{path.rsplit('.', 1)[-1]} must be a whole number: SRS declares it "
                f"an integer, so {value!r} cannot be sent (it is never rounded); "
                "use a unit of measure in which it is whole",
                field_path=path,
            )
        return int(value)
    return value


def _integers(doc: dict[str, Any]) -> None:
    """Make the integer-declared keys integers, or raise naming the field."""
    for key in _INTEGER_KEYS:
        if key in doc:
            doc[key] = _whole(doc[key], f"$.{key}")
    for i, line in enumerate(doc.get("orderLineItemDetails") or ()):
        if isinstance(line, dict):
            for key in _INTEGER_LINE_KEYS:
                if key in line:
                    line[key] = _whole(line[key], f"$.orderLineItemDetails[{i}].{key}")


def encode_order(order: OrderRequest, *, body: SubmitBody = "documented") -> bytes:
    """Check an order and return its JSON body; raise before anything is sent.

    Args:
        body: ``"documented"`` (default) sends every key of SRS's Submit V2
            reference page, ``""`` where the order has nothing (``price`` 0);
            ``"minimal"`` sends only the keys the order sets, as one
            integrator's QA contract does (srs-api.md 3.2).

    Raises:
        FieldsMissingError: required fields are missing (all are named).
        SipsValidationError: a field has the wrong type or value (a
            fractional ``quantity`` or ``price``, say); the error's
            ``field_path`` is the JSON path of the first bad field.
    """
    if not isinstance(order, OrderRequest):
        raise SipsValidationError(
            f"expected an OrderRequest, got {type(order).__name__}", field_path="$"
        )
    try:
        doc = msgspec.to_builtins(order)
    except (TypeError, msgspec.EncodeError) as exc:
        raise SipsValidationError(f"order cannot be encoded: {exc}") from None
    tid: object = order.transaction_id
    if not isinstance(tid, str) or not tid.strip() or tid != tid.strip():
        raise SipsValidationError(
            "transactionID must be a non-empty string without surrounding spaces "
            "(it is how SRS's webhooks find the order)",
            field_path="$.transactionID",
        )
    if tid.startswith(RESERVED_PREFIXES):
        raise reserved_transaction_id(tid)
    if body == "documented" and isinstance(doc, dict):
        # The common case in one conversion: every required field there and
        # every type right. Any failure is sorted out below, as before.
        try:
            checked = msgspec.convert(
                doc,
                _OrderWireCheckedWithShipTo
                if "shipToSequenceNumber" in doc
                else _OrderWireChecked,
            )
        except msgspec.ValidationError:
            pass
        else:
            return _encoder.encode(checked)
    return _encode_checked(order, doc, body)


def reserved_transaction_id(tid: str) -> SipsValidationError:
    """The error for a transactionID the store keeps for unclaimed updates."""
    return SipsValidationError(
        f"transactionID must not start with {' or '.join(map(repr, RESERVED_PREFIXES))}"
        " (the store files updates no order claims under such keys)",
        field_path="$.transactionID",
    )


def _encode_checked(order: OrderRequest, doc: Any, body: SubmitBody) -> bytes:
    """``encode_order`` past the fast path: find and name every problem."""
    missing = missing_fields(order, body=body)
    if missing:
        raise FieldsMissingError(
            "required fields missing: " + ", ".join(missing), fields=missing
        )
    if not isinstance(doc, dict):  # pragma: no cover - a Struct is a dict
        raise SipsValidationError("order cannot be encoded", field_path="$")
    # A conversion against the schema finds wrong types that Python let
    # through (and, documented, fills the keys the order leaves out). Only if
    # it fails are integer-declared floats looked at: a whole one becomes an
    # int, a fraction is refused by name.
    convert: Callable[[dict[str, Any]], object] = (
        documented_wire if body == "documented" else _check_minimal
    )
    try:
        wire = convert(doc)
    except msgspec.ValidationError:
        _integers(doc)
        try:
            wire = convert(doc)
        except msgspec.ValidationError as exc:
            path = _error_path(str(exc))
            raise SipsValidationError(str(exc), field_path=path) from None
    try:
        return _encoder.encode(wire)
    except (TypeError, msgspec.EncodeError) as exc:  # pragma: no cover
        raise SipsValidationError(f"order cannot be encoded: {exc}") from None


def _check_minimal(doc: dict[str, Any]) -> dict[str, Any]:
    msgspec.convert(doc, OrderRequest)
    return doc


def decode_order(data: bytes) -> OrderRequest:
    """Decode an order from JSON in SRS's wire form (used by the CLI)."""
    try:
        return _order_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise SipsValidationError(str(exc), field_path=_error_path(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise SipsValidationError(f"not valid JSON: {exc}", field_path="$") from None


def _error_path(message: str) -> str | None:
    match = re.search(r"at `([^`]*)`", message)
    return match.group(1) if match else None


# --------------------------------------------------------------------------
# Answers in
# --------------------------------------------------------------------------


def decode_submit_result(data: bytes, *, sent_id: str | None = None) -> SubmitResult:
    """Decode a submit answer; numbers and strings are both taken as ids.

    ``sent_id`` is the ``transactionID`` that was sent: when SRS echoes it,
    the result shares that string instead of holding a copy.
    """
    try:
        wire = _submit_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise SipsResponseError(f"unreadable submit answer: {exc}") from None
    # A result lives as long as its PendingOrder: share what repeats (the
    # message, the echoed transactionID, a queueID equal to the orderID).
    # _text inline for the usual strings (three calls fewer per answer).
    value = wire.transactionID
    transaction_id = (value.strip() or None) if type(value) is str else _text(value)
    value = wire.orderID
    order_id = (value.strip() or None) if type(value) is str else _text(value)
    value = wire.queueID
    queue_id = (
        (value.strip() or None)
        if type(value) is str
        else (None if value is None else _text(value))
    )
    return SubmitResult(
        message=sys.intern(wire.message) if wire.message else "",
        transaction_id=sent_id if transaction_id == sent_id else transaction_id,
        order_id=order_id,
        queue_id=order_id if queue_id == order_id else queue_id,
    )


def decode_token(data: bytes) -> TokenResponse:
    """Decode the token endpoint's answer."""
    try:
        return _token_decoder.decode(data)
    except msgspec.DecodeError:
        # Never echo the body: it holds the token.
        raise SipsResponseError("unreadable token answer") from None


# Objects the order-details document sends as [] when empty.
_OBJECT_KEYS: Final = frozenset(
    {
        "customer",
        "address",
        "area",
        "city",
        "state",
        "postalcode",
        "salesagent",
        "deliveryagent",
        "laststatus",
    }
)


def _empty_lists_to_none(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                None
                if key in _OBJECT_KEYS and value == []
                else _empty_lists_to_none(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_empty_lists_to_none(item) for item in node]
    return node


def decode_sales_order(data: bytes) -> SalesOrder:
    """Decode ``GET /orders/{id}``: unwrap ``data``, turn ``[]`` objects to None."""
    try:
        doc = _any_decoder.decode(data)
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
            raise SipsResponseError("order answer has no 'data' object")
        return msgspec.convert(_empty_lists_to_none(doc["data"]), SalesOrder)
    except msgspec.MsgspecError as exc:
        raise SipsResponseError(f"unreadable order answer: {exc}") from None


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    return max(0.0, seconds)


def _known_code(text: str) -> str | None:
    return next((code for code in KNOWN_CODES if code in text), None)


def _parse_error_body(body: bytes) -> tuple[str | None, str | None, str | None, Any]:
    """Return (code, description, source, extra) from any error body shape."""
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = _any_decoder.decode(body) if text else None
    except msgspec.DecodeError:
        doc = None
    if isinstance(doc, dict):
        inner = doc.get("error")
        if isinstance(inner, dict):  # the seed's envelope
            return (
                _text(inner.get("code") or inner.get("errorCode")),
                _text(inner.get("description") or inner.get("message")),
                _text(inner.get("source")),
                inner,
            )
        code = _text(doc.get("code") or doc.get("errorCode") or inner)
        description = _text(
            doc.get("message")
            or doc.get("description")
            or doc.get("errorMessage")
            or doc.get("error_description")
        )
        if code is None:
            code = _known_code(text)
        return code, description, _text(doc.get("source")), doc
    return _known_code(text), text[:500] or None, None, None


def _missing_from(description: str | None, extra: Any) -> tuple[str, ...]:
    if isinstance(extra, Mapping):
        for key in ("fields", "missingFields", "missing_fields"):
            value = extra.get(key)
            if isinstance(value, list):
                return tuple(str(v) for v in value)
    if description and ":" in description:
        tail = description.split(":", 1)[1]
        return tuple(part.strip() for part in tail.split(",") if part.strip())
    return ()


def error_from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    method: str,
    path: str,
    secrets: Iterable[str | None] = (),
) -> SipsAPIError:
    """Build the typed exception for an error answer, per DESIGN.md's table.

    ``secrets`` (the token sent, the client secret) are masked wherever the
    body echoes them, before anything is parsed out of it: no message,
    ``repr`` or attribute of the exception holds them.
    """
    secrets = tuple(secrets)
    body = redact_bytes(body, secrets)
    code, description, source, extra = _parse_error_body(body)
    if secrets:  # JSON escapes can hide a secret from the byte-level pass
        code, description, source = (
            None if text is None else redact(text, secrets)
            for text in (code, description, source)
        )
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "source": source,
        "raw": body,
        "method": method,
        "path": path,
        "retry_after": parse_retry_after(headers.get("Retry-After")),
    }
    text = description or f"HTTP {status}"
    if code == "FieldsMissingFromRequestBody":
        fields = tuple(redact(f, secrets) for f in _missing_from(description, extra))
        return FieldsMissingError(text, fields=fields, **kwargs)
    if code == "Orders_GeneralError":
        return OrderProcessingError(text, **kwargs)
    if code == "GeneralError":
        return SipsServerError(text, **kwargs)
    cls: type[SipsAPIError]
    if status in (400, 422):
        cls = SipsValidationError
    elif status in (401, 403):
        cls = SipsAuthError
    elif status == 404:
        cls = SipsNotFoundError
    elif status == 429:
        cls = SipsRateLimitError
    elif status >= 500:
        cls = SipsServerError
    else:
        cls = SipsAPIError
    return cls(text, **kwargs)


def encode(value: object) -> bytes:
    """JSON-encode any msgspec-supported value."""
    return _encoder.encode(value)
