"""The decode stage alone: one body in, one OrderUpdate (or a clear 400 reason) out.

The receiver answers a body that is not an SRS event with 400 and the reason
raised here, so each reason is pinned: it is what a sender sees.
"""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from sips_async import OrderStatus
from sips_async.webhooks._decode import EventDecodeError, decode_event, parse_event_time

from .factories import event_body


def test_every_reference_field_is_carried() -> None:
    update = decode_event(event_body(transaction_id="T-1", order_id="881", po="PO-9"))
    assert (update.transaction_id, update.order_id, update.po_number) == (
        "T-1",
        "881",
        "PO-9",
    )


def test_received_at_defaults_to_now_in_utc() -> None:
    before = dt.datetime.now(dt.UTC)
    update = decode_event(event_body(transaction_id="T-1"))
    after = dt.datetime.now(dt.UTC)
    assert update.received_at.tzinfo is dt.UTC
    assert before <= update.received_at <= after


def test_received_at_given_is_kept() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert (
        decode_event(event_body(transaction_id="T-1"), received_at=when).received_at
        == when
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-20T14:03:11Z", dt.datetime(2026, 5, 20, 14, 3, 11, tzinfo=dt.UTC)),
        (" 2026-05-20T14:03:11Z ", dt.datetime(2026, 5, 20, 14, 3, 11, tzinfo=dt.UTC)),
        # Naive values are taken as UTC.
        ("2026-05-20T14:03:11", dt.datetime(2026, 5, 20, 14, 3, 11, tzinfo=dt.UTC)),
        # An offset is kept as given, not relabelled as UTC.
        (
            "2026-05-20T14:03:11+02:00",
            dt.datetime(2026, 5, 20, 12, 3, 11, tzinfo=dt.UTC),
        ),
    ],
)
def test_event_time_is_an_aware_instant(text: str, expected: dt.datetime) -> None:
    when = parse_event_time(text)
    assert when is not None
    assert when.tzinfo is not None
    assert when == expected


def test_an_offset_survives_in_the_value() -> None:
    when = parse_event_time("2026-05-20T14:03:11+02:00")
    assert when is not None
    assert when.utcoffset() == dt.timedelta(hours=2)


@pytest.mark.parametrize("text", [None, "", "yesterday", "2026-13-45T99:00:00"])
def test_unreadable_event_time_is_none(text: str | None) -> None:
    assert parse_event_time(text) is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not valid JSON"),
        (b'{"eventType": 5, "eventId": "1"}', "not an SRS event: "),
        (
            b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "body is nested too deeply",
        ),
        (b'{"eventType": "OA"}', "eventType and eventId are required"),
        (b'{"eventType": "  ", "eventId": "1"}', "eventType and eventId are required"),
    ],
)
def test_a_body_that_is_not_an_event_has_a_clear_reason(
    body: bytes, reason: str
) -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode_event(body)
    assert str(caught.value).startswith(reason)


_FIELDS = {
    "eventId": " 77 ",
    "eventType": " oa",
    "eventStatus": "  Shipment   Created ",
    "eventDateTime": " 2026-05-20T14:03:11Z ",
    "subscriberReferenceNum": " PO-7 ",
    "subscriberReferenceNum2": " 35818786",
    "subscriberReferenceNum3": "T-9 ",
    "errorCode": "   ",
    "errorMessage": " late ",
}


@pytest.mark.parametrize("lenient", [None, "eventId", "subscriberReferenceNum2"])
def test_the_string_fast_path_and_the_lenient_path_agree(lenient: str | None) -> None:
    # Most bodies take the all-strings decoder; a numeric id takes the
    # lenient one. Both must normalize every field the same way.
    when = dt.datetime(2026, 5, 21, tzinfo=dt.UTC)
    doc: dict[str, object] = dict(_FIELDS)
    if lenient is not None:
        doc[lenient] = int(str(doc[lenient]).strip())  # a number, not a string
    got = decode_event(msgspec.json.encode(doc), received_at=when)
    assert msgspec.structs.asdict(got) | {"raw": b""} == {
        "event_id": "77",
        "event_type": "OA",
        "event_status": "Shipment   Created",
        "status": OrderStatus.SHIPMENT_CREATED,
        "transaction_id": "T-9",
        "order_id": "35818786",
        "po_number": "PO-7",
        "occurred_at": dt.datetime(2026, 5, 20, 14, 3, 11, tzinfo=dt.UTC),
        "received_at": when,
        "error_code": None,
        "error_message": "late",
        "raw": b"",
        "source": "webhook",
    }


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-20T14:03:11",
        "2026-05-20T14:03",
        "2026-05-20",
        "2026-05-20 14:03:11.5",
        "2026-05-20T14:03:11Z",
        " 2026-05-20T14:03:11 ",
        "2026-05-20T14:03:11+02:00",
        "2026-05-20T14:03:11-05:00",
        "yesterday",
        "",
    ],
)
def test_the_decoder_reads_event_times_as_parse_event_time_does(text: str) -> None:
    # decode_event reads the usual (naive) form inline; every form must come
    # out as parse_event_time says, offsets kept.
    got = decode_event(event_body(transaction_id="T-1", when=text)).occurred_at
    expected = parse_event_time(text)
    assert got == expected
    if expected is not None:
        assert got is not None
        assert got.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("event_id", ["5", 5])  # the string path, the lenient one
def test_absent_fields_are_none_on_both_paths(event_id: str | int) -> None:
    body = msgspec.json.encode({"eventId": event_id, "eventType": "OU"})
    got = decode_event(body)
    assert (got.event_id, got.event_type) == ("5", "OU")
    assert (got.event_status, got.status, got.occurred_at) == (None, None, None)
    assert (got.transaction_id, got.order_id, got.po_number) == (None, None, None)
    assert (got.error_code, got.error_message) == (None, None)


@pytest.mark.parametrize(
    "doc",
    [
        {"eventId": "5"},
        {"eventType": "OA"},
        {"eventId": 5},
        {"eventType": "OA", "subscriberReferenceNum2": 7},
        {"eventId": " ", "eventType": "OA", "subscriberReferenceNum2": 7},
    ],
)
def test_each_of_event_type_and_event_id_is_required_on_both_paths(
    doc: dict[str, object],
) -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode_event(msgspec.json.encode(doc))
    assert str(caught.value) == "eventType and eventId are required"


def test_the_lenient_path_keeps_a_numeric_error_code_and_stamps_utc() -> None:
    body = msgspec.json.encode(
        {"eventId": 9, "eventType": "OA", "errorCode": 42, "eventStatus": "Failed"}
    )
    got = decode_event(body)
    assert (got.event_id, got.error_code, got.rejected) == ("9", "42", True)
    assert got.received_at.tzinfo is dt.UTC
