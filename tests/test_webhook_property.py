"""Property tests: whatever is posted, the receiver never answers 5xx and
never resolves an order the input could not name.

Each test starts one guarded receiver (and one HTTP session) inside its own
``asyncio.Runner`` and runs every Hypothesis example on that loop, so no
function-scoped fixture is shared across examples. ``STATS`` counts the inputs
tried and the statuses seen per class of input; each test writes its lines to
the terminal (``-s`` not needed).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, Self

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from sips_async import SipsClient, WebhookConfig, WebhookReceiver
from sips_async.webhooks import SECRET_HEADER

from ._fake_sips import raw_http
from .factories import CLIENT_ID, CLIENT_SECRET, HOOK_SECRET

#: class of input -> status -> count, over the whole module run.
STATS: Final[defaultdict[str, Counter[int]]] = defaultdict(Counter)

SIGNING_KEY: Final = "property-signing-key-0123456789"
#: "#" is outside every generated alphabet, so no input can name this order.
UNREACHABLE: Final = "#unreachable#order#"
#: Orders the generators do name; every update routed to them must carry them.
REACHABLE: Final = ("txn-a", "txn-b", "7")

_SETTINGS: Final = settings(
    max_examples=250,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies --------------------------------------------------------------------

_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="#"),
    max_size=24,
)
_ints = st.integers(min_value=-(2**200), max_value=2**200)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
_json: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4)
    ),
    max_leaves=12,
)
_ID_FIELDS: Final = (
    "eventId",
    "subscriberReferenceNum",
    "subscriberReferenceNum2",
    "subscriberReferenceNum3",
    "errorCode",
)
_STR_FIELDS: Final = ("eventType", "eventStatus", "eventDateTime", "errorMessage")
_plausible: Final[dict[str, st.SearchStrategy[Any]]] = {
    "eventId": _text | st.integers(min_value=-(2**70), max_value=2**70),
    "eventType": st.sampled_from(["OA", "OU", "OC", "DU", "IU", "oa", "ZZ", " ", ""])
    | _text,
    "eventStatus": st.sampled_from(
        ["Accepted", "Rejected", "Delivered", "Placed", "en route", "Cancelled"]
    )
    | _text,
    "eventDateTime": st.sampled_from(
        ["2026-05-20T14:03:11", "2026-05-20T14:03:11Z", "2026-05-20", "yesterday"]
    )
    | _text,
    "subscriberReferenceNum": _text,
    "subscriberReferenceNum2": st.sampled_from(["35818786", "555"]) | _ints,
    "subscriberReferenceNum3": st.sampled_from(REACHABLE) | _text | _ints,
    "errorCode": st.sampled_from(["E042", ""]) | _ints,
    "errorMessage": _text,
}


def _merge(known: dict[str, Any], junk: dict[str, Any]) -> dict[str, Any]:
    return {**junk, **known}


def _events(required: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with plausible SRS fields (``required`` always present) and junk."""
    return st.builds(
        _merge,
        st.fixed_dictionaries(
            {key: _plausible[key] for key in required},
            optional={k: v for k, v in _plausible.items() if k not in required},
        ),
        st.dictionaries(_text, _json, max_size=3),
    )


def _spoil(pair: tuple[dict[str, Any], str], odd: Any) -> dict[str, Any]:
    doc, key = pair
    return {**doc, key: odd}


_event_like = _events(("eventType", "eventId"))
_documents: st.SearchStrategy[Any] = st.one_of(
    _event_like,  # mostly well formed
    st.builds(  # one known field of an odd type
        _spoil,
        st.tuples(_event_like, st.sampled_from(sorted(_plausible))),
        _json.filter(lambda v: not isinstance(v, str)),
    ),
    _events(("eventType",)),  # eventId usually missing
    _events(("eventId",)),  # eventType usually missing
    _json.filter(lambda v: not isinstance(v, dict)),  # not an object
)
_truncated: st.SearchStrategy[bytes] = st.builds(
    lambda doc, cut: json.dumps(doc).encode()[:cut],
    _event_like,
    st.integers(min_value=0, max_value=400),
)


def _deep(kind: str, depth: int) -> bytes:
    head = b'{"eventId":"1","eventType":"OA","subscriberReferenceNum3":"txn-a","x":'
    if kind == "arrays":
        return head + b"[" * depth + b"]" * depth + b"}"
    if kind == "objects":
        return head + b'{"a":' * depth + b"1" + b"}" * (depth + 1)
    return head + b"[" * depth  # never closed


