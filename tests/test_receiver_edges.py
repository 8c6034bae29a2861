"""The receiver at its edges: bodies read in several pieces, exactly at the cap,
response types, its config errors, restart, repr and what it logs.

Real receivers on 127.0.0.1, port 0; a real aiohttp client posts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from sips_async import OrderUpdate, SipsConfigError, SipsStoreError, WebhookConfig
from sips_async.stores import MemoryStore, Recorded
from sips_async.webhooks import SECRET_HEADER, WebhookReceiver, sign_headers

from .factories import HOOK_SECRET, event_body

SIGNING = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def padded(size: int) -> bytes:
    """A valid event body of exactly ``size`` bytes (an unknown field pads it)."""
    base = event_body(transaction_id="T-1", pad="")
    return event_body(transaction_id="T-1", pad="x" * (size - len(base)))


async def post(
    session: aiohttp.ClientSession, url: str, body: bytes
) -> tuple[int, str, bytes]:
    headers = {SECRET_HEADER: HOOK_SECRET, "Content-Type": "application/json"}
    async with session.post(url, data=body, headers=headers) as resp:
        return resp.status, resp.content_type, await resp.read()


async def test_a_body_read_in_several_pieces_is_joined_exactly(
    session: aiohttp.ClientSession,
) -> None:
    body = padded(100_000)  # several reads, whatever the read size
    config = WebhookConfig(secret=HOOK_SECRET, max_body_size=len(body))
    async with WebhookReceiver(config) as receiver:
        url = receiver.url
        assert url is not None
        got: list[bytes] = []
        receiver.on_update(lambda u: got.append(u.raw))
        status, ctype, _ = await post(session, url.rsplit("/", 1)[0], body)
    assert (status, ctype) == (200, "application/json")
    assert got == [body]  # exactly the bytes sent, at exactly the cap


async def test_a_small_body_of_exactly_the_cap_is_let_in(
    session: aiohttp.ClientSession,
) -> None:
    body = padded(600)
    config = WebhookConfig(secret=HOOK_SECRET, max_body_size=len(body))
    async with WebhookReceiver(config) as receiver:
        url = receiver.url
        assert url is not None
        base = url.rsplit("/", 1)[0]
        assert (await post(session, base, body))[0] == 200
        status, ctype, answer = await post(session, base, padded(601))
    assert (status, ctype) == (413, "application/json")
    assert json.loads(answer) == {"ok": False, "error": "body too large"}


class BrokenStore(MemoryStore):
    async def record(self, update: OrderUpdate) -> Recorded:
        raise SipsStoreError("disk full")


async def test_a_store_failure_is_a_503_saying_deliver_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET), store=BrokenStore())
    with caplog.at_level(logging.ERROR, logger="sips_async"):
        answer = await receiver.process(
            event_body(transaction_id="T-1", event_type="OU", event_id="42"),
            {"Content-Type": "application/json"},
            token=HOOK_SECRET,
        )
    assert answer.status == 503
    assert json.loads(answer.body) == {
        "ok": False,
        "error": "update not stored; deliver it again",
    }
    assert caplog.messages == [
        "webhook OU 42 not stored, answered 503 so SRS delivers it again: "
        "the order store failed: disk full"
    ]
    await receiver.aclose()


async def test_process_checks_signatures_against_its_clock() -> None:
    body = event_body(transaction_id="T-1")
    headers = sign_headers(SIGNING, body, timestamp=1_800_000_000)
    receiver = WebhookReceiver(
        WebhookConfig(signing_secrets=(SIGNING,)), clock=lambda: 1_800_000_100.0
    )
    assert (await receiver.process(body, headers)).status == 200
    late = WebhookReceiver(
        WebhookConfig(signing_secrets=(SIGNING,)), clock=lambda: 1_800_000_301.0
    )
    answer = await late.process(body, headers)
    assert answer.status == 401
    await receiver.aclose()
    await late.aclose()


async def test_a_refusal_is_logged_with_its_status_and_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    with caplog.at_level(logging.INFO, logger="sips_async"):
        answer = await receiver.process(b"{}", {}, token="wrong")
    assert answer.status == 401
    assert "webhook refused: 401 missing or wrong secret" in caplog.messages
    await receiver.aclose()


def test_config_errors_say_what_to_do(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(SipsConfigError) as caught:
        WebhookReceiver(WebhookConfig())
    assert str(caught.value) == (
        "the webhook receiver has no guard: set secret=, signing_secrets= "
        "or allowed_ips= (SRS signs nothing; a /0 network is no guard), "
        "or insecure=True to accept unauthenticated posts on purpose"
    )
    with pytest.raises(SipsConfigError) as caught:
        WebhookReceiver(
            WebhookConfig(secret=HOOK_SECRET), store=MemoryStore(), tracker=None
        ).setup(aiohttp.web.Application(), path="hooks")
    assert str(caught.value) == "the webhook path must start with '/'"
    with caplog.at_level(logging.WARNING, logger="sips_async"):
        WebhookReceiver(WebhookConfig(secret=HOOK_SECRET, allowed_ips=("0.0.0.0/0",)))
    assert caplog.messages == [
        "webhook allowed_ips admits every address (a /0 network): it guards "
        "nothing; list SRS's networks, or use secret="
    ]


async def test_store_and_tracker_together_are_refused() -> None:
    first = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    with pytest.raises(SipsConfigError) as caught:
        WebhookReceiver(
            WebhookConfig(secret=HOOK_SECRET),
            tracker=first.tracker,
            store=MemoryStore(),
        )
    assert str(caught.value) == "pass store= or tracker=, not both"
    shared = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET), tracker=first.tracker)
    assert shared.tracker is first.tracker
    await first.aclose()


async def test_start_twice_is_refused_and_a_stopped_receiver_starts_again(
    session: aiohttp.ClientSession,
) -> None:
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    assert repr(receiver) == "<WebhookReceiver path='/srs/webhook' not listening>"
    url = await receiver.start()
    host, port = url.split("//")[1].split("/")[0].split(":")
    assert repr(receiver) == f"<WebhookReceiver path='/srs/webhook' {host}:{port}>"
    with pytest.raises(SipsConfigError) as caught:
        await receiver.start()
    assert str(caught.value) == "the webhook receiver is already started"
    await receiver.stop()
    url = await receiver.start()
    status, _, _ = await post(
        session, url.rsplit("/", 1)[0], event_body(transaction_id="T-1")
    )
    assert status == 200
    await receiver.aclose()


async def test_a_path_with_a_trailing_slash_is_served_without_it(
    session: aiohttp.ClientSession,
) -> None:
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET, path="/hooks/"))
    url = await receiver.start()
    base = url.split("/hooks")[0]
    body = event_body(transaction_id="T-1")
    assert (await post(session, base + "/hooks", body))[0] == 200
    json_type = {"Content-Type": "application/json"}
    async with session.post(
        base + "/hooks/" + HOOK_SECRET, data=body, headers=json_type
    ) as resp:
        assert resp.status == 200
    await receiver.aclose()


@pytest.mark.parametrize("path", ["/srs/webhook", "/hooks/in"])
async def test_its_own_server_answers_only_its_routes(
    session: aiohttp.ClientSession, path: str
) -> None:
    # The receiver's own server matches its routes by hand (no router):
    # the path, the path plus the secret, nothing else; POST only.
    config = WebhookConfig(secret=HOOK_SECRET, path=path + "/")
    async with WebhookReceiver(config) as receiver:
        url = receiver.url
        assert url is not None
        root = url.split(path)[0]
        body = event_body(transaction_id="T-routes")
        assert (await post(session, root + path, body))[0] == 200
        assert (await post(session, f"{root}{path}/{HOOK_SECRET}", body))[0] == 200
        for wrong in (
            f"{root}/",
            f"{root}{path}x",
            f"{root}{path}/",
            f"{root}{path}/{HOOK_SECRET}/more",
            f"{root}/elsewhere{path}",
        ):
            status, ctype, text = await post(session, wrong, body)
            assert (status, ctype) == (404, "application/json"), wrong
            assert json.loads(text) == {"ok": False, "error": "not found"}
        assert (await post(session, f"{root}{path}/wrong-token", body))[0] == 401
        for method in ("GET", "PUT", "DELETE"):
            async with session.request(method, root + path) as resp:
                assert resp.status == 405, method
                assert resp.headers["Allow"] == "POST"
        assert receiver.tracker.received == 1  # the replay counted once


async def test_without_a_secret_the_token_route_does_not_exist(
    session: aiohttp.ClientSession,
) -> None:
    config = WebhookConfig(insecure=True)
    async with WebhookReceiver(config) as receiver:
        url = receiver.url
        assert url is not None
        body = event_body(transaction_id="T-no-token")
        assert (await post(session, url, body))[0] == 200
        assert (await post(session, url + "/anything", body))[0] == 404
