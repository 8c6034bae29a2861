"""Interop with the real ``standardwebhooks`` and ``svix`` libraries (issue 12).

Their signatures are accepted by a real receiver, ``sign_headers`` output is
accepted by their verifiers, in both header spellings, with rotation, and
secrets are decoded to the same key whether or not they carry the
``whsec_`` prefix and the ``=`` padding.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
import standardwebhooks
import svix.webhooks
from hypothesis import given
from hypothesis import strategies as st

from sips_async import (
    SipsConfigError,
    WebhookConfig,
    WebhookReceiver,
    WebhookVerificationError,
    sign_headers,
)
from sips_async.sandbox import SandboxConfig
from sips_async.webhooks import verify
from sips_async.webhooks._guard import signing_key

from .factories import event_body

#: The Standard Webhooks specification's example (spec/standard-webhooks.md).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_PAYLOAD = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

KEY = b"interop-signing-key-0123456789-abcdef"  # 37 bytes: base64 needs padding
PADDED = "whsec_" + base64.b64encode(KEY).decode()
UNPADDED = PADDED.rstrip("=")
BARE = base64.b64encode(KEY).decode().rstrip("=")  # no prefix, no padding
OLD = "whsec_" + base64.b64encode(b"the-old-key-that-is-rotating-out").decode()
BODY = event_body(transaction_id="txn-interop")


def _their_headers(secret: str, body: bytes, *, spelling: str) -> dict[str, str]:
    msg_id = f"msg_{time.time_ns()}"
    now = dt.datetime.now(dt.UTC)
    signature = svix.webhooks.Webhook(secret).sign(msg_id, now, body.decode())
    return {
        f"{spelling}-id": msg_id,
        f"{spelling}-timestamp": str(int(now.timestamp())),
        f"{spelling}-signature": signature,
        "Content-Type": "application/json",
    }


def _svix_spelling(headers: dict[str, str]) -> dict[str, str]:
    return {k.replace("webhook-", "svix-"): v for k, v in headers.items()}


# -- keys -------------------------------------------------------------------------


def test_spec_known_answer() -> None:
    headers = sign_headers(
        SPEC_SECRET, SPEC_PAYLOAD, msg_id=SPEC_ID, timestamp=SPEC_TIMESTAMP
    )
    assert headers["webhook-signature"] == SPEC_SIGNATURE
    for same in (SPEC_SECRET.removeprefix("whsec_"), SPEC_SECRET + "=="):
        again = sign_headers(
            same, SPEC_PAYLOAD, msg_id=SPEC_ID, timestamp=SPEC_TIMESTAMP
        )
        assert again["webhook-signature"] == SPEC_SIGNATURE
    verify(
        SPEC_PAYLOAD,
        {
            "webhook-id": SPEC_ID,
            "webhook-timestamp": str(SPEC_TIMESTAMP),
            "webhook-signature": SPEC_SIGNATURE,
        },
        secrets=SPEC_SECRET,
        now=SPEC_TIMESTAMP + 1,
    )


@given(key=st.binary(min_size=1, max_size=64), prefix=st.booleans(), pad=st.booleans())
def test_key_decoding_matches_standardwebhooks(
    key: bytes, prefix: bool, pad: bool
) -> None:
    text = base64.b64encode(key).decode()
    if not pad:
        text = text.rstrip("=")
    if prefix:
        text = "whsec_" + text
    theirs = standardwebhooks.Webhook(text)._whsecret
    assert signing_key(text) == theirs == key


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_this is not base64!",
        "whsec_",
        "",
        "plain-text-secret",  # '-' is outside the alphabet: they would drop it
        "whsec_abc_def",
        "whsec_A",  # an impossible length
        "whsec_AB=C",
    ],
)
def test_a_secret_that_is_not_base64_is_a_config_error(secret: str) -> None:
    with pytest.raises(SipsConfigError) as info:
        signing_key(secret)
    if len(secret) > 6:
        assert secret not in str(info.value)
    with pytest.raises(SipsConfigError):
        WebhookConfig(signing_secrets=(secret,))
    with pytest.raises(SipsConfigError):
        sign_headers(secret, BODY)
    with pytest.raises(SipsConfigError):
        SandboxConfig(signing_secret=secret)


# -- their signatures, our receiver ------------------------------------------------


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.mark.parametrize("spelling", ["webhook", "svix"])
@pytest.mark.parametrize("configured", [PADDED, UNPADDED, BARE])
async def test_their_signatures_are_accepted_by_the_receiver(
    session: aiohttp.ClientSession, spelling: str, configured: str
) -> None:
    config = WebhookConfig(signing_secrets=(OLD, configured))  # rotation: both
    async with WebhookReceiver(config) as receiver:
        url = receiver.url
        assert url is not None
        for i, signer in enumerate((OLD, PADDED, UNPADDED)):
            body = event_body(transaction_id="txn-interop", event_id=str(i))
            headers = _their_headers(signer, body, spelling=spelling)
            async with session.post(url, data=body, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
        stranger = _their_headers(
            "whsec_" + base64.b64encode(b"someone else").decode(),
            BODY,
            spelling=spelling,
        )
        async with session.post(url, data=BODY, headers=stranger) as resp:
            assert resp.status == 401
            assert json.loads(await resp.read())["error"] == "no valid signature"
        assert receiver.tracker.received == 3


async def test_svix_spelling_wins_over_webhook_spelling(
    session: aiohttp.ClientSession,
) -> None:
    # svix's verifier reads svix-* first; a stale webhook-* set beside it
    # must not decide.
    config = WebhookConfig(signing_secrets=(PADDED,))
    async with WebhookReceiver(config) as receiver:
        assert receiver.url is not None
        good = _their_headers(PADDED, BODY, spelling="svix")
        stale = {
            "webhook-id": "x",
            "webhook-timestamp": "1",
            "webhook-signature": "v1,x",
        }
        async with session.post(
            receiver.url, data=BODY, headers={**stale, **good}
        ) as resp:
            assert resp.status == 200


# -- our signatures, their verifiers -----------------------------------------------


@pytest.mark.parametrize("ours", [PADDED, UNPADDED, BARE])
def test_sign_headers_is_accepted_by_their_verifiers(ours: str) -> None:
    headers = sign_headers(ours, BODY)
    for theirs in (PADDED, UNPADDED, BARE):
        assert standardwebhooks.Webhook(theirs).verify(BODY, headers) == json.loads(
            BODY
        )
        svix.webhooks.Webhook(theirs).verify(BODY, headers)
        svix.webhooks.Webhook(theirs).verify(BODY, _svix_spelling(headers))
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(OLD).verify(BODY, headers)
    with pytest.raises(svix.webhooks.WebhookVerificationError):
        svix.webhooks.Webhook(PADDED).verify(BODY + b" ", headers)


def test_rotation_header_with_several_signatures_verifies_on_both_sides() -> None:
    old = sign_headers(OLD, BODY, msg_id="msg_rot", timestamp=int(time.time()))
    new = sign_headers(
        PADDED, BODY, msg_id="msg_rot", timestamp=int(old["webhook-timestamp"])
    )
    both = {
        **new,
        "webhook-signature": f"{old['webhook-signature']} {new['webhook-signature']}",
    }
    for secret in (OLD, PADDED):
        standardwebhooks.Webhook(secret).verify(BODY, both)
        verify(BODY, both, secrets=secret)
    verify(BODY, both, secrets=[UNPADDED, OLD])


# -- verify(): the framework-neutral check ------------------------------------------


def test_verify_takes_their_headers_in_any_case_and_spelling() -> None:
    for spelling in ("webhook", "svix"):
        headers = _their_headers(UNPADDED, BODY, spelling=spelling)
        verify(BODY, headers, secrets=BARE)
        verify(BODY, {k.upper(): v for k, v in headers.items()}, secrets=[OLD, PADDED])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h: {}, "missing signature headers"),
        (lambda h: {**h, "webhook-timestamp": "1"}, "outside tolerance"),
        (lambda h: {**h, "webhook-timestamp": "soon"}, "bad signature timestamp"),
        (lambda h: {**h, "webhook-id": "msg_other"}, "no valid signature"),
    ],
)
def test_verify_raises_webhook_verification_error(
    change: Callable[[dict[str, str]], dict[str, str]], reason: str
) -> None:
    headers = change(sign_headers(PADDED, BODY))
    with pytest.raises(WebhookVerificationError, match=reason) as info:
        verify(BODY, headers, secrets=PADDED)
    assert reason in info.value.reason
    assert PADDED not in str(info.value)


def test_verify_needs_a_secret() -> None:
    with pytest.raises(SipsConfigError):
        verify(BODY, sign_headers(PADDED, BODY), secrets=[])
