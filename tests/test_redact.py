"""Issue 11.5: a server that echoes the Authorization header leaks no token.

A real aiohttp server on loopback hands out tokens and answers the order
endpoint with 401, 400 or 500 bodies (flat, envelope, plain text) that echo
the request's ``Authorization`` header and the bare token. No exception text,
argument, attribute, log record (at DEBUG) or CLI stderr line may hold the
token or the client secret.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote_plus

import msgspec
import pytest
from aiohttp import web

from sips_async import (
    SipsAPIError,
    SipsAuthError,
    SipsError,
    SipsServerError,
    SipsValidationError,
)
from sips_async._redact import MASK, redact, redact_bytes
from tests._mock import FakeClock, make_client, serve
from tests.factories import CLIENT_ID, CLIENT_SECRET

#: Token values the server hands out: TOKEN-abc123-1, TOKEN-abc123-2, ...
TOKEN_PREFIX = "TOKEN-abc123-"


def _body(shape: str, status: int, auth: str, token: str) -> tuple[bytes, str]:
    """An error body in ``shape`` echoing ``auth`` (the header) and ``token``."""
    code = {401: "AUTHENTICATION_ERROR", 400: "INVALID_INPUT", 500: "GeneralError"}
    # A server that knows the client secret and says it (a proxy, a relay).
    said = f"rejected {auth}; token {token} not accepted for {CLIENT_SECRET}"
    if shape == "flat":
        doc: Any = {"code": code[status], "message": said}
        return msgspec.json.encode(doc), "application/json"
    if shape == "envelope":
        doc = {
            "error": {
                "code": code[status],
                "description": said,
                "source": f"https://srs.test/orders/874?access_token={token}",
                "status_code": status,
                "request": {"headers": {"Authorization": auth}},
                "access_token": token,
            }
        }
        return msgspec.json.encode(doc), "application/json"
    return f"{code[status]}: {said}\r\nAuthorization: {auth}".encode(), "text/plain"


class EchoSips:
    """Tokens on demand; ``/orders/{id}`` answers ``status`` in ``shape``."""

    def __init__(self, status: int, shape: str) -> None:
        self.status = status
        self.shape = shape
        self.tokens: list[str] = []
        self.echoed = 0
        self._n = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/authentication/token", self.token)
        app.router.add_get("/orders/{id}", self.order)

    async def token(self, request: web.Request) -> web.Response:
        token = f"{TOKEN_PREFIX}{next(self._n)}"
        self.tokens.append(token)
        return web.json_response({"access_token": token, "expires_in": 3600})

    async def order(self, request: web.Request) -> web.Response:
        auth = request.headers["Authorization"]
        body, content_type = _body(
            self.shape, self.status, auth, auth.removeprefix("Bearer ")
        )
        self.echoed += 1
        # Retry-After 0: a 500 is retried at once, nothing to wait for.
        return web.Response(
            status=self.status,
            body=body,
            content_type=content_type,
            headers={"Retry-After": "0"},
        )


def _every_text(exc: BaseException) -> list[str]:
    """str, repr, args, traceback and every attribute of ``exc``."""
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    texts.extend(repr(arg) for arg in exc.args)
    texts.extend(repr(value) for value in vars(exc).values())
    return texts


def _assert_no_secret(texts: list[str], secrets: list[str]) -> None:
    assert secrets
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked in {text[:300]!r}"
        assert TOKEN_PREFIX not in text, f"a token leaked in {text[:300]!r}"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every record of the ``sips_async`` logger at DEBUG, propagated or not."""
    logger = logging.getLogger("sips_async")
    handler = _Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _lines(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records] + [repr(r.args) for r in records]


@pytest.fixture
async def base_and_server(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[str, EchoSips]]:
    status, shape = request.param
    server = EchoSips(status, shape)
    async with serve(server.routes) as base:
        yield base, server


CASES = [
    (status, shape)
    for status in (401, 400, 500)
    for shape in ("flat", "envelope", "plain")
]
EXPECTED: dict[int, type[SipsAPIError]] = {
    401: SipsAuthError,
    400: SipsValidationError,
    500: SipsServerError,
}


@pytest.mark.parametrize(
    "base_and_server", CASES, indirect=True, ids=[f"{s}-{h}" for s, h in CASES]
)
async def test_echoed_authorization_reaches_no_message_attribute_or_log(
    base_and_server: tuple[str, EchoSips], records: list[logging.LogRecord]
) -> None:
    base, server = base_and_server
    clock = FakeClock()
    async with make_client(base_url=base, clock=clock) as client:
        with pytest.raises(SipsAPIError) as info:
            await client.orders.get(874)
    exc = info.value
    assert type(exc) is EXPECTED[server.status]
    assert exc.status == server.status
    # The server did echo: 401 twice (one refresh), 500 three times (retries).
    assert server.echoed == {401: 2, 400: 1, 500: 3}[server.status]
    assert len(server.tokens) == (2 if server.status == 401 else 1)
    # The echo was masked, not dropped: SRS's words are still there.
    assert "rejected Bearer ***" in exc.description
    assert f"token {MASK} not accepted for {MASK}" in exc.description
    assert b"rejected Bearer ***" in exc.raw
    texts = _every_text(exc)
    log_lines = _lines(records)
    assert any("/orders/874" in line for line in log_lines)
    _assert_no_secret(texts + log_lines, [*server.tokens, CLIENT_SECRET])


