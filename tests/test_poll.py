"""Polling and reconciliation (issue 10), against the sandbox and real servers.

Every wait here is on an event or an awaited result; polls use tiny
``after``/``every`` values, or a fake clock whose sleep only advances time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses

from sips_async import (
    OrderRequest,
    OrderStatus,
    OrderUpdate,
    PoDetails,
    PollConfig,
    RetryConfig,
    SipsClient,
    SipsConfigError,
    SipsConnectionError,
    SipsServerError,
    WebhookConfig,
)
from sips_async._poll import MIN_EVERY, poll_update
from sips_async.sandbox import Sandbox, SandboxConfig

from ._fake_sips import post
from ._mock import BASE, ENQUEUE_URL, TOKEN_URL, mock_token
from ._sandbox_helpers import FAST_RETRY, SANDBOX_ID, SANDBOX_SECRET, CaptureReceiver
from .factories import CLIENT_ID, CLIENT_SECRET, HOOK_SECRET, event_body, make_order

QUICK = PollConfig(after=0.05, every=0.05)


def client_for(url: str, **kwargs: Any) -> SipsClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return SipsClient(
        client_id=SANDBOX_ID, client_secret=SANDBOX_SECRET, base_url=url, **kwargs
    )


def orders(count: int, prefix: str) -> list[OrderRequest]:
    return [
        make_order(po_details=PoDetails(po_number=f"{prefix}-{i}"))
        for i in range(count)
    ]


# -- PollConfig ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"after": 0},
        {"after": -1},
        {"after": float("nan")},
        {"after": float("inf")},
        {"every": 0},
        {"every": MIN_EVERY / 2},
        {"every": True},
        {"after": "10"},
    ],
)
def test_poll_config_refuses_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SipsConfigError):
        PollConfig(**kwargs)


def test_poll_config_keeps_good_values_and_client_checks_type() -> None:
    config = PollConfig(after=1, every=MIN_EVERY)
    assert (config.after, config.every) == (1.0, MIN_EVERY)
    with pytest.raises(SipsConfigError, match="PollConfig"):
        SipsClient(client_id="a", client_secret="b", poll=120)  # type: ignore[arg-type]


def test_poll_update_is_stable_per_order_and_status() -> None:
    def make(status: str) -> OrderUpdate:
        return poll_update(
            transaction_id="t",
            srs_id="35818786",
            status_text=status,
            po_number="P",
            raw=b"{}",
        )

    a, b = make("Delivered"), make("Delivered")
    assert a.event_id == b.event_id and a.occurred_at is None
    assert (a.event_type, a.status, a.source, a.is_final) == (
        "DU",
        OrderStatus.DELIVERED,
        "poll",
        True,
    )
    assert make("Processed").event_id != a.event_id
    assert make("Processed").event_type == "OU"
    assert make("Cancelled").event_type == "OC"


# -- a receiver down longer than the sandbox redelivers ------------------------


async def test_receiver_down_past_redelivery_still_reaches_final_by_polling() -> None:
    config = SandboxConfig(step_delay=0.005, webhook_retries=1)
    async with (
        Sandbox(config) as sb,
        CaptureReceiver(answers=itertools.repeat(503)) as down,
        client_for(
            sb.url, webhook=WebhookConfig(secret=HOOK_SECRET), poll=QUICK
        ) as client,
    ):
        sb.webhook_url = down.url  # the partner's receiver, answering 503
        pendings = [await client.orders.enqueue(o) for o in orders(5, "DOWN")]
        await sb.wait_idle()  # every redelivery has given up
        records = sb.stats().webhooks
        assert records and not any(r.ok for r in records)
        assert max(r.attempt for r in records) == 2
        done = await asyncio.gather(
            *(p.wait_for(OrderStatus.DELIVERED, timeout=10) for p in pendings)
        )
        assert all(u.source == "poll" for u in done)
        assert all(p.is_final and p.status == OrderStatus.DELIVERED for p in pendings)
        assert [p async for p in client.orders.outstanding()] == []


async def test_webhooks_lost_for_good_are_recovered_by_polling() -> None:
    config = SandboxConfig(step_delay=0.005, lose_rate=1.0)
    async with (
        Sandbox(config) as sb,
        client_for(
            sb.url, webhook=WebhookConfig(secret=HOOK_SECRET), poll=QUICK
        ) as client,
    ):
        sb.webhook_url = client.webhook_url
        pendings = [await client.orders.enqueue(o) for o in orders(3, "LOSE")]
        ack = await pendings[0].wait(timeout=10)
        assert ack.source == "poll"
        for p in pendings:
            await p.wait_for(OrderStatus.DELIVERED, timeout=10)
        await sb.wait_idle()
        stats = sb.stats()
        assert stats.webhooks == []  # lost: never sent, never redelivered
        assert stats.faults["lose"] == 3 * 5
        assert all(u.source == "poll" for p in pendings for u in p.history)


async def test_some_webhooks_lost_order_still_ends_in_order() -> None:
    config = SandboxConfig(step_delay=0.005, lose_rate=0.5, seed=7)
    async with (
        Sandbox(config) as sb,
        client_for(
            sb.url, webhook=WebhookConfig(secret=HOOK_SECRET), poll=QUICK
        ) as client,
    ):
        sb.webhook_url = client.webhook_url
        pendings = [await client.orders.enqueue(o) for o in orders(8, "HALF")]
        await sb.wait_idle()  # every walk is over: no poll races a webhook
        for p in pendings:
            await p.wait_for(OrderStatus.DELIVERED, timeout=10)
        await sb.wait_idle()
        stats = sb.stats()
        assert 0 < stats.faults["lose"] < 8 * 5
        sent = {(r.transaction_id, r.status) for r in stats.webhooks}
        for p in pendings:
            assert p.status == OrderStatus.DELIVERED
            delivered = [u for u in p.history if u.status == OrderStatus.DELIVERED]
            assert len(delivered) == 1  # a poll never repeats what a webhook said
            hooked = (p.transaction_id, "Delivered") in sent
            assert delivered[0].source == ("webhook" if hooked else "poll")


# -- poll-only mode ---------------------------------------------------------------


async def test_poll_only_mode_without_a_webhook() -> None:
    async with (
        Sandbox(SandboxConfig(step_delay=0.02)) as sb,
        client_for(sb.url, poll=QUICK) as client,
    ):
        assert client.webhook_url is None and sb.webhook_url is None
        pending = await client.orders.enqueue(make_order())
        ack = await pending.wait(timeout=10)
        assert ack.source == "poll"
        seen = [u async for u in pending.updates()]
        assert seen[-1].status == OrderStatus.DELIVERED and seen[-1].is_final
        assert all(u.source == "poll" for u in seen)
        assert pending.status == OrderStatus.DELIVERED
        again = await pending.wait_for(OrderStatus.DELIVERED, timeout=1)
        assert again is seen[-1]


async def test_no_webhook_and_no_poll_still_refuses_to_wait() -> None:
    async with (
        Sandbox(SandboxConfig(step_delay=0.005)) as sb,
        client_for(sb.url) as client,
    ):
        pending = await client.orders.enqueue(make_order())
        with pytest.raises(SipsConfigError, match="PollConfig"):
            await pending.wait(timeout=1)


# -- poll cadence: a fake clock -------------------------------------------------------


class FakeClock:
    """Monotonic time that moves only when something sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += delay
        await asyncio.sleep(0)