_header_bytes = st.one_of(
    st.binary(max_size=64),
    st.lists(  # what an HTTP parser lets through: visible ASCII and high bytes
        st.integers(min_value=0x20, max_value=0x7E)
        | st.integers(min_value=0x80, max_value=0xFF),
        max_size=64,
    ).map(bytes),
).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b""))

# -- what the receiver should answer ----------------------------------------


def _present(value: object) -> bool:
    return (
        value is not None and not isinstance(value, bool) and bool(str(value).strip())
    )


def classify(document: Any) -> str:
    """The class of a JSON document, named after the answer it must get."""
    if not isinstance(document, dict):
        return "json-not-an-object"
    for key in _ID_FIELDS:
        value = document.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, str | int)
        ):
            return "object-odd-types"
    for key in _STR_FIELDS:
        value = document.get(key)
        if value is not None and not isinstance(value, str):
            return "object-odd-types"
    if not (_present(document.get("eventType")) and _present(document.get("eventId"))):
        return "object-no-eventType-or-eventId"
    return "object-event"


# -- harness ---------------------------------------------------------------------------


class Harness:
    """One receiver, one session and the orders being watched."""

    def __init__(self, receiver: WebhookReceiver, session: aiohttp.ClientSession):
        self.receiver = receiver
        self.session = session
        url = receiver.url
        assert url is not None
        self.base = url.removesuffix("/" + HOOK_SECRET)
        self.client = SipsClient(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, webhook=receiver
        )
        self.accepted = 0

    async def watch(self) -> Self:
        """Attach to the watched orders (their histories loaded)."""
        self.unreachable = await self.client.orders.track(UNREACHABLE)
        self.reachable = {txn: await self.client.orders.track(txn) for txn in REACHABLE}
        return self

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> int:
        sent = {"Content-Type": "application/json", SECRET_HEADER: HOOK_SECRET}
        sent.update(headers or {})
        async with self.session.post(self.base, data=body, headers=sent) as resp:
            await resp.read()
            if resp.status == 200:
                self.accepted += 1
            return resp.status

    async def raw(self, head: bytes, body: bytes) -> int:
        url = URL(self.base)
        assert url.host is not None and url.port is not None
        request = (
            b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            % url.path.encode()
            + head
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )
        status, _, _ = await raw_http(url.host, url.port, request)
        return status

    def check_waiters(self) -> None:
        assert self.unreachable.history == []
        for txn, pending in self.reachable.items():
            # An update may also arrive by SRS order id alone (linked earlier).
            assert all(u.transaction_id in (txn, None) for u in pending.history)
        assert self.receiver.tracker.received <= self.accepted


@contextmanager
def harness(
    config: WebhookConfig,
) -> Iterator[tuple[Harness, Callable[[Awaitable[int]], int]]]:
    """Start a receiver on a private loop; yield it and a ``run(coro)`` helper."""
    with asyncio.Runner() as runner:

        async def start() -> Harness:
            receiver = WebhookReceiver(config)
            await receiver.start()
            return await Harness(receiver, aiohttp.ClientSession()).watch()

        async def stop(h: Harness) -> None:
            await h.session.close()
            await h.receiver.aclose()

        async def wrap(step: Awaitable[int]) -> int:
            return await step

        def run(step: Awaitable[int]) -> int:
            return runner.run(wrap(step))

        h = runner.run(start())
        try:
            yield h, run
            h.check_waiters()
        finally:
            runner.run(stop(h))


def record(kind: str, status: int) -> None:
    STATS[kind][status] += 1
    assert status < 500, f"{kind}: answered {status}"


def report(capsys: pytest.CaptureFixture[str], *kinds: str) -> None:
    lines = []
    for kind in kinds:
        seen = STATS[kind]
        statuses = ", ".join(f"{s}x{n}" for s, n in sorted(seen.items()))
        lines.append(f"  {kind}: {sum(seen.values())} inputs -> {statuses}")
    with capsys.disabled():
        sys.stdout.write("\n[webhook property stats]\n" + "\n".join(lines) + "\n")


# -- properties ------------------------------------------------------------


def test_arbitrary_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    with harness(WebhookConfig(secret=HOOK_SECRET)) as (h, run):

        @_SETTINGS
        @given(body=st.binary(max_size=2048) | _truncated)
        def post_bytes(body: bytes) -> None:
            status = run(h.post(body))
            record("arbitrary-bytes", status)
            assert status in (200, 400)
            h.check_waiters()

        post_bytes()
    report(capsys, "arbitrary-bytes")


