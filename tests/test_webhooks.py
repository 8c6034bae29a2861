"""The webhook receiver end to end: a real receiver on 127.0.0.1:0, real POSTs.

Covers the enqueue -> webhook -> ``wait()`` path (also when the webhook beats
the enqueue answer), the body checks (413 unread, 415, 400 with a short
reason, unknown event types), and the two ways of embedding the receiver in
a user's own aiohttp application.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from sips_async import (
    OrderStatus,
    SipsClient,
    WebhookConfig,
    WebhookReceiver,
)
from sips_async.webhooks import SECRET_HEADER

from ._fake_sips import FakeSips, post, raw_http
from .factories import CLIENT_ID, CLIENT_SECRET, HOOK_SECRET, event_body, make_order

# -- fixtures -----------------------------------------------------------------


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
async def client(fake: FakeSips) -> AsyncIterator[SipsClient]:
    async with SipsClient(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=fake.url,
        webhook=WebhookConfig(secret=HOOK_SECRET),
    ) as sips:
        yield sips


def hook_url(client: SipsClient) -> str:
    url = client.webhook_url
    assert url is not None
    return url


def base_hook_url(receiver: WebhookReceiver) -> str:
    """The receiver's URL without the secret segment."""
    url = receiver.url
    assert url is not None
    return url.removesuffix("/" + HOOK_SECRET)


# -- enqueue, then the webhook ------------------------------------------------


async def test_enqueue_then_webhook_resolves_wait(
    fake: FakeSips, client: SipsClient, session: aiohttp.ClientSession
) -> None:
    order = make_order()
    pending = await client.orders.enqueue(order)

    assert pending.transaction_id == order.transaction_id
    assert pending.result is not None and pending.result.queued
    queued = fake.enqueued[-1]
    assert queued.transaction_id == order.transaction_id
    assert pending.order_id == queued.order_id
    assert pending.history == []

    url = hook_url(client)
    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/srs/webhook/" + HOOK_SECRET)
    body = event_body(
        transaction_id=order.transaction_id,
        order_id=queued.order_id,
        event_id="ev-1",
        status="Placed",
    )
    reply = await post(session, url, body)
    assert reply.status == 200
    assert reply.body == {"ok": True, "duplicate": False}

    update = await pending.wait(timeout=5)
    assert update.transaction_id == order.transaction_id
    assert update.order_id == queued.order_id
    assert update.event_id == "ev-1"
    assert update.event_type == "OA"
    assert update.status is OrderStatus.PLACED
    assert update.accepted and not update.rejected
    assert update.raw == body
    assert pending.status is OrderStatus.PLACED
    assert pending.history == [update]


async def test_webhook_before_enqueue_answer_still_resolves(
    fake: FakeSips, client: SipsClient, session: aiohttp.ClientSession
) -> None:
    fake.hold()
    order = make_order()
    enqueue = asyncio.create_task(client.orders.enqueue(order))
    queued = await fake.next_enqueued()  # at "SRS"; the answer is held back
    assert queued.transaction_id == order.transaction_id

    body = event_body(transaction_id=order.transaction_id, order_id=queued.order_id)
    reply = await post(session, hook_url(client), body)
    assert reply.status == 200 and reply.body["duplicate"] is False
    assert not enqueue.done()  # the update really beat the HTTP answer

    fake.release.set()
    pending = await enqueue
    assert [u.raw for u in pending.history] == [body]
    update = await pending.wait(timeout=5)
    assert update.raw == body
    assert update.transaction_id == order.transaction_id


async def test_early_webhook_with_only_srs_order_id_is_linked_by_the_answer(
    fake: FakeSips, client: SipsClient, session: aiohttp.ClientSession
) -> None:
    """An update carrying only SRS's order id is tied to the order once the
    enqueue answer names that id (DESIGN: correlate by transactionID, falling
    back to the SRS order id)."""
    fake.hold()
    order = make_order()
    enqueue = asyncio.create_task(client.orders.enqueue(order))
    queued = await fake.next_enqueued()

    body = event_body(transaction_id=None, order_id=queued.order_id, event_id="e-9")
    reply = await post(session, hook_url(client), body)
    assert reply.status == 200

    fake.release.set()
    pending = await enqueue
    update = await pending.wait(timeout=5)
    assert update.raw == body
    assert update.transaction_id is None
    assert update.order_id == queued.order_id


# -- bodies -----------------------------------------------------------------------