class StatusServer:
    """Token, enqueue, and ``GET /orders/{id}`` answering scripted statuses."""

    def __init__(self, statuses: list[str], clock: FakeClock) -> None:
        self.statuses = statuses
        self.clock = clock
        self.gets: list[float] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def token(self, request: web.Request) -> web.Response:
        return web.json_response({"access_token": "tok", "expires_in": 3600})

    async def enqueue(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(
            {
                "message": "Order Queued",
                "transactionID": body["transactionID"],
                "orderID": "q-1",
                "queueID": "q-1",
            }
        )

    async def order(self, request: web.Request) -> web.Response:
        self.gets.append(self.clock())
        status = self.statuses[min(len(self.gets), len(self.statuses)) - 1]
        return web.json_response({"data": {"id": 874, "laststatus": {"name": status}}})

    async def __aenter__(self) -> StatusServer:
        app = web.Application()
        app.router.add_post("/authentication/token", self.token)
        app.router.add_post("/orders/v2/submit/async", self.enqueue)
        app.router.add_get("/orders/{id}", self.order)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def test_polls_never_closer_than_every_and_stop_when_final() -> None:
    clock = FakeClock()
    statuses = ["Placed"] * 3 + ["Processed"] * 3 + ["Delivered"]
    config = PollConfig(after=5, every=30)
    async with (
        StatusServer(statuses, clock) as server,
        client_for(server.url, poll=config) as client,
    ):
        poller = client.orders._poller
        poller.clock, poller.sleep = clock, clock.sleep
        started = clock()
        pending = await client.orders.enqueue(make_order())

        # A waiter that stays inside after the final update: polling must
        # still stop on its own once the order is final.
        forever = asyncio.ensure_future(pending.wait_for(lambda u: False))
        done = await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
        assert done.source == "poll" and done.order_id == "874"
        entry = pending._entry
        assert entry is not None
        task = poller._watches[entry].task
        assert task is not None
        await asyncio.wait_for(task, timeout=10)  # ends, is not cancelled
        assert not task.cancelled() and poller.active == 0
        forever.cancel()
        await asyncio.gather(forever, return_exceptions=True)

    assert len(server.gets) == len(statuses)  # not one poll after the final
    assert server.gets[0] - started >= config.after
    gaps = [b - a for a, b in itertools.pairwise(server.gets)]
    assert min(gaps) >= config.every
    # Replays of an unchanged status were not recorded twice.
    assert [str(u.status) for u in pending.history] == [
        "Placed",
        "Processed",
        "Delivered",
    ]


async def test_a_wait_that_times_out_leaves_no_poll_running() -> None:
    async with (
        StatusServer(["Placed"], FakeClock()) as server,
        client_for(server.url, poll=PollConfig(after=0.01, every=0.01)) as client,
    ):
        poller = client.orders._poller
        pending = await client.orders.enqueue(make_order())
        ack = await pending.wait(timeout=10)
        assert ack.status == OrderStatus.PLACED and ack.source == "poll"
        with pytest.raises(TimeoutError):
            await pending.wait_for(OrderStatus.DELIVERED, timeout=0.05)
        tasks = list(poller._tasks)
        # Never final, so only the waiter leaving can have stopped the poll.
        await asyncio.wait_for(
            asyncio.gather(*tasks, return_exceptions=True), timeout=10
        )
        assert all(t.cancelled() for t in tasks) and poller.active == 0
        polled = len(server.gets)
        assert polled >= 2


# -- ambiguous failures against a real server ----------------------------------------


class FaultyProxy:
    """Forwards to the sandbox; enqueue answers per ``mode`` after forwarding.

    ``500``: the order is placed, then a 500 answers. ``reset``: placed, then
    the connection is closed without an answer. ``503``: refused before the
    sandbox ever sees it.
    """

    def __init__(self, target: str, mode: str) -> None:
        self.target = target
        self.mode = mode
        self.url = ""
        self.enqueues = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        async with self._session.request(
            request.method,
            self.target + request.path,
            data=await request.read(),
            headers={
                k: v
                for k, v in request.headers.items()
                if k.lower() in ("authorization", "content-type")
            },
        ) as resp:
            return web.Response(
                status=resp.status,
                body=await resp.read(),
                content_type=resp.content_type,
            )

    async def enqueue(self, request: web.Request) -> web.StreamResponse:
        self.enqueues += 1
        if self.mode == "503":
            return web.json_response({"error": "busy"}, status=503)
        await self.forward(request)  # the sandbox has placed the order
        if self.mode == "reset":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=200)
        return web.Response(status=500, text="Internal Server Error")

    async def __aenter__(self) -> FaultyProxy:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/orders/v2/submit/async", self.enqueue)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None and self._session is not None
        await self._runner.cleanup()
        await self._session.close()


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(step_delay=0.005)) as sb:
        yield sb