async def test_token_endpoint_echoing_the_form_leaks_no_secret(
    records: list[logging.LogRecord],
) -> None:
    form = (
        f"grant_type=client_credentials&client_id={CLIENT_ID}"
        f"&client_secret={quote_plus(CLIENT_SECRET)}"
    )

    async def token(request: web.Request) -> web.Response:
        echoed = await request.text()
        assert echoed == form or CLIENT_SECRET in echoed  # what was really sent
        doc = {"error": "invalid_client", "error_description": f"bad: {echoed}"}
        return web.json_response(doc, status=401)

    def routes(app: web.Application) -> None:
        app.router.add_post("/authentication/token", token)

    async with serve(routes) as base, make_client(base_url=base) as client:
        with pytest.raises(SipsAuthError) as info:
            await client.orders.get(874)
    assert "client_secret=***" in info.value.description
    texts = _every_text(info.value) + _lines(records)
    assert any("/authentication/token" in line for line in texts)
    _assert_no_secret(texts, [CLIENT_SECRET, quote_plus(CLIENT_SECRET)])


@pytest.mark.parametrize(
    ("status", "shape"),
    [(401, "envelope"), (400, "flat"), (500, "plain")],
    ids=["401-envelope", "400-flat", "500-plain"],
)
async def test_cli_stderr_holds_no_token(status: int, shape: str) -> None:
    server = EchoSips(status, shape)
    async with serve(server.routes) as base:
        env = {
            **os.environ,
            "SIPS_CLIENT_ID": CLIENT_ID,
            "SIPS_CLIENT_SECRET": CLIENT_SECRET,
            "SIPS_BASE_URL": base,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sips_async",
            "-v",  # DEBUG logging to stderr as well
            "get",
            "874",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    stderr = err.decode()
    assert proc.returncode != 0
    assert server.echoed >= 1  # the CLI really met the echoing server
    assert "error:" in stderr
    assert "/orders/874" in stderr  # the DEBUG lines are there
    _assert_no_secret([stderr, out.decode()], [*server.tokens, CLIENT_SECRET])


# --------------------------------------------------------------------------
# The function itself
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "HTTP 401 AUTHENTICATION_ERROR: rejected Bearer T-1.x_y~z+/=",
            "HTTP 401 AUTHENTICATION_ERROR: rejected Bearer ***",
        ),
        ("basic dXNlcjpwYXNz", "basic ***"),
        ("Authorization: Bearer abc\r\nHost: x", "Authorization: ***\r\nHost: x"),
        ('{"authorization": "Bearer abc"}', '{"authorization": "***"}'),
        ("proxy-authorization=abc; x", "proxy-authorization=***; x"),
        (
            "grant_type=client_credentials&client_secret=s%2Bc&client_id=me",
            "grant_type=client_credentials&client_secret=***&client_id=me",
        ),
        ("?access_token=abc&refresh_token=def", "?access_token=***&refresh_token=***"),
        (
            '{"access_token": "a\\"b", "expires_in": 3}',
            '{"access_token": "***", "expires_in": 3}',
        ),
        ("{'client_secret': 'x y', 'n': 1}", "{'client_secret': '***', 'n': 1}"),
        ('{"ID_TOKEN":"abc"}', '{"ID_TOKEN":"***"}'),
        ("Authorization failed, try again", "Authorization failed, try again"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_redact_patterns(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_known_secrets_in_every_encoding_longest_first() -> None:
    secret = "a+b/c=d e"
    text = f"raw {secret} plus {quote_plus(secret)} pct a%2Bb%2Fc%3Dd%20e"
    assert redact(text, (secret,)) == "raw *** plus *** pct ***"
    # A secret containing another is masked whole, not around the shorter one.
    # (Not alphabetical order: "SECRET" sorts after "A-SECRET-LONG".)
    assert redact("key=xx A-SECRET-LONG yy", ("SECRET", "A-SECRET-LONG")) == (
        "key=xx *** yy"
    )
    assert redact("a b", (None, "")) == "a b"


def test_redact_bytes_keeps_undecodable_bytes() -> None:
    assert redact_bytes(b"\xff\xfe Bearer abc \x80") == b"\xff\xfe Bearer *** \x80"
    assert redact_bytes(b"") == b""
    assert redact_bytes(b"tok-1 ok", ("tok-1",)) == b"*** ok"


def test_error_built_by_hand_is_masked_too() -> None:
    exc = SipsAPIError(
        "rejected Bearer abc",
        code="Bearer def",
        source="https://x/?access_token=ghi",
        raw=b'{"access_token": "jkl"}',
    )
    texts = _every_text(exc)
    for value in ("abc", "def", "ghi", "jkl"):
        assert all(value not in text for text in texts)
    assert exc.raw == b'{"access_token": "***"}'
    assert isinstance(exc, SipsError)