def _raw_request(path: str, headers: dict[str, str], body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return head.encode() + b"\r\n" + body


async def test_oversize_content_length_refused_without_reading_body() -> None:
    cap = 1024
    config = WebhookConfig(secret=HOOK_SECRET, max_body_size=cap)
    async with WebhookReceiver(config) as receiver:
        url = URL(base_hook_url(receiver))
        assert url.host is not None and url.port is not None
        promised = 50 * 1024 * 1024
        request = _raw_request(
            url.path,
            {
                "Content-Type": "application/json",
                SECRET_HEADER: HOOK_SECRET,
                "Content-Length": str(promised),
            },
            b"{" + b" " * 200,  # a sliver of the 50 MiB promised; never finished
        )
        async with asyncio.timeout(5):
            status, head, body = await raw_http(url.host, url.port, request)
        assert status == 413
        assert b"connection: close" in head.lower()
        assert json.loads(body) == {"ok": False, "error": "body too large"}
        assert receiver.tracker.received == 0


async def test_oversize_chunked_body_refused() -> None:
    cap = 1024
    config = WebhookConfig(secret=HOOK_SECRET, max_body_size=cap)
    async with WebhookReceiver(config) as receiver:
        url = URL(base_hook_url(receiver))
        assert url.host is not None and url.port is not None
        chunk = b"x" * 700
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3))
        request = _raw_request(
            url.path,
            {
                "Content-Type": "application/json",
                SECRET_HEADER: HOOK_SECRET,
                "Transfer-Encoding": "chunked",
            },
            chunks,  # 2100 bytes over a 1024 cap, and no final chunk
        )
        async with asyncio.timeout(5):
            status, _, body = await raw_http(url.host, url.port, request)
        assert status == 413
        assert json.loads(body)["error"] == "body too large"


async def test_chunked_body_under_the_cap_is_accepted(
    session: aiohttp.ClientSession,
) -> None:
    body = event_body(transaction_id="txn-chunked")

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16):
            yield body[start : start + 16]

    config = WebhookConfig(secret=HOOK_SECRET, max_body_size=1024)
    async with WebhookReceiver(config) as receiver:
        url = receiver.url
        assert url is not None
        async with session.post(
            url, data=pieces(), headers={"Content-Type": "application/json"}
        ) as resp:
            assert resp.status == 200
        assert receiver.tracker.received == 1


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "text/json"]
)
async def test_non_json_content_type_is_415(
    client: SipsClient, session: aiohttp.ClientSession, content_type: str
) -> None:
    pending = await client.orders.track("txn-415")
    body = event_body(transaction_id="txn-415")
    reply = await post(session, hook_url(client), body, content_type=content_type)
    assert reply.status == 415
    assert reply.body["ok"] is False
    assert pending.history == []


async def test_json_suffix_content_type_is_accepted(
    client: SipsClient, session: aiohttp.ClientSession
) -> None:
    body = event_body(transaction_id="txn-plus-json")
    reply = await post(
        session,
        hook_url(client),
        body,
        content_type="application/vnd.srs+json",
    )
    assert reply.status == 200


@pytest.mark.parametrize(
    ("body", "reason_part"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[]", "not an SRS event"),
        (b'"OA"', "not an SRS event"),
        (b"{}", "eventType and eventId are required"),
        (b'{"eventType": "OA"}', "eventType and eventId are required"),
        (b'{"eventId": "1"}', "eventType and eventId are required"),
        (b'{"eventId": "  ", "eventType": "OA"}', "eventType and eventId are required"),
        (b'{"eventId": "1", "eventType": ["OA"]}', "$.eventType"),
        (b'{"eventId": {"id": 1}, "eventType": "OA"}', "$.eventId"),
        (b'{"eventId": 1.5, "eventType": "OA"}', "$.eventId"),
        (b'{"eventId": true, "eventType": "OA"}', "$.eventId"),
        (b'{"eventId": "1", "eventType": "OA", "eventStatus": 3}', "$.eventStatus"),
        (
            b'{"eventId": "1", "eventType": "OA", "subscriberReferenceNum3": []}',
            "$.subscriberReferenceNum3",
        ),
        (
            b'{"eventId": "1", "eventType": "OA", "x": ' + b"[" * 5000 + b"]" * 5000,
            "",
        ),
        (
            b'{"eventId":"1","eventType":"OA","x":'
            + b"[" * 20000
            + b"]" * 20000
            + b"}",
            "",
        ),
        (
            b'{"eventId":"1","eventType":"OA","x":'
            + b'{"a":' * 8000
            + b"1"
            + b"}" * 8001,
            "",
        ),
    ],
    ids=[
        "bad-json",
        "empty",
        "array",
        "string",
        "empty-object",
        "no-eventId",
        "no-eventType",
        "blank-eventId",
        "eventType-list",
        "eventId-object",
        "eventId-float",
        "eventId-bool",
        "eventStatus-int",
        "txn-list",
        "truncated-nesting",
        "deep-array",
        "deep-object",
    ],
)
async def test_not_an_event_is_400_with_short_reason(
    client: SipsClient, session: aiohttp.ClientSession, body: bytes, reason_part: str
) -> None:
    pending = await client.orders.track("1")
    reply = await post(session, hook_url(client), body)
    assert reply.status == 400
    assert reply.body["ok"] is False
    reason = reply.body["error"]
    assert isinstance(reason, str) and 0 < len(reason) <= 200
    assert reason_part in reason
    assert pending.history == []
    assert client.receiver is not None and client.receiver.tracker.received == 0