@pytest.mark.parametrize(
    ("mode", "error"), [("500", SipsServerError), ("reset", SipsConnectionError)]
)
async def test_ambiguous_failure_may_be_placed_and_resolves_from_webhooks(
    sandbox: Sandbox, mode: str, error: type[Exception]
) -> None:
    order = make_order()
    async with (
        FaultyProxy(sandbox.url, mode) as proxy,
        client_for(proxy.url, webhook=WebhookConfig(secret=HOOK_SECRET)) as client,
    ):
        sandbox.webhook_url = client.webhook_url
        with pytest.raises(error) as info:
            await client.orders.enqueue(order)
        assert info.value.transaction_id == order.transaction_id  # type: ignore[attr-defined]
        assert info.value.maybe_placed is True  # type: ignore[attr-defined]
        assert proxy.enqueues == 1  # never re-sent on its own
        listed = [p.transaction_id async for p in client.orders.outstanding()]
        assert listed == [order.transaction_id]
        pending = await client.orders.track(order.transaction_id)
        done = await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
        assert done.source == "webhook"
        assert sandbox.stats().transactions == {order.transaction_id: 1}
        assert [p async for p in client.orders.outstanding()] == []


async def test_refused_before_handling_503_is_not_placed(sandbox: Sandbox) -> None:
    order = make_order()
    async with (
        FaultyProxy(sandbox.url, "503") as proxy,
        client_for(proxy.url, webhook=WebhookConfig(secret=HOOK_SECRET)) as client,
    ):
        with pytest.raises(SipsServerError) as info:
            await client.orders.enqueue(order)
        assert info.value.status == 503
        assert info.value.transaction_id == order.transaction_id
        assert info.value.maybe_placed is False
        assert proxy.enqueues == FAST_RETRY.max_tries  # 503 is safe to repeat
        assert [p async for p in client.orders.outstanding()] == []
        assert sandbox.stats().orders == 0


