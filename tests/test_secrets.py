"""No client secret, access token or webhook secret in logs, errors or reprs."""

from __future__ import annotations

import logging
import traceback

import aiohttp
import pytest
from aioresponses import aioresponses

from sips_async import (
    RetryConfig,
    SipsAuthError,
    SipsError,
    SipsNotFoundError,
    WebhookConfig,
)
from tests._mock import (
    ACCESS_TOKEN,
    SEED_401,
    SEED_404,
    SEED_ORDER,
    SUBMIT_URL,
    TOKEN_URL,
    FakeClock,
    count,
    make_client,
    mock_token,
    order_url,
)
from tests.factories import CLIENT_ID, CLIENT_SECRET, HOOK_SECRET, make_order

URL = order_url(874)
SECOND_TOKEN = "eyJ-second-access-token-SECRET-77"
SECRETS = (CLIENT_SECRET, ACCESS_TOKEN, SECOND_TOKEN)
#: A token endpoint that echoes what it was sent (it happens).
ECHO = (
    f'{{"error": "invalid_client", "error_description": "bad client_secret '
    f'{CLIENT_SECRET} for {CLIENT_ID}"}}'
).encode()


def _texts(exc: BaseException) -> list[str]:
    """Every way an exception is commonly shown."""
    out = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    out.extend(repr(arg) for arg in exc.args)
    for name in ("description", "code", "source", "raw", "path"):
        out.append(repr(getattr(exc, name, None)))
    return out


def _assert_clean(texts: list[str], secrets: tuple[str, ...] = SECRETS) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"secret leaked in: {text[:200]!r}"


async def test_no_secret_in_logs_errors_or_reprs_through_a_full_flow(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sips_async")
    errors: list[BaseException] = []
    reprs: list[str] = []
    with aioresponses() as m:
        # 1. The token endpoint fails, echoing the secret; retried.
        m.post(TOKEN_URL, status=500, body=ECHO)
        mock_token(m, ACCESS_TOKEN)
        # 2. A 401 forces a refresh; then 503 and a reset are retried.
        m.get(URL, status=401, body=SEED_401)
        mock_token(m, SECOND_TOKEN)
        m.get(URL, status=503, headers={"Retry-After": "1"})
        m.get(URL, exception=aiohttp.ServerDisconnectedError())
        m.get(URL, body=SEED_ORDER)
        # 3. Errors that end a call.
        m.get(order_url(17580), status=404, body=SEED_404)
        m.post(SUBMIT_URL, status=500, body=b"GeneralError")
        client = make_client(retry=RetryConfig(max_tries=4), clock=clock)
        reprs.append(repr(client))
        async with client:
            order = await client.orders.get(874)
            reprs.extend([repr(client), repr(order)])
            for call in (
                client.orders.get(17580),
                client.orders.submit(make_order()),
            ):
                with pytest.raises(SipsError) as info:
                    await call
                errors.append(info.value)
            # 4. SRS drops the token; the new token request is refused and
            # its body echoes the secret.
            m.get(URL, status=401, body=SEED_401)
            m.post(TOKEN_URL, status=401, body=ECHO)
            with pytest.raises(SipsAuthError) as refused:
                await client.orders.get(874)
            errors.append(refused.value)
        reprs.append(repr(client))
        assert count(m, "POST", TOKEN_URL) == 4
        assert count(m, "GET", URL) == 5
    assert len(clock.delays) == 3
    assert isinstance(errors[0], SipsNotFoundError)
    assert refused.value.status == 401
    assert b"***" in refused.value.raw  # the echo was redacted, not dropped

    records = caplog.records
    assert any(r.name == "sips_async" for r in records)
    assert any("retry" in r.getMessage() for r in records)
    log_texts = []
    for record in records:
        log_texts.append(record.getMessage())
        log_texts.append(repr(record.args))
        log_texts.append(record.exc_text or "")
    log_texts.append(caplog.text)
    _assert_clean(log_texts)
    for exc in errors:
        _assert_clean(_texts(exc))
    _assert_clean(reprs)


async def test_token_error_never_echoes_client_id_or_secret() -> None:
    with aioresponses() as m:
        m.post(TOKEN_URL, status=400, body=ECHO)
        async with make_client() as client:
            with pytest.raises(SipsAuthError) as info:
                await client.orders.get(874)
    _assert_clean(_texts(info.value), (CLIENT_SECRET, CLIENT_ID))


async def test_unreadable_token_answer_does_not_echo_it() -> None:
    with aioresponses() as m:
        m.post(TOKEN_URL, body=f'{{"access_token": "{ACCESS_TOKEN}"'.encode())
        async with make_client() as client:
            with pytest.raises(SipsError) as info:
                await client.orders.get(874)
    _assert_clean(_texts(info.value))


async def test_webhook_secret_not_in_client_repr() -> None:
    config = WebhookConfig(host="127.0.0.1", port=0, secret=HOOK_SECRET)
    assert HOOK_SECRET not in repr(config)
    client = make_client(webhook=config)
    before = repr(client)
    async with client:
        assert client.webhook_url is not None
        assert client.webhook_url.endswith("/" + HOOK_SECRET)  # what SRS needs
        during = repr(client)
        safe = client.webhook_url_safe
        receiver = repr(client.receiver)
    after = repr(client)
    assert "webhook=http://127.0.0.1:" in during
    for text in (before, during, after, safe, receiver):
        assert text is not None
        assert HOOK_SECRET not in text
        assert CLIENT_SECRET not in text


def test_redact_catches_form_encoded_echoes() -> None:
    from urllib.parse import quote, quote_plus

    from sips_async._redact import redact

    secret = "a+b/c=d e"
    text = f"raw {secret} plus {quote_plus(secret)} pct {quote(secret, safe='')}"
    cleaned = redact(text, (secret,))
    assert cleaned == "raw *** plus *** pct ***"