async def test_unknown_event_type_is_accepted_and_delivered(
    client: SipsClient, session: aiohttp.ClientSession
) -> None:
    pending = await client.orders.track("txn-zz")
    body = event_body(
        transaction_id="txn-zz", event_type="zq", status="Something New", eventId=7
    )
    reply = await post(session, hook_url(client), body)
    assert reply.status == 200
    update = await pending.wait_for(lambda u: u.event_type == "ZQ", timeout=5)
    assert update.event_id == "7"
    assert update.status == "Something New"
    assert update.raw == body


async def test_unmatched_update_answers_200(
    client: SipsClient, session: aiohttp.ClientSession
) -> None:
    body = event_body(transaction_id=None, order_id=None, event_id="lonely")
    reply = await post(session, hook_url(client), body)
    assert reply.status == 200 and reply.body == {"ok": True, "duplicate": False}


# -- embedding in the user's own aiohttp application --------------------------------


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def test_mounted_subapp_resolves_pending_order(
    fake: FakeSips, session: aiohttp.ClientSession
) -> None:
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    app = web.Application()

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="up")

    app.router.add_get("/health", health)
    app.add_subapp("/hooks", receiver.app)
    runner, base = await _serve(app)
    try:
        async with SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=fake.url,
            webhook=receiver,
        ) as client:
            assert client.receiver is receiver
            order = make_order()
            pending = await client.orders.enqueue(order)
            body = event_body(transaction_id=order.transaction_id, event_id="sub-1")

            wrong = await post(session, f"{base}/hooks/srs/webhook/{'x' * 24}", body)
            assert wrong.status == 401
            reply = await post(session, f"{base}/hooks/srs/webhook/{HOOK_SECRET}", body)
            assert reply.status == 200
            update = await pending.wait(timeout=5)
            assert update.event_id == "sub-1" and update.raw == body

            header = await post(
                session,
                f"{base}/hooks/srs/webhook",
                event_body(transaction_id=order.transaction_id, event_id="sub-2"),
                secret=HOOK_SECRET,
            )
            assert header.status == 200
            assert [u.event_id for u in pending.history] == ["sub-1", "sub-2"]
            async with session.get(f"{base}/health") as resp:
                assert await resp.text() == "up"  # the user's own routes still work
    finally:
        await runner.cleanup()


async def test_handler_on_users_own_router(
    fake: FakeSips, session: aiohttp.ClientSession
) -> None:
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    app = web.Application()
    app.router.add_post("/my/hook", receiver.handle)
    app.router.add_post("/my/hook/{token}", receiver.handle)
    runner, base = await _serve(app)
    try:
        async with SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=fake.url,
            webhook=receiver,
        ) as client:
            order = make_order()
            pending = await client.orders.enqueue(order)
            txn = order.transaction_id
            first = event_body(transaction_id=txn, event_id="own-1")
            second = event_body(transaction_id=txn, event_id="own-2", event_type="OU")

            assert (await post(session, f"{base}/my/hook", first)).status == 401
            assert (
                await post(session, f"{base}/my/hook", first, secret="nope")
            ).status == 401
            reply = await post(session, f"{base}/my/hook", first, secret=HOOK_SECRET)
            assert reply.status == 200
            update = await pending.wait(timeout=5)
            assert update.event_id == "own-1"

            reply = await post(session, f"{base}/my/hook/{HOOK_SECRET}", second)
            assert reply.status == 200
            assert [u.event_id for u in pending.history] == ["own-1", "own-2"]
    finally:
        await runner.cleanup()