async def test_reconcile_finds_an_ambiguous_order_by_po(sandbox: Sandbox) -> None:
    order = make_order()
    async with (
        FaultyProxy(sandbox.url, "500") as proxy,
        client_for(proxy.url) as client,
    ):
        with pytest.raises(SipsServerError):
            await client.orders.enqueue(order)
        row = await client.orders._tracker.store.get(order.transaction_id)
        assert row is not None and row.order_id is None and row.queue_id is None
        await sandbox.wait_idle()
        report = await client.orders.reconcile()
        assert [r.transaction_id for r in report.resolved] == [order.transaction_id]
        found = report.resolved[0]
        assert found.po_number == "5641-8Test" and found.status == "Delivered"
        assert found.detail == "Order List PO 5641-8Test"
        assert found.order_id is not None and found.order_id.isdigit()
        assert [p async for p in client.orders.outstanding()] == []


# -- reconcile ------------------------------------------------------------------------


async def test_reconcile_reports_resolved_pending_and_not_found(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        Sandbox(SandboxConfig(step_delay=0.005)) as sb,
        client_for(sb.url) as client,
    ):
        done = [await client.orders.enqueue(o) for o in orders(3, "REC")]
        # Placeholder job account 1: SRS queues it, then drops it silently.
        lost = await client.orders.enqueue(
            make_order(job_account_number=1, po_details=None)
        )
        await sb.wait_idle()
        assert lost.transaction_id in sb.stats().dropped
        seen: list[tuple[int, int]] = []
        with caplog.at_level(logging.INFO, logger="sips_async"):
            report = await client.orders.reconcile(
                concurrency=2, progress=lambda d, t: seen.append((d, t))
            )
        assert {r.transaction_id for r in report.resolved} == {
            p.transaction_id for p in done
        }
        assert {r.po_number for r in report.resolved} == {"REC-0", "REC-1", "REC-2"}
        assert all(r.status == "Delivered" for r in report.resolved)
        assert [r.transaction_id for r in report.not_found] == [lost.transaction_id]
        assert report.pending == () and report.failed == () and report.total == 4
        assert seen[-1] == (4, 4) and len(seen) == 4
        assert "stays outstanding" in caplog.text
        left = [p.transaction_id async for p in client.orders.outstanding()]
        assert left == [lost.transaction_id]
        # A second reconcile asks about the one still outstanding only.
        again = await client.orders.reconcile()
        assert again.total == 1 and len(again.not_found) == 1
    with pytest.raises(SipsConfigError):
        await client.orders._poller.reconcile([], concurrency=0)


async def test_reconcile_counts_an_order_not_placed_yet_as_pending() -> None:
    async with (
        Sandbox(SandboxConfig(step_delay=30)) as sb,
        client_for(sb.url) as client,
    ):
        pending = await client.orders.enqueue(make_order())
        report = await client.orders.reconcile()
        assert [r.transaction_id for r in report.pending] == [pending.transaction_id]
        assert report.pending[0].status is None
        assert pending.history == []  # nothing to record yet


async def test_reconcile_failure_is_reported_not_raised(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'orders.db'}"
    async with (
        Sandbox(SandboxConfig(step_delay=30)) as sb,
        client_for(sb.url, store=store) as client,
    ):
        pending = await client.orders.enqueue(make_order())
    # The sandbox is gone: asking fails, the report says so.
    async with client_for(sb.url, store=store, retry=RetryConfig(max_tries=2)) as again:
        report = await again.orders.reconcile()
    assert [r.transaction_id for r in report.failed] == [pending.transaction_id]
    assert "SipsConnectionError" in report.failed[0].detail


