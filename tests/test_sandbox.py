"""The sandbox: a fake SIPS server, exercised over real loopback sockets.

Every wait here is on an event (a webhook, ``wait_idle``, a future), never a
sleep that guesses how long something takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from sips_async import (
    FieldsMissingError,
    OrderProcessingError,
    OrderRejectedError,
    OrderStatus,
    SipsAuthError,
    SipsClient,
    SipsConfigError,
    SipsConnectionError,
    SipsNotFoundError,
    WebhookConfig,
)
from sips_async._codec import decode_sales_order
from sips_async.sandbox import Sandbox, SandboxConfig, SandboxStats, serve
from sips_async.webhooks import SECRET_HEADER, verify_signature

from ._sandbox_helpers import (
    FAST_RETRY,
    SANDBOX_ID,
    SANDBOX_SECRET,
    CaptureReceiver,
)
from .factories import HOOK_SECRET, make_order

SIGNING_SECRET = "whsec_c2FuZGJveC1zaWduaW5nLWtleS0wMTIzNDU2Nzg5"


def client_for(sb: Sandbox, **kwargs: Any) -> SipsClient:
    """A real client aimed at the sandbox, with fast retries."""
    kwargs.setdefault("retry", FAST_RETRY)
    return SipsClient(
        client_id=SANDBOX_ID, client_secret=SANDBOX_SECRET, base_url=sb.url, **kwargs
    )


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(step_delay=0.005)) as sandbox:
        yield sandbox


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def fetch_token(http: aiohttp.ClientSession, sb: Sandbox) -> str:
    async with http.post(
        sb.url + "/authentication/token",
        data={
            "client_id": SANDBOX_ID,
            "client_secret": SANDBOX_SECRET,
            "grant_type": "client_credentials",
            "scope": "ALL",
        },
    ) as resp:
        assert resp.status == 200
        doc = await resp.json()
    token = doc["access_token"]
    assert isinstance(token, str)
    return token


def assert_seed_error(doc: Any, *, status: int, code: str, source: str) -> None:
    assert set(doc) == {"error"}
    assert doc["error"]["status_code"] == status
    assert doc["error"]["code"] == code
    assert doc["error"]["source"] == source
    assert doc["error"]["description"]


# --------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------


async def test_token_is_issued_with_string_lifetimes(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        sb.url + "/authentication/token",
        data={
            "client_id": SANDBOX_ID,
            "client_secret": SANDBOX_SECRET,
            "grant_type": "client_credentials",
            "scope": "ALL",
        },
    ) as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["token_type"] == "Bearer"
    assert doc["expires_in"] == doc["ext_expires_in"] == "3600"
    assert len(doc["access_token"]) > 20
    # SRS's getting-started guide sends JSON; the sandbox takes it too.
    async with http.post(
        sb.url + "/Authentication/token",
        json={
            "client_id": SANDBOX_ID,
            "client_secret": SANDBOX_SECRET,
            "grant_type": "client_credentials",
            "scope": "ALL",
        },
    ) as resp:
        assert resp.status == 200
    assert sb.stats().tokens_issued == 2


async def test_wrong_credentials_get_the_seed_401(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    url = sb.url + "/authentication/token"
    async with http.post(
        url,
        data={
            "client_id": SANDBOX_ID,
            "client_secret": "wrong",
            "grant_type": "client_credentials",
        },
    ) as resp:
        assert resp.status == 401
        doc = await resp.json()
    assert_seed_error(doc, status=401, code="AUTHENTICATION_ERROR", source=url)
    assert doc["error"]["description"] == "Invalid credential or token."
    bad = SipsClient(
        client_id=SANDBOX_ID, client_secret="wrong-secret", base_url=sb.url
    )
    async with bad:
        with pytest.raises(SipsAuthError) as info:
            await bad.orders.submit(make_order())
    assert info.value.status == 401
    assert sb.stats().tokens_issued == 0


async def test_unknown_and_expired_tokens_get_401(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    url = sb.url + "/orders/875"  # 874 exists: the example
    async with http.get(url, headers={"Authorization": "Bearer nope"}) as resp:
        assert resp.status == 401
        assert_seed_error(
            await resp.json(), status=401, code="AUTHENTICATION_ERROR", source=url
        )
    async with http.get(url) as resp:
        assert resp.status == 401
    token = await fetch_token(http, sb)
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(url, headers=headers) as resp:
        assert resp.status == 404  # the token works; the order does not exist
    sb.expire_tokens()
    async with http.get(url, headers=headers) as resp:
        assert resp.status == 401
        doc = await resp.json()
    assert_seed_error(doc, status=401, code="AUTHENTICATION_ERROR", source=url)


async def test_client_refreshes_an_expired_token_mid_run(sb: Sandbox) -> None:
    async with client_for(sb) as client:
        first = await client.orders.submit(make_order())
        sb.expire_tokens()
        second = await client.orders.submit(make_order())
    assert first.order_id != second.order_id
    stats = sb.stats()
    assert stats.tokens_issued == 2
    assert sorted(stats.transactions.values()) == [1, 1]


# --------------------------------------------------------------------------
# Synchronous submit and its errors
# --------------------------------------------------------------------------


async def test_submit_happy_path(sb: Sandbox) -> None:
    order = make_order()
    async with client_for(sb) as client:
        result = await client.orders.submit(order)
    assert result.message == "Order Submitted"
    assert result.transaction_id == order.transaction_id
    assert result.order_id is not None and result.order_id.isdigit()
    assert result.queue_id is None
    assert not result.queued
    stats = sb.stats()
    assert stats.transactions == {order.transaction_id: 1}
    assert stats.orders == 1


async def test_missing_fields_are_named(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    order = make_order(customer_code=None, order_line_item_details=[])
    body = msgspec.json.encode(order)
    url = sb.url + "/orders/v2/submit"
    token = await fetch_token(http, sb)
    async with http.post(
        url,
        data=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
    ) as resp:
        assert resp.status == 400
        doc = await resp.json()
    assert_seed_error(doc, status=400, code="FieldsMissingFromRequestBody", source=url)
    assert doc["error"]["description"] == (
        "Required fields missing: customerCode, orderLineItemDetails"
    )
    # The same answer through a real client's request path (its local check
    # would otherwise stop the order before it leaves).
    async with client_for(sb) as client:
        with pytest.raises(FieldsMissingError) as info:
            await client.orders._requester.request(
                "POST", "/orders/v2/submit", json=body, timeout=5
            )
    assert info.value.status == 400
    assert info.value.fields == ("customerCode", "orderLineItemDetails")
    assert sb.stats().transactions == {}


async def test_malformed_bodies_are_bad_requests(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    token = await fetch_token(http, sb)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    url = sb.url + "/orders/v2/submit"
    for body in (b"{not json", b'{"jobAccountNumber": "one"}', b"[]"):
        async with http.post(url, data=body, headers=headers) as resp:
            assert resp.status == 400
            doc = await resp.json()
        assert_seed_error(doc, status=400, code="BAD_REQUEST_ERROR", source=url)
    assert sb.stats().orders == 0


async def test_unknown_branch_is_an_order_processing_error(sb: Sandbox) -> None:
    async with client_for(sb) as client:
        with pytest.raises(OrderProcessingError) as info:
            await client.orders.submit(make_order(branch_code="NOWHERE"))
    err = info.value
    assert err.status == 400
    assert err.code == "Orders_GeneralError"
    assert "NOWHERE" in err.description and "BRRIV" in err.description
    assert sb.stats().transactions == {}


async def test_a_repeated_transaction_id_is_counted_and_not_placed_twice(
    sb: Sandbox,
) -> None:
    order = make_order()
    async with client_for(sb) as client:
        first = await client.orders.submit(order)
        again = await client.orders.submit(order)
    assert first.order_id == again.order_id
    stats = sb.stats()
    assert stats.transactions == {order.transaction_id: 2}
    assert stats.orders == 1


# --------------------------------------------------------------------------
# Order details
# --------------------------------------------------------------------------


async def test_order_details_decode_and_track_status(sb: Sandbox) -> None:
    async with client_for(sb) as client:
        result = await client.orders.submit(make_order())
        assert result.order_id is not None
        placed = await client.orders.get(result.order_id)
        await sb.wait_idle()
        delivered = await client.orders.get(int(result.order_id))
    assert placed.id == int(result.order_id)
    assert placed.status is OrderStatus.PLACED
    assert placed.deliveryagent is None and placed.invoices == []
    assert placed.salesagent is None
    assert [(p.id, p.quantity, p.price) for p in placed.products] == [
        (75664, 1.0, 12.0)
    ]
    assert placed.billable_amount == 12.0
    assert placed.customer is not None
    assert placed.customer.customer_code == "DEMO001"
    assert delivered.status is OrderStatus.DELIVERED
    assert delivered.deliveryagent is not None
    assert len(delivered.invoices) == 1


async def test_unknown_and_invalid_order_ids_are_404(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    token = await fetch_token(http, sb)
    headers = {"Authorization": f"Bearer {token}"}
    url = sb.url + "/orders/17580"
    async with http.get(url, headers=headers) as resp:
        assert resp.status == 404
        doc = await resp.json()
    assert_seed_error(doc, status=404, code="BAD_REQUEST_ERROR", source=url)
    assert doc["error"]["description"] == "The id provided does not exist."
    async with http.get(sb.url + "/no/such/endpoint", headers=headers) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "BAD_REQUEST_ERROR"
    async with http.get(sb.url + "/orders/not-an-id", headers=headers) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["description"] == "ID is not a valid ID."
    async with client_for(sb) as client:
        with pytest.raises(SipsNotFoundError) as info:
            await client.orders.get(17580)
    assert info.value.code == "BAD_REQUEST_ERROR"


async def test_raw_order_document_matches_the_seed_shape(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with client_for(sb) as client:
        result = await client.orders.submit(make_order())
    token = await fetch_token(http, sb)
    async with http.get(
        f"{sb.url}/orders/{result.order_id}",
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        body = await resp.read()
    doc = msgspec.json.decode(body)
    assert set(doc) == {"data"}
    data = doc["data"]
    assert isinstance(data["id"], int) and isinstance(data["order_no"], str)
    assert data["salesagent"] == [] and data["customer"]["address"] == []
    assert data["laststatus"] == {"name": "Placed"}
    dt.date.fromisoformat(data["date"])
    assert decode_sales_order(body).id == data["id"]


# --------------------------------------------------------------------------
# Queued orders and webhooks
# --------------------------------------------------------------------------


async def test_enqueued_order_reaches_delivered_by_webhook(sb: Sandbox) -> None:
    order = make_order()
    hook = WebhookConfig(secret=HOOK_SECRET)
    async with client_for(sb, webhook=hook) as client:
        sb.webhook_url = client.webhook_url
        pending = await client.orders.enqueue(order)
        assert pending.result is not None
        assert pending.result.message == "Order Queued"
        assert pending.result.queued
        assert pending.result.order_id == pending.result.queue_id
        ack = await pending.wait(timeout=10)
        done = await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
        await sb.wait_idle()
        by_queue_id = await client.orders.get(str(pending.result.queue_id))
        history = pending.history
    assert ack.event_type == "OA" and ack.accepted
    assert done.event_type == "DU" and done.is_final
    assert [(u.event_type, u.event_status) for u in history] == [
        ("OA", "Accepted"),
        ("OU", "Placed"),
        ("OU", "Processed"),
        ("OU", "Shipment Created"),
        ("DU", "Delivered"),
    ]
    times = [u.occurred_at for u in history]
    assert all(
        a is not None and b is not None and a < b for a, b in itertools.pairwise(times)
    )
    assert len({u.event_id for u in history}) == 5
    assert {u.transaction_id for u in history} == {order.transaction_id}
    assert {u.po_number for u in history} == {"5641-8Test"}
    assert {u.order_id for u in history} == {str(by_queue_id.id)}
    assert by_queue_id.status is OrderStatus.DELIVERED
    stats = sb.stats()
    assert stats.transactions == {order.transaction_id: 1}
    assert [(w.event_type, w.answer_status) for w in stats.webhooks] == [
        ("OA", 200),
        ("OU", 200),
        ("OU", 200),
        ("OU", 200),
        ("DU", 200),
    ]


async def test_business_rule_failure_is_rejected_by_webhook(sb: Sandbox) -> None:
    hook = WebhookConfig(secret=HOOK_SECRET)
    async with client_for(sb, webhook=hook) as client:
        sb.webhook_url = client.webhook_url
        pending = await client.orders.enqueue(make_order(branch_code="NOWHERE"))
        assert pending.result is not None
        assert pending.result.message == "Order Queued"
        with pytest.raises(OrderRejectedError) as info:
            await pending.wait(timeout=10)
        await sb.wait_idle()
        with pytest.raises(SipsNotFoundError):
            await client.orders.get(str(pending.result.queue_id))
    update = info.value.update
    assert update.event_type == "OA" and update.event_status == "Rejected"
    assert update.error_code == "Orders_GeneralError"
    assert update.order_id == pending.result.queue_id
    assert [w.event_type for w in sb.stats().webhooks] == ["OA"]


async def test_signed_and_secret_header_deliveries() -> None:
    cfg = SandboxConfig(
        step_delay=0.001, signing_secret=SIGNING_SECRET, webhook_secret=HOOK_SECRET
    )
    async with Sandbox(cfg) as sb, CaptureReceiver() as capture:
        sb.webhook_url = capture.url
        async with client_for(sb) as client:
            await client.orders.submit(make_order())
        hits = await capture.wait_hits(4)
        await sb.wait_idle()
    for hit in hits:
        assert hit.headers[SECRET_HEADER] == HOOK_SECRET
        assert hit.headers["Content-Type"] == "application/json"
        reason = verify_signature(
            [SIGNING_SECRET],
            hit.headers,
            hit.body,
            tolerance=300,
            now=dt.datetime.now(dt.UTC).timestamp(),
        )
        assert reason is None


async def test_client_receiver_accepts_signed_deliveries() -> None:
    cfg = SandboxConfig(step_delay=0.001, signing_secret=SIGNING_SECRET)
    hook = WebhookConfig(signing_secrets=(SIGNING_SECRET,))
    async with Sandbox(cfg) as sb, client_for(sb, webhook=hook) as client:
        sb.webhook_url = client.webhook_url
        pending = await client.orders.enqueue(make_order())
        await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
        await sb.wait_idle()
    assert {w.answer_status for w in sb.stats().webhooks} == {200}


# --------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------


async def test_error_rate_is_retried_and_each_order_counted_once() -> None:
    cfg = SandboxConfig(error_rate=0.5, seed=1234, step_delay=0.001)
    hook = WebhookConfig(secret=HOOK_SECRET)
    async with Sandbox(cfg) as sb, client_for(sb, webhook=hook) as client:
        sb.webhook_url = client.webhook_url
        orders = [make_order() for _ in range(8)]
        results = [await client.orders.submit(o) for o in orders[:4]]
        pendings = [await client.orders.enqueue(o) for o in orders[4:]]
        for pending in pendings:
            await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
        await sb.wait_idle()
    stats = sb.stats()
    assert stats.transactions == {o.transaction_id: 1 for o in orders}
    assert stats.orders == 8
    assert stats.faults["error"] > 0
    assert all(r.message == "Order Submitted" for r in results)
    # Every 503 was followed by a retry: requests = answered + refused.
    assert stats.requests >= 8 + stats.tokens_issued + stats.faults["error"]


async def test_dropped_answers_still_record_the_order(
    http: aiohttp.ClientSession,
) -> None:
    async with Sandbox(SandboxConfig(drop_rate=0.5, seed=99)) as sb:
        token = None
        for _ in range(20):
            with contextlib.suppress(aiohttp.ServerDisconnectedError):
                token = await fetch_token(http, sb)
                break
        assert token is not None
        headers = {"Authorization": f"Bearer {token}"}
        dropped = answered = 0
        orders = [make_order() for _ in range(12)]
        for order in orders:
            try:
                async with http.post(
                    sb.url + "/orders/v2/submit",
                    data=msgspec.json.encode(order),
                    headers=headers,
                ) as resp:
                    assert resp.status == 200
                    answered += 1
            except aiohttp.ServerDisconnectedError:
                dropped += 1
        stats = sb.stats()
        assert dropped > 0 and answered > 0
        assert stats.transactions == {o.transaction_id: 1 for o in orders}
        assert stats.faults["drop"] == dropped + stats.tokens_issued - 1
        # A client in the default "safe" mode does not re-send such an order.
        async with client_for(sb) as client:
            outcomes = []
            for _ in range(6):
                try:
                    await client.orders.submit(make_order())
                    outcomes.append("ok")
                except SipsConnectionError as exc:
                    assert exc.sent
                    outcomes.append("dropped")
        assert "dropped" in outcomes
        assert all(n == 1 for n in sb.stats().transactions.values())


async def test_duplicate_deliveries_are_replays() -> None:
    cfg = SandboxConfig(duplicate_rate=1.0, step_delay=0.001)
    hook = WebhookConfig(secret=HOOK_SECRET)
    async with Sandbox(cfg) as sb, client_for(sb, webhook=hook) as client:
        sb.webhook_url = client.webhook_url
        pending = await client.orders.enqueue(make_order())
        await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
        await sb.wait_idle()
        assert client.receiver is not None
        replays_dropped = client.receiver.tracker.duplicates
        history = pending.history
    stats = sb.stats()
    assert stats.faults["duplicate"] == 5
    assert len(stats.webhooks) == 10
    originals = [w for w in stats.webhooks if not w.duplicate]
    replays = [w for w in stats.webhooks if w.duplicate]
    assert [w.event_id for w in originals] == [w.event_id for w in replays]
    assert replays_dropped == 5
    assert len(history) == 5


async def test_reordered_steps_arrive_swapped_but_status_moves_forward() -> None:
    cfg = SandboxConfig(reorder_rate=1.0, step_delay=0.001)
    hook = WebhookConfig(secret=HOOK_SECRET)
    async with Sandbox(cfg) as sb, client_for(sb, webhook=hook) as client:
        sb.webhook_url = client.webhook_url
        pending = await client.orders.enqueue(make_order())
        await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
        await sb.wait_idle()
        history = pending.history
        status = pending.status
    arrived = [u.event_status for u in history]
    assert arrived == [
        "Placed",
        "Accepted",
        "Shipment Created",
        "Processed",
        "Delivered",
    ]
    assert [w.status for w in sb.stats().webhooks] == arrived
    assert sb.stats().faults["reorder"] == 2
    assert history[0].occurred_at is not None and history[1].occurred_at is not None
    assert history[1].occurred_at < history[0].occurred_at  # the late OA is older
    assert status is OrderStatus.DELIVERED


async def test_redelivery_after_a_non_2xx_answer(sb: Sandbox) -> None:
    async with client_for(sb) as client:
        result = await client.orders.submit(make_order())
    await sb.wait_idle()  # the walk ran with no webhook_url: nothing sent
    assert sb.stats().webhooks == []
    async with CaptureReceiver(answers=[500, 503]) as capture:
        sb.webhook_url = capture.url
        record = await sb.push(str(result.transaction_id), "OU", "Invoice Generated")
    assert record is not None and record.attempt == 3 and record.answer_status == 200
    assert [(w.attempt, w.answer_status) for w in sb.stats().webhooks] == [
        (1, 500),
        (2, 503),
        (3, 200),
    ]
    assert len({hit.body for hit in capture.hits}) == 1
    event = msgspec.json.decode(capture.hits[0].body)
    assert event["subscriberReferenceNum2"] == result.order_id
    assert event["eventStatus"] == "Invoice Generated"


async def test_unreachable_receiver_is_retried_a_bounded_number_of_times() -> None:
    async with CaptureReceiver() as gone:
        url = gone.url  # the port is free again once the receiver stops
    async with Sandbox(SandboxConfig(webhook_retries=2, webhook_url=url)) as sb:
        record = await sb.push("txn-1", "OA", "Accepted", order_id="1")
        await sb.wait_idle()
    assert record is not None and record.answer_status is None and not record.ok
    assert [(w.attempt, w.answer_status) for w in sb.stats().webhooks] == [
        (1, None),
        (2, None),
        (3, None),
    ]


async def test_push_moves_a_known_order(sb: Sandbox) -> None:
    async with client_for(sb) as client:
        result = await client.orders.submit(make_order())
        await sb.wait_idle()
        async with CaptureReceiver() as capture:
            sb.webhook_url = capture.url
            await sb.push(str(result.transaction_id), "OC", "Cancelled")
        assert result.order_id is not None
        cancelled = await client.orders.get(result.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    sb.webhook_url = None
    with pytest.raises(RuntimeError):
        await sb.push("txn", "OU", "Placed")
    with pytest.raises(SipsConfigError):
        sb.webhook_url = "ftp://example.com/hook"


async def test_seeded_faults_are_reproducible(http: aiohttp.ClientSession) -> None:
    async def run() -> list[int]:
        statuses = []
        async with Sandbox(SandboxConfig(error_rate=0.5, seed=42)) as sb:
            for _ in range(16):
                async with http.get(sb.url + "/orders/1") as resp:
                    statuses.append(resp.status)
        return statuses

    first, second = await run(), await run()
    assert first == second
    assert set(first) == {401, 503}


async def test_latency_delays_every_answer(http: aiohttp.ClientSession) -> None:
    loop = asyncio.get_running_loop()
    async with Sandbox(SandboxConfig(latency=0.05)) as sb:
        started = loop.time()
        async with http.get(sb.url + "/orders/1") as resp:
            assert resp.status == 401
        assert loop.time() - started >= 0.05


# --------------------------------------------------------------------------
# Stats, lifecycle, configuration
# --------------------------------------------------------------------------


async def test_stats_endpoint_needs_no_token(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with client_for(sb) as client:
        result = await client.orders.submit(make_order())
    requests = sb.stats().requests
    async with http.get(sb.url + "/_sandbox/stats") as resp:
        assert resp.status == 200
        stats = msgspec.json.decode(await resp.read(), type=SandboxStats)
    assert stats.transactions == {result.transaction_id: 1}
    assert stats.orders == 1 and stats.tokens_issued == 1
    assert stats.requests == requests == 2
    assert stats.faults == dict.fromkeys(
        ("error", "drop", "duplicate", "reorder", "lose"), 0
    )
    assert sb.stats().requests == requests  # the stats call is not counted


async def test_close_cancels_pending_deliveries() -> None:
    sb = Sandbox(SandboxConfig(step_delay=60.0))
    async with sb, client_for(sb) as client:
        await client.orders.submit(make_order())
        with pytest.raises(TimeoutError):
            await sb.wait_idle(timeout=0.01)
    await sb.wait_idle()  # closing cancelled the walk
    others = asyncio.all_tasks() - {asyncio.current_task()}
    assert not others
    await sb.aclose()  # idempotent
    with pytest.raises(RuntimeError):
        await sb.start()


async def test_serve_runs_until_cancelled(http: aiohttp.ClientSession) -> None:
    started: asyncio.Future[Sandbox] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(SandboxConfig(), "127.0.0.1", 0, ready=started.set_result)
    )
    sb = await started
    async with http.get(sb.url + "/_sandbox/stats") as resp:
        assert resp.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(sb.url + "/_sandbox/stats"):
            pass


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_rate": 1.5},
        {"drop_rate": -0.1},
        {"token_lifetime": 0},
        {"latency": -1},
        {"webhook_retries": -1},
        {"webhook_url": "ftp://example.com"},
        {"client_secret": ""},
        {"branches": "BRRIV"},
    ],
)
def test_bad_config_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SipsConfigError):
        SandboxConfig(**kwargs)


def test_sandbox_listens_on_loopback_only() -> None:
    with pytest.raises(SipsConfigError):
        Sandbox(host="0.0.0.0")
    Sandbox(host="localhost")
    Sandbox(host="::1")
    with pytest.raises(RuntimeError):
        _ = Sandbox().url
