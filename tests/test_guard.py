"""The receiver's guards: shared secret, signatures, IP allow-list.

Every refused request must leave the awaited order untouched; each test ends
with a good request to show the waiter was listening all along.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from yarl import URL

from sips_async import (
    PendingOrder,
    SipsClient,
    SipsConfigError,
    WebhookConfig,
    WebhookReceiver,
    sign_headers,
)
from sips_async.webhooks import SECRET_HEADER

from ._fake_sips import post, raw_http
from .factories import CLIENT_ID, CLIENT_SECRET, HOOK_SECRET, event_body

TXN = "txn-guarded"
BODY = event_body(transaction_id=TXN)
NOW = 1_800_000_000
OLD_KEY = "whsec_" + base64.b64encode(b"the-old-signing-key-0123456789").decode()
NEW_KEY = "plain-new-signing-key-abcdef"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@asynccontextmanager
async def guarded(
    config: WebhookConfig, *, clock: Callable[[], float] = lambda: NOW + 0.25
) -> AsyncIterator[tuple[WebhookReceiver, str, PendingOrder]]:
    """A started receiver, its base URL (no secret segment) and a waiter on TXN."""
    async with WebhookReceiver(config, clock=clock) as receiver:
        url = receiver.url
        assert url is not None
        if config.secret:
            url = url.removesuffix("/" + config.secret)
        client = SipsClient(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, webhook=receiver
        )
        yield receiver, url, await client.orders.track(TXN)


def untouched(receiver: WebhookReceiver, pending: PendingOrder) -> None:
    assert pending.history == []
    assert receiver.tracker.received == 0
    assert receiver.tracker.duplicates == 0


async def resolves(pending: PendingOrder) -> None:
    update = await pending.wait(timeout=5)
    assert update.raw == BODY


# -- shared secret --------------------------------------------------------------


async def test_secret_in_path_or_header(session: aiohttp.ClientSession) -> None:
    async with guarded(WebhookConfig(secret=HOOK_SECRET)) as (receiver, base, pending):
        refused = [
            await post(session, base, BODY),  # no secret at all
            await post(session, f"{base}/{'x' * len(HOOK_SECRET)}", BODY),
            await post(session, f"{base}/{HOOK_SECRET[:-1]}", BODY),  # a prefix
            await post(session, f"{base}/{HOOK_SECRET}x", BODY),
            await post(session, base, BODY, secret="wrong-secret-0123456789"),
            await post(session, base, BODY, secret=HOOK_SECRET.upper()),
            await post(session, base, BODY, secret=""),
            # A wrong path secret is not rescued by a right header.
            await post(session, f"{base}/{'y' * 20}", BODY, secret=HOOK_SECRET),
        ]
        assert [r.status for r in refused] == [401] * len(refused)
        assert all(
            r.body == {"ok": False, "error": "missing or wrong secret"} for r in refused
        )
        untouched(receiver, pending)

        assert receiver.url == f"{base}/{HOOK_SECRET}"
        assert (await post(session, f"{base}/{HOOK_SECRET}", BODY)).status == 200
        await resolves(pending)
        again = await post(session, base, BODY, secret=HOOK_SECRET)
        assert again.status == 200 and again.body["duplicate"] is True


async def test_secret_header_with_undecodable_bytes_is_401() -> None:
    async with guarded(WebhookConfig(secret=HOOK_SECRET)) as (receiver, base, pending):
        url = URL(base)
        assert url.host is not None and url.port is not None
        for value in (b"\xff\xfe\x80", "é".encode() + HOOK_SECRET.encode()):
            request = (
                b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"%s: %s\r\nContent-Length: %d\r\n\r\n%s"
                % (url.path.encode(), SECRET_HEADER.encode(), value, len(BODY), BODY)
            )
            status, _, body = await raw_http(url.host, url.port, request)
            assert status == 401, body
        untouched(receiver, pending)


# -- signatures --------------------------------------------------------------------


async def test_signatures_with_rotation(session: aiohttp.ClientSession) -> None:
    config = WebhookConfig(signing_secrets=(OLD_KEY, NEW_KEY))
    async with guarded(config) as (receiver, base, pending):
        assert receiver.url == base  # no secret segment without a secret
        good_old = sign_headers(OLD_KEY, BODY, timestamp=NOW, msg_id="m1")
        good_new = sign_headers(NEW_KEY, BODY, timestamp=NOW, msg_id="m2")
        other = sign_headers("some-other-key-0123456", BODY, timestamp=NOW)
        tampered = sign_headers(NEW_KEY, BODY + b" ", timestamp=NOW)
        moved_id = {**good_new, "webhook-id": "m3"}
        v2_only = {
            **good_new,
            "webhook-signature": good_new["webhook-signature"].replace("v1,", "v2,"),
        }
        cases: list[tuple[dict[str, str], str]] = [
            ({}, "missing signature headers"),
            ({k: v for k, v in good_new.items() if k != "webhook-id"}, "missing"),
            (other, "no valid signature"),
            (tampered, "no valid signature"),
            (moved_id, "no valid signature"),
            (v2_only, "no valid signature"),
            ({**good_new, "webhook-timestamp": "soon"}, "bad signature timestamp"),
            (sign_headers(NEW_KEY, BODY, timestamp=NOW - 301), "outside tolerance"),
            (sign_headers(NEW_KEY, BODY, timestamp=NOW + 301), "outside tolerance"),
            ({**good_new, "webhook-timestamp": "9" * 400}, "timestamp"),
            ({**good_new, "webhook-timestamp": "-1"}, "timestamp"),
        ]
        for headers, reason in cases:
            reply = await post(session, base, BODY, headers=headers)
            assert reply.status == 401, (headers, reply)
            assert reason in reply.body["error"]
        untouched(receiver, pending)

        for headers in (good_old, good_new):
            assert (await post(session, base, BODY, headers=headers)).status == 200
        await resolves(pending)
        assert receiver.tracker.received == 1 and receiver.tracker.duplicates == 1

        # Several signatures in one header (as during a rotation): any may match.
        body = event_body(transaction_id=TXN, event_id="2", event_type="OU")
        signed = sign_headers(OLD_KEY, body, timestamp=NOW - 299)
        signed["webhook-signature"] = "v1,AAAA v1a,junk " + signed["webhook-signature"]
        assert (await post(session, base, body, headers=signed)).status == 200


async def test_signature_headers_with_undecodable_bytes_are_401() -> None:
    config = WebhookConfig(signing_secrets=(NEW_KEY,))
    async with guarded(config) as (receiver, base, pending):
        url = URL(base)
        assert url.host is not None and url.port is not None
        for msg_id, signature in ((b"m\xff", b"v1,x"), (b"m", b"v1,\xfe")):
            header = (
                b"webhook-id: %s\r\nwebhook-timestamp: %%d\r\n"
                b"webhook-signature: %s\r\n" % (msg_id, signature)
            )
            request = (
                b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                % url.path.encode()
                + header % NOW
                + b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
            )
            status, _, body = await raw_http(url.host, url.port, request)
            assert status == 401, body
        untouched(receiver, pending)


async def test_secret_and_signature_both_required(
    session: aiohttp.ClientSession,
) -> None:
    config = WebhookConfig(secret=HOOK_SECRET, signing_secrets=(NEW_KEY,))
    async with guarded(config) as (receiver, base, pending):
        signed = sign_headers(NEW_KEY, BODY, timestamp=NOW)
        assert (await post(session, base, BODY, headers=signed)).status == 401
        no_sig = await post(session, base, BODY, secret=HOOK_SECRET)
        assert no_sig.status == 401
        untouched(receiver, pending)
        ok = await post(session, f"{base}/{HOOK_SECRET}", BODY, headers=signed)
        assert ok.status == 200
        await resolves(pending)


# -- IP allow-list -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        ((), None, 403),
        ((), "10.1.2.3", 403),  # X-Forwarded-For from an untrusted peer is ignored
        (("127.0.0.0/8",), None, 403),
        (("127.0.0.0/8",), "8.8.8.8", 403),
        (("127.0.0.0/8",), "10.1.2.3, 8.8.8.8", 403),  # nearest untrusted hop counts
        (("127.0.0.0/8",), "not-an-ip", 403),
        (("127.0.0.0/8",), "10.1.2.3", 200),
        (("127.0.0.0/8",), "8.8.8.8, 10.1.2.3, 127.0.0.5", 200),
    ],
)
async def test_ip_allow_list_and_forwarded_for(
    session: aiohttp.ClientSession,
    trusted: tuple[str, ...],
    forwarded: str | None,
    expected: int,
) -> None:
    config = WebhookConfig(allowed_ips=("10.0.0.0/8",), trusted_proxies=trusted)
    async with guarded(config) as (receiver, base, pending):
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        reply = await post(session, base, BODY, headers=headers)
        assert reply.status == expected
        if expected == 200:
            await resolves(pending)
        else:
            assert reply.body == {"ok": False, "error": "address not allowed"}
            untouched(receiver, pending)


async def test_allow_list_checked_before_secret(session: aiohttp.ClientSession) -> None:
    config = WebhookConfig(secret=HOOK_SECRET, allowed_ips=("192.0.2.0/24",))
    async with guarded(config) as (receiver, base, pending):
        assert (await post(session, f"{base}/{HOOK_SECRET}", BODY)).status == 403
        assert (await post(session, base, BODY, secret="bad" * 8)).status == 403
        untouched(receiver, pending)
    config = WebhookConfig(secret=HOOK_SECRET, allowed_ips=("127.0.0.1/32", "::1"))
    async with guarded(config) as (receiver, base, pending):
        assert (await post(session, base, BODY, secret="bad" * 8)).status == 401
        untouched(receiver, pending)
        assert (await post(session, f"{base}/{HOOK_SECRET}", BODY)).status == 200
        await resolves(pending)


# -- no guard ------------------------------------------------------------


async def test_receiver_without_guard_needs_insecure(
    session: aiohttp.ClientSession,
) -> None:
    with pytest.raises(SipsConfigError, match="no guard"):
        WebhookReceiver(WebhookConfig())
    with pytest.raises(SipsConfigError, match="no guard"):
        WebhookReceiver()
    with pytest.raises(SipsConfigError, match="no guard"):
        SipsClient(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, webhook=WebhookConfig()
        )
    with pytest.raises(SipsConfigError):
        WebhookConfig(secret="short")
    async with guarded(WebhookConfig(insecure=True)) as (_, base, pending):
        reply = await post(session, base, BODY)
        assert reply.status == 200
        assert json.loads(pending.history[0].raw) == json.loads(BODY)
        await resolves(pending)
