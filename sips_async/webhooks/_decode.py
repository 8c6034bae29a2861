"""Decode stage of the webhook path: one SRS body in, one :class:`OrderUpdate` out.

The data path reads guard -> decode -> tracker: the guard has already let the
request in; what is decoded here is recorded by the tracker. A body that is not
an SRS event raises :class:`EventDecodeError` (answered with 400), never
anything else.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import msgspec

from ..models import OrderStatus, OrderUpdate, WebhookEvent

__all__ = ["EventDecodeError", "decode_event", "parse_event_time"]

_event_decoder: Final = msgspec.json.Decoder(WebhookEvent)


class EventDecodeError(ValueError):
    """A webhook body that is not an SRS event (answered with 400)."""


def _text(value: object) -> str | None:
    if type(value) is str:  # the usual case, first
        return value.strip() or None
    if value is None or type(value) is bool:
        return None
    text = str(value).strip()
    return text or None


def parse_event_time(text: str | None) -> dt.datetime | None:
    """Parse ``eventDateTime``; naive values are taken as UTC; junk is None."""
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text)  # SRS's usual form, as is
    except ValueError:
        when = None
    if when is None:
        try:
            when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


class _Plain(msgspec.Struct, rename="camel", gc=False):
    # The usual body: every field a string (or absent/null). Decoded first;
    # anything else (a numeric id, say) goes the lenient way (WebhookEvent).
    event_id: str | None = None
    event_type: str | None = None
    event_status: str | None = None
    event_date_time: str | None = None
    subscriber_reference_num: str | None = None
    subscriber_reference_num2: str | None = None
    subscriber_reference_num3: str | None = None
    error_code: str | None = None
    error_message: str | None = None


_plain_decoder: Final = msgspec.json.Decoder(_Plain)
_UTC: Final = dt.UTC
_now: Final = dt.datetime.now
_fromisoformat: Final = dt.datetime.fromisoformat


def decode_event(body: bytes, *, received_at: dt.datetime | None = None) -> OrderUpdate:
    """Decode and normalize one webhook body into an :class:`OrderUpdate`.

    Raises:
        EventDecodeError: not JSON, not an object, wrong field types, or no
            ``eventType``/``eventId``.
    """
    try:
        event = _plain_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return _decode_lenient(body, received_at)
    # One pass, no helper calls: this runs for every webhook. Strings are
    # stripped, empty ones are None (as _text does on the lenient path).
    v = event.event_type
    event_type = (v.strip() or None) if v else None
    v = event.event_id
    event_id = (v.strip() or None) if v else None
    if event_type is None or event_id is None:
        raise EventDecodeError("eventType and eventId are required")
    v = event.event_status
    status_text = (v.strip() or None) if v else None
    status: OrderStatus | str | None = None
    if status_text is not None:
        status = OrderStatus.parse(status_text)
    v = event.subscriber_reference_num3
    transaction_id = (v.strip() or None) if v else None
    v = event.subscriber_reference_num2
    order_id = (v.strip() or None) if v else None
    v = event.subscriber_reference_num
    po_number = (v.strip() or None) if v else None
    v = event.error_code
    error_code = (v.strip() or None) if v else None
    v = event.error_message
    error_message = (v.strip() or None) if v else None
    v = event.event_date_time
    occurred_at = None
    if v:
        try:
            # SRS's usual form is naive, taken as UTC: saying so in the text
            # is cheaper than replace() afterwards. Anything else (an offset,
            # Z, spaces) fails here and is read the general way.
            occurred_at = _fromisoformat(v + "+00:00")
        except ValueError:
            occurred_at = parse_event_time(v)
        else:
            if occurred_at.tzinfo is None:  # a date only: "+00:00" read as time
                occurred_at = occurred_at.replace(tzinfo=_UTC)
    return OrderUpdate(
        event_id=event_id,
        event_type=event_type.upper(),
        event_status=status_text,
        status=status,
        transaction_id=transaction_id,
        order_id=order_id,
        po_number=po_number,
        occurred_at=occurred_at,
        received_at=received_at or _now(_UTC),
        error_code=error_code,
        error_message=error_message,
        raw=body,
    )


def _decode_lenient(body: bytes, received_at: dt.datetime | None) -> OrderUpdate:
    # Ids as numbers, booleans, or a body that is no event at all.
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