def test_arbitrary_json(capsys: pytest.CaptureFixture[str]) -> None:
    with harness(WebhookConfig(secret=HOOK_SECRET)) as (h, run):

        @settings(_SETTINGS, max_examples=600)
        @given(document=_documents)
        def post_json(document: Any) -> None:
            kind = classify(document)
            status = run(h.post(json.dumps(document).encode()))
            record(kind, status)
            assert status == (200 if kind == "object-event" else 400), kind
            h.check_waiters()

        post_json()
    report(
        capsys,
        "json-not-an-object",
        "object-no-eventType-or-eventId",
        "object-odd-types",
        "object-event",
    )


def test_deeply_nested_json(capsys: pytest.CaptureFixture[str]) -> None:
    with harness(WebhookConfig(secret=HOOK_SECRET)) as (h, run):

        @settings(_SETTINGS, max_examples=40)
        @given(
            kind=st.sampled_from(["arrays", "objects", "unclosed"]),
            depth=st.integers(min_value=1, max_value=9000),
        )
        def post_nested(kind: str, depth: int) -> None:
            status = run(h.post(_deep(kind, depth)))
            record("deeply-nested", status)
            assert status in (200, 400)
            if kind == "unclosed":
                assert status == 400
            h.check_waiters()

        post_nested()
    report(capsys, "deeply-nested")


def test_arbitrary_secret_header(capsys: pytest.CaptureFixture[str]) -> None:
    body = b'{"eventId":"1","eventType":"OA","subscriberReferenceNum3":"txn-a"}'
    with harness(WebhookConfig(secret=HOOK_SECRET)) as (h, run):

        @_SETTINGS
        @given(value=_header_bytes)
        def post_secret(value: bytes) -> None:
            head = SECRET_HEADER.encode() + b": " + value + b"\r\n"
            status = run(h.raw(head, body))
            record("secret-header-bytes", status)
            # 400 only when the HTTP parser itself refuses the header bytes.
            assert status in (400, 401)
            h.check_waiters()

        post_secret()
    assert h.reachable["txn-a"].history == []
    report(capsys, "secret-header-bytes")


def test_arbitrary_signature_headers(capsys: pytest.CaptureFixture[str]) -> None:
    body = b'{"eventId":"1","eventType":"OA","subscriberReferenceNum3":"txn-a"}'
    config = WebhookConfig(signing_secrets=(SIGNING_KEY,), tolerance=300)
    with harness(config) as (h, run):
        now = time.time()
        stamps = st.one_of(
            st.integers(min_value=-(10**30), max_value=10**30).map(str),
            st.integers(min_value=int(now) - 600, max_value=int(now) + 600).map(str),
            st.text(alphabet="0123456789+-_ .e\u0661", max_size=40),
            _header_bytes.map(lambda b: b.decode("latin-1")),
        )

        @_SETTINGS
        @given(
            msg_id=_header_bytes,
            stamp=stamps,
            signature=_header_bytes.map(lambda b: b"v1," + b),
        )
        def post_signed(msg_id: bytes, stamp: str, signature: bytes) -> None:
            head = (
                b"webhook-id: "
                + msg_id
                + b"\r\nwebhook-timestamp: "
                + stamp.encode("utf-8")
                + b"\r\nwebhook-signature: "
                + signature
                + b"\r\n"
            )
            status = run(h.raw(head, body))
            record("signature-header-bytes", status)
            assert status in (400, 401)
            h.check_waiters()

        post_signed()
    assert h.reachable["txn-a"].history == []
    report(capsys, "signature-header-bytes")


def test_valid_events_reach_only_their_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The control: well-formed events are accepted and routed to their order."""
    with harness(WebhookConfig(secret=HOOK_SECRET)) as (h, run):

        @settings(_SETTINGS, max_examples=150)
        @given(
            txn=st.sampled_from(REACHABLE),
            event_id=_text.filter(lambda s: bool(s.strip())),
            status=_plausible["eventStatus"],
        )
        def post_event(txn: str, event_id: str, status: str) -> None:
            doc = {
                "eventId": event_id,
                "eventType": "OU",
                "eventStatus": status,
                "subscriberReferenceNum3": txn,
            }
            before = len(h.reachable[txn].history)
            answer = run(h.post(json.dumps(doc).encode()))
            record("valid-event", answer)
            assert answer == 200
            history = h.reachable[txn].history
            assert len(history) in (before, before + 1)  # replays recorded once
            assert history[-1].transaction_id == txn
            h.check_waiters()

        post_event()
    report(capsys, "valid-event")
