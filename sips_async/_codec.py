"""Encoding and decoding: orders out, answers and webhook bodies in.

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
from collections.abc import Mapping
from typing import Any, Final, Literal

import msgspec

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
    OrderStatus,
    OrderUpdate,
    SalesOrder,
    SubmitResult,
    TokenResponse,
    WebhookEvent,
)

KNOWN_CODES: Final = (
    "FieldsMissingFromRequestBody",
    "Orders_GeneralError",
    "GeneralError",
)

_encoder: Final = msgspec.json.Encoder()
_order_decoder: Final = msgspec.json.Decoder(OrderRequest)
_token_decoder: Final = msgspec.json.Decoder(TokenResponse)
_event_decoder: Final = msgspec.json.Decoder(WebhookEvent)
_any_decoder: Final = msgspec.json.Decoder()


class _SubmitWire(msgspec.Struct, frozen=True):
    # orderID is a string in SRS's example but a number elsewhere: take both.
    message: str | None = None
    transactionID: str | int | None = None
    orderID: str | int | None = None
    queueID: str | int | None = None


_submit_decoder: Final = msgspec.json.Decoder(_SubmitWire)


def _text(value: object) -> str | None:
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


#: The body SRS's Submit V2 reference page documents (srs-api.md appendix
#: U1.1): every key, in the order of SRS's example, with what is sent when the
#: caller gave nothing ("" for strings). ``None`` marks the integers the
#: required-field check guarantees; ``price`` absent is sent as 0 (integer,
#: "no partner price").
_DOCUMENTED_LINE: Final[dict[str, Any]] = {
    "productId": None,
    "productName": "",
    "option": "",
    "quantity": None,
    "price": 0,
    "customerItem": "",
    "uom": "",
}
DOCUMENTED_BODY: Final[dict[str, Any]] = {
    "sourceSystem": "",
    "customerCode": "",
    "jobAccountNumber": None,
    "branchCode": "",
    "accountNumber": "",
    "transactionID": "",
    "transactionDate": "",
    "notes": "",
    "shipTo": {
        "name": "",
        "addressLine1": "",
        "addressLine2": "",
        "addressLine3": "",
        "city": "",
        "state": "",
        "zipCode": "",
    },
    "poDetails": {
        "poNumber": "",
        "reference": "",
        "jobNumber": "",
        "orderDate": "",
        "expectedDeliveryDate": "",
        "expectedDeliveryTime": "",
        "orderType": "",
        "shippingMethod": "",
    },
    "orderLineItemDetails": [_DOCUMENTED_LINE],
    "customerContactInfo": {
        "customerContactName": "",
        "customerContactPhone": "",
        "customerContactEmail": "",
        "customerContactAddress": {
            "addressLine1": "",
            "city": "",
            "state": "",
            "zipCode": "",
        },
        "additionalContactEmails": [],
    },
}
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


def _documented(given: dict[str, Any]) -> dict[str, Any]:
    """Every documented key, in SRS's order; extras the caller gave kept."""
    out: dict[str, Any] = {}
    for key, default in DOCUMENTED_BODY.items():
        value = given.get(key)
        if key == "orderLineItemDetails":
            out[key] = [_section(_DOCUMENTED_LINE, line) for line in value or ()]
        elif isinstance(default, dict):
            out[key] = _section(default, value)
        else:
            out[key] = default if value is None else value
    for key, value in given.items():
        if key not in out:
            out[key] = value
    return out


def _section(template: dict[str, Any], given: Any) -> dict[str, Any]:
    given = given if isinstance(given, dict) else {}
    out: dict[str, Any] = {}
    for key, default in template.items():
        value = given.get(key)
        if isinstance(default, dict):
            out[key] = _section(default, value)
        elif value is None:
            out[key] = list(default) if isinstance(default, list) else default
        else:
            out[key] = value
    for key, value in given.items():
        if key not in out:
            out[key] = value
    return out


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
    missing = missing_fields(order, body=body)
    if missing:
        raise FieldsMissingError(
            "required fields missing: " + ", ".join(missing), fields=missing
        )
    if not isinstance(doc, dict):  # pragma: no cover - a Struct is a dict
        raise SipsValidationError("order cannot be encoded", field_path="$")
    _integers(doc)
    # A conversion against the schema finds wrong types that Python let through.
    try:
        msgspec.convert(doc, OrderRequest)
    except msgspec.ValidationError as exc:
        raise SipsValidationError(str(exc), field_path=_error_path(str(exc))) from None
    if body == "documented":
        doc = _documented(doc)
    try:
        return _encoder.encode(doc)
    except (TypeError, msgspec.EncodeError) as exc:  # pragma: no cover
        raise SipsValidationError(f"order cannot be encoded: {exc}") from None


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
    transaction_id = _text(wire.transactionID)
    order_id = _text(wire.orderID)
    queue_id = _text(wire.queueID)
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
) -> SipsAPIError:
    """Build the typed exception for an error answer, per DESIGN.md's table."""
    code, description, source, extra = _parse_error_body(body)
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
        return FieldsMissingError(
            text, fields=_missing_from(description, extra), **kwargs
        )
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


# --------------------------------------------------------------------------
# Webhook bodies
# --------------------------------------------------------------------------


class EventDecodeError(ValueError):
    """A webhook body that is not an SRS event (answered with 400)."""


def parse_event_time(text: str | None) -> dt.datetime | None:
    """Parse ``eventDateTime``; naive values are taken as UTC; junk is None."""
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def decode_event(body: bytes, *, received_at: dt.datetime | None = None) -> OrderUpdate:
    """Decode and normalize one webhook body into an :class:`OrderUpdate`.

    Raises:
        EventDecodeError: not JSON, not an object, wrong field types, or no
            ``eventType``/``eventId``.
    """
    try:
        event = _event_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise EventDecodeError(f"not an SRS event: {exc}") from None
    except msgspec.DecodeError:
        raise EventDecodeError("body is not valid JSON") from None
    except RecursionError:  # msgspec's nesting limit
        raise EventDecodeError("body is nested too deeply") from None
    event_type = _text(event.event_type)
    event_id = _text(event.event_id)
    if event_type is None or event_id is None:
        raise EventDecodeError("eventType and eventId are required")
    status_text = _text(event.event_status)
    return OrderUpdate(
        event_id=event_id,
        event_type=event_type.upper(),
        event_status=status_text,
        status=OrderStatus.parse(status_text),
        transaction_id=_text(event.subscriber_reference_num3),
        order_id=_text(event.subscriber_reference_num2),
        po_number=_text(event.subscriber_reference_num),
        occurred_at=parse_event_time(event.event_date_time),
        received_at=received_at or dt.datetime.now(dt.UTC),
        error_code=_text(event.error_code),
        error_message=_text(event.error_message),
        raw=body,
    )


def encode(value: object) -> bytes:
    """JSON-encode any msgspec-supported value."""
    return _encoder.encode(value)