async def test_a_poll_does_not_repeat_a_status_a_webhook_gave() -> None:
    clock = FakeClock()
    async with (
        StatusServer(["Processed", "Processed", "Delivered"], clock) as server,
        client_for(
            server.url,
            webhook=WebhookConfig(secret=HOOK_SECRET),
            poll=PollConfig(after=5, every=30),
        ) as client,
        aiohttp.ClientSession() as http,
    ):
        poller = client.orders._poller
        poller.clock, poller.sleep = clock, clock.sleep
        pending = await client.orders.enqueue(make_order())
        assert client.webhook_url is not None
        body = event_body(
            transaction_id=pending.transaction_id,
            event_type="OU",
            status="Processed",
            order_id="874",
        )
        reply = await post(http, client.webhook_url, body, secret=HOOK_SECRET)
        assert reply.status == 200
        done = await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
    assert len(server.gets) == 3
    assert [(u.source, str(u.status)) for u in pending.history] == [
        ("webhook", "Processed"),
        ("poll", "Delivered"),
    ]
    assert done.source == "poll"


# -- maybe_placed: a token failure before sending ------------------------------------


@pytest.mark.parametrize(
    ("token_failure", "error"),
    [
        ({"status": 500, "body": b"token service down"}, SipsServerError),
        ({"exception": aiohttp.ServerDisconnectedError()}, SipsConnectionError),
    ],
)
async def test_token_failure_before_sending_is_not_placed(
    token_failure: dict[str, Any], error: type[Exception]
) -> None:
    order = make_order()
    with aioresponses() as m:
        m.post(TOKEN_URL, repeat=True, **token_failure)
        async with SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=BASE,
            retry=RetryConfig(max_tries=2, initial_delay=0.001, max_delay=0.001),
        ) as client:
            with pytest.raises(error) as info:
                await client.orders.enqueue(order)
            assert info.value.transaction_id == order.transaction_id  # type: ignore[attr-defined]
            assert info.value.maybe_placed is False  # type: ignore[attr-defined]
            assert [p async for p in client.orders.outstanding()] == []
        assert not any(str(url).endswith("/async") for _, url in m.requests or {})


async def test_a_retry_whose_token_fails_keeps_an_earlier_maybe_placed() -> None:
    order = make_order()
    with aioresponses() as m:
        mock_token(m, expires_in="0.001")  # refreshed before every attempt
        m.post(ENQUEUE_URL, exception=aiohttp.ServerDisconnectedError())
        m.post(TOKEN_URL, status=500, body=b"down", repeat=True)
        async with SipsClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=BASE,
            retry=RetryConfig(
                max_tries=3, initial_delay=0.001, max_delay=0.001, submit="always"
            ),
        ) as client:
            with pytest.raises(SipsServerError) as info:
                await client.orders.enqueue(order)
            # The last failure is the token's, but the first attempt was
            # sent and reset: SRS may have the order.
            assert info.value.maybe_placed is True
            listed = [p.transaction_id async for p in client.orders.outstanding()]
            assert listed == [order.transaction_id]


def test_current_status_counts_a_poll_as_of_when_srs_answered() -> None:
    from sips_async._pending import Entry

    now = dt.datetime.now(dt.UTC)
    hooked = OrderUpdate(
        event_id="1",
        event_type="OU",
        event_status="Processed",
        status=OrderStatus.PROCESSED,
        occurred_at=now - dt.timedelta(minutes=10),
    )
    polled = poll_update(
        transaction_id="t", srs_id="9", status_text="Delivered", po_number=None, raw=b""
    )
    late = OrderUpdate(  # sent before the poll's answer, delivered after it
        event_id="2",
        event_type="OU",
        event_status="Shipment Created",
        status=OrderStatus.SHIPMENT_CREATED,
        occurred_at=(now - dt.timedelta(minutes=5)).replace(tzinfo=None),  # naive
    )
    entry = Entry("t")
    entry.add([hooked, polled, late])
    current = entry.current()
    assert current is polled and current.status == OrderStatus.DELIVERED
    newer = OrderUpdate(
        event_id="3",
        event_type="OU",
        event_status="Returned",
        status=OrderStatus.RETURNED,
        occurred_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1),
    )
    entry.add([newer])
    assert entry.current() is newer
