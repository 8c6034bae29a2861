"""Receiver hardening (issue 11): proxies, encodings, bounds, secrets, log noise.

Every server is real, on 127.0.0.1 port 0; malformed requests go over raw
sockets, since no HTTP client sends them.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from yarl import URL

from sips_async import (
    OrderUpdate,
    SipsConfigError,
    SipsStoreError,
    WebhookConfig,
    WebhookReceiver,
)
from sips_async.stores import Recorded
from sips_async.webhooks import SECRET_HEADER, MemoryStore
from sips_async.webhooks._server import QuietServerLog

from ._fake_sips import raw_http
from .factories import HOOK_SECRET, event_body

BODY = event_body(transaction_id="txn-hard")


def _where(url: str | None) -> tuple[str, int, str]:
    assert url is not None
    parsed = URL(url)
    assert parsed.host is not None and parsed.port is not None
    return parsed.host, parsed.port, parsed.path


def _request(path: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode() + b"\r\n" + body


def _plain(body: bytes) -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]


async def _serve(app: web.Application) -> tuple[web.AppRunner, str, int]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, str(host), int(port)


@asynccontextmanager
async def mounted(receiver: WebhookReceiver) -> AsyncIterator[tuple[str, int, str]]:
    """The receiver mounted as a subapp (README way 3) under /hooks."""
    app = web.Application()
    app.add_subapp("/hooks", receiver.app)
    runner, host, port = await _serve(app)
    try:
        yield host, port, f"/hooks{receiver.config.path}/{HOOK_SECRET}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def listening(receiver: WebhookReceiver) -> AsyncIterator[tuple[str, int, str]]:
    async with receiver:
        yield _where(receiver.url)


# -- X-Forwarded-For ------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["10.1.2.3, 203.0.113.7"], 403),
        (["10.1.2.3", "203.0.113.7"], 403),  # the bypass: the same chain, two lines
        (["203.0.113.7", "10.1.2.3"], 200),  # nearest hop last, on its own line
        (["203.0.113.7, 10.1.2.3"], 200),
    ],
)
async def test_every_forwarded_for_line_is_read_in_order(
    lines: list[str], expected: int
) -> None:
    config = WebhookConfig(
        allowed_ips=("10.0.0.0/8",), trusted_proxies=("127.0.0.1/32",)
    )
    receiver = WebhookReceiver(config)
    async with listening(receiver) as (host, port, path):
        headers = _plain(BODY) + [("X-Forwarded-For", line) for line in lines]
        status, _, _ = await raw_http(host, port, _request(path, headers, BODY))
        assert status == expected
        assert receiver.tracker.received == (1 if expected == 200 else 0)


async def test_process_reads_every_forwarded_for_line_of_any_headers() -> None:
    from multidict import CIMultiDict

    config = WebhookConfig(
        allowed_ips=("10.0.0.0/8",), trusted_proxies=("127.0.0.1/32",)
    )
    receiver = WebhookReceiver(config)
    two_lines = CIMultiDict(
        [("X-Forwarded-For", "10.1.2.3"), ("X-Forwarded-For", "8.8.8.8")]
    )
    answer = await receiver.process(BODY, two_lines, peer="127.0.0.1")
    assert answer.status == 403
    one_line = {"x-forwarded-for": "8.8.8.8, 10.1.2.3"}
    assert (await receiver.process(BODY, one_line, peer="127.0.0.1")).status == 200
    from starlette.datastructures import Headers

    starlette = Headers(
        raw=[(b"x-forwarded-for", b"10.1.2.3"), (b"x-forwarded-for", b"8.8.8.8")]
    )
    assert (await receiver.process(BODY, starlette, peer="127.0.0.1")).status == 403
    await receiver.aclose()


# -- encodings and the size cap ---------------------------------------------------


@pytest.mark.parametrize("where", ["listening", "mounted"])
@pytest.mark.parametrize(
    ("encoding", "garbage"),
    [
        ("deflate", b"this is not deflate"),
        ("gzip", b"\x1f\x8b\x08\x00broken"),
    ],
)
async def test_corrupt_content_encoding_is_400_without_a_traceback(
    caplog: pytest.LogCaptureFixture, where: str, encoding: str, garbage: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    serve = listening if where == "listening" else mounted
    async with serve(receiver) as (host, port, path):
        headers = [*_plain(garbage), ("Content-Encoding", encoding)]
        status, _, body = await raw_http(host, port, _request(path, headers, garbage))
        # then a good request: the server is fine
        ok, _, _ = await raw_http(host, port, _request(path, _plain(BODY), BODY))
    assert status == 400, body
    assert json.loads(body)["ok"] is False
    assert ok == 200
    assert receiver.tracker.received == 1
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert [r for r in caplog.records if r.exc_info] == []


def _bomb() -> bytes:
    body = event_body(transaction_id="txn-bomb", padding=" " * 200_000)
    return gzip.compress(body, 9)


@pytest.mark.parametrize("where", ["listening", "mounted", "setup"])
async def test_size_cap_holds_after_decompression_wherever_mounted(where: str) -> None:
    bomb = _bomb()
    assert len(bomb) < 1024 < len(gzip.decompress(bomb))
    small = gzip.compress(BODY)
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET, max_body_size=1024))
    if where == "setup":
        app = web.Application()
        receiver.setup(app)
        runner, host, port = await _serve(app)
        path = f"{receiver.config.path}/{HOOK_SECRET}"
    else:
        serve = listening if where == "listening" else mounted
        context = serve(receiver)
        host, port, path = await context.__aenter__()
    try:
        gz = [("Content-Encoding", "gzip")]
        status, _, body = await raw_http(
            host, port, _request(path, _plain(bomb) + gz, bomb)
        )
        assert status == 413, body
        assert receiver.tracker.received == 0
        status, _, _ = await raw_http(
            host, port, _request(path, _plain(small) + gz, small)
        )
        assert status == 200  # a small compressed body is fine
        assert receiver.tracker.received == 1
    finally:
        if where == "setup":
            await runner.cleanup()
        else:
            await context.__aexit__(None, None, None)


async def test_chunked_cap_counts_a_body_arriving_in_several_reads() -> None:
    # Each read is at most 16 KiB, under the 20 KiB cap: only the running
    # total can see that the whole body is over it.
    cap = 20_000
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET, max_body_size=cap))
    async with listening(receiver) as (host, port, path):
        piece = b" " * 4000
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(12))
        headers = [
            ("Content-Type", "application/json"),
            ("Transfer-Encoding", "chunked"),
        ]
        request = _request(path, headers, chunks + b"0\r\n\r\n")
        status, _, body = await raw_http(host, port, request)
    assert status == 413, body
    assert json.loads(body)["error"] == "body too large"


# -- logs: no access log, no secret, no noise -------------------------------------


async def test_no_access_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    async with listening(receiver) as (host, port, path):
        status, _, _ = await raw_http(host, port, _request(path, _plain(BODY), BODY))
    assert status == 200
    assert [r for r in caplog.records if r.name.startswith("aiohttp.access")] == []
    assert all(HOOK_SECRET not in r.getMessage() for r in caplog.records)


def _malformed(path: str) -> list[bytes]:
    host = b"Host: x\r\nContent-Length: 0\r\n\r\n"
    return [
        b"POST " + path.encode() + b"\x01 HTTP/1.1\r\n" + host,  # bad char in URL
        b"POST " + path.encode() + b" HTTP/1.1\r\nBad Header\r\n" + host,
        b"POST " + path.encode() + b" HTTP/9.9\r\n" + host,
    ]


def _all_text(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter()
    return "\n".join(formatter.format(r) for r in caplog.records)


@pytest.mark.parametrize("where", ["listening", "mounted"])
async def test_secret_never_reaches_the_server_log_for_a_malformed_request(
    caplog: pytest.LogCaptureFixture, where: str
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    serve = listening if where == "listening" else mounted
    async with serve(receiver) as (host, port, path):
        assert HOOK_SECRET in path
        for request in _malformed(path):
            status, _, _ = await raw_http(host, port, request)
            assert status == 400
    text = _all_text(caplog)
    assert "malformed request" in text  # something was logged, and it is clean
    assert HOOK_SECRET not in text
    assert "Traceback" not in text


async def test_malformed_requests_log_one_line_per_kind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    async with listening(receiver) as (host, port, path):
        bad = _malformed(path)[0]
        for _ in range(5):
            assert (await raw_http(host, port, bad))[0] == 400
    lines = [r for r in caplog.records if "malformed request" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.WARNING and lines[0].exc_info is None
    assert "/srs" not in lines[0].getMessage()


def test_quiet_server_log_counts_what_it_dropped() -> None:
    from aiohttp.http_exceptions import BadStatusLine, LineTooLong

    now = [100.0]
    quiet = QuietServerLog(interval=60, clock=lambda: now[0])

    def record(exc: Exception) -> logging.LogRecord:
        return logging.LogRecord(
            "aiohttp.server",
            logging.ERROR,
            __file__,
            1,
            "Error handling request from %s",
            ("203.0.113.9",),
            (type(exc), exc, None),
        )

    first = record(BadStatusLine("POST /srs/webhook/SECRET-x"))
    assert quiet.filter(first)
    assert first.getMessage() == (
        "webhook server: refused a malformed request (BadStatusLine, HTTP 400)"
    )
    assert first.exc_info is None and first.levelno == logging.WARNING
    assert not quiet.filter(record(BadStatusLine("again")))
    assert not quiet.filter(record(BadStatusLine("again")))
    assert quiet.filter(record(LineTooLong("x", 10)))  # another kind: its own line
    now[0] += 59.9
    assert not quiet.filter(record(BadStatusLine("again")))
    now[0] += 0.2
    later = record(BadStatusLine("again"))
    assert quiet.filter(later)
    assert "3 more of this kind not logged" in later.getMessage()
    other = logging.LogRecord(
        "aiohttp.server",
        logging.ERROR,
        __file__,
        1,
        "bug",
        (),
        (ValueError, ValueError(), None),
    )
    assert quiet.filter(other) and other.exc_info is not None  # not ours: untouched


# -- config validation ------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        "%41" + "a" * 16,
        "a" * 16 + "?q",
        "a" * 16 + "#f",
        "a" * 16 + "%2F",
        "a" * 8 + "/" + "a" * 8,
        " " * 16,
        "a" * 15,
        "a" * 16 + " ",
        "ünïcode-secret-1234",
    ],
)
def test_secret_must_be_url_safe(secret: str) -> None:
    with pytest.raises(SipsConfigError, match="at least 16 characters") as info:
        WebhookConfig(secret=secret)
    assert secret not in str(info.value)


def test_url_safe_secrets_are_accepted() -> None:
    for secret in ("A-z_0.9~" * 2, "x" * 16, HOOK_SECRET):
        assert WebhookConfig(secret=secret).secret == secret


@pytest.mark.parametrize("everyone", ["0.0.0.0/0", "::/0"])
def test_allow_list_admitting_everyone_warns_and_is_no_guard(
    caplog: pytest.LogCaptureFixture, everyone: str
) -> None:
    config = WebhookConfig(allowed_ips=(everyone,))
    assert config.admits_everyone and not config.guarded
    with pytest.raises(SipsConfigError, match="no guard"):
        WebhookReceiver(config)
    caplog.clear()
    WebhookReceiver(
        WebhookConfig(allowed_ips=("10.0.0.0/8", everyone), secret=HOOK_SECRET)
    )
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "admits every address" in warnings[0].getMessage()
    caplog.clear()
    WebhookReceiver(WebhookConfig(allowed_ips=("10.0.0.0/8",)))
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize(
    "field", ["header_timeout", "body_timeout", "keepalive_timeout"]
)
@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan")])
def test_timeouts_must_be_positive(field: str, value: float) -> None:
    with pytest.raises(SipsConfigError, match=field):
        WebhookConfig(secret=HOOK_SECRET, **{field: value})  # type: ignore[arg-type]


def test_max_connections_must_be_positive() -> None:
    with pytest.raises(SipsConfigError, match="max_connections"):
        WebhookConfig(secret=HOOK_SECRET, max_connections=0)


async def test_all_interfaces_without_public_url_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Bound for an instant, never posted to; the URL is what is checked.
    async with WebhookReceiver(WebhookConfig(host="0.0.0.0", secret=HOOK_SECRET)):
        pass
    warned = [r for r in caplog.records if "public_url" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    caplog.clear()
    public = "https://hooks.example.com/srs/webhook"
    config = WebhookConfig(host="0.0.0.0", secret=HOOK_SECRET, public_url=public)
    async with WebhookReceiver(config) as receiver:
        assert receiver.url == f"{public}/{HOOK_SECRET}"
    async with WebhookReceiver(WebhookConfig(secret=HOOK_SECRET)):
        pass
    assert [r for r in caplog.records if "public_url" in r.getMessage()] == []


# -- the store fails: 503 ---------------------------------------------------------


class FailingStore(MemoryStore):
    """A store whose writes fail until ``healthy`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.healthy = False

    async def record(self, update: OrderUpdate) -> Recorded:
        if not self.healthy:
            raise SipsStoreError("disk I/O error")
        return await super().record(update)


async def test_store_failure_answers_503_then_redelivery_is_stored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FailingStore()
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET), store=store)
    async with listening(receiver) as (host, port, path):
        status, _, body = await raw_http(host, port, _request(path, _plain(BODY), BODY))
        assert status == 503 and json.loads(body)["ok"] is False
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        line = errors[0].getMessage()
        assert "503" in line and "disk I/O error" in line
        assert HOOK_SECRET not in line and "txn-hard" not in line  # no body
        assert errors[0].exc_info is None
        # The outage goes on: more 503s, but no more ERROR lines.
        for _ in range(3):
            status, _, _ = await raw_http(
                host, port, _request(path, _plain(BODY), BODY)
            )
            assert status == 503
        assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
        store.healthy = True  # SRS delivers again
        status, _, body = await raw_http(host, port, _request(path, _plain(BODY), BODY))
        assert status == 200 and json.loads(body) == {"ok": True, "duplicate": False}
        back = [r for r in caplog.records if "works again" in r.getMessage()]
        assert [r.levelno for r in back] == [logging.WARNING]
        # Healthy from then on: no second "works again" line.
        status, _, _ = await raw_http(host, port, _request(path, _plain(BODY), BODY))
        assert status == 200
        assert len([r for r in caplog.records if "works again" in r.getMessage()]) == 1


async def test_process_answers_like_the_handler() -> None:
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    headers = {"content-type": "application/json", SECRET_HEADER.lower(): HOOK_SECRET}
    first = await receiver.process(BODY, headers)
    assert first.status == 200 and json.loads(first.body)["duplicate"] is False
    again = await receiver.process(BODY, {}, token=HOOK_SECRET)
    assert again.status == 200 and json.loads(again.body)["duplicate"] is True
    assert (await receiver.process(BODY, {})).status == 401
    assert (await receiver.process(BODY, {}, token="x" * 20)).status == 401
    assert (await receiver.process(b"{}", {}, token=HOOK_SECRET)).status == 400
    text = {"Content-Type": "text/plain"}
    assert (await receiver.process(BODY, text, token=HOOK_SECRET)).status == 415
    big = b" " * 70_000
    assert (await receiver.process(big, {}, token=HOOK_SECRET)).status == 413
    assert receiver.tracker.received == 1
    await receiver.aclose()


def _closed(receiver: WebhookReceiver) -> bool:
    return receiver.tracker.closed


async def test_setup_wires_routes_startup_and_cleanup() -> None:
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    app = web.Application()
    receiver.setup(app, "/in/hooks")
    quiet = logging.getLogger("aiohttp.server").filters
    runner, host, port = await _serve(app)
    try:
        assert any(isinstance(f, QuietServerLog) for f in quiet)  # on startup
        path = f"/in/hooks/{HOOK_SECRET}"
        status, _, _ = await raw_http(host, port, _request(path, _plain(BODY), BODY))
        assert status == 200
        headers = [*_plain(BODY), (SECRET_HEADER, HOOK_SECRET)]
        status, _, _ = await raw_http(host, port, _request("/in/hooks", headers, BODY))
        assert status == 200
        assert receiver.tracker.received == 1 and receiver.tracker.duplicates == 1
        assert not _closed(receiver)
    finally:
        await runner.cleanup()
    assert _closed(receiver)  # cleanup closed it, waking every waiter
    assert not any(isinstance(f, QuietServerLog) for f in quiet)


async def test_good_deflate_body_is_accepted() -> None:
    receiver = WebhookReceiver(WebhookConfig(secret=HOOK_SECRET))
    async with listening(receiver) as (host, port, path):
        packed = zlib.compress(BODY)
        headers = [*_plain(packed), ("Content-Encoding", "deflate")]
        status, _, _ = await raw_http(host, port, _request(path, headers, packed))
    assert status == 200
    assert receiver.tracker.received == 1


def test_guard_check_returns_the_first_refusal_in_order() -> None:
    from sips_async import sign_headers
    from sips_async.webhooks._guard import Guard, Refusal

    key = "whsec_" + "a2V5LWZvci10aGUtZ3VhcmQtdGVzdA=="
    now = 1_800_000_000
    config = WebhookConfig(
        secret=HOOK_SECRET,
        signing_secrets=(key,),
        allowed_ips=("10.0.0.0/8",),
        max_body_size=1000,
    )
    guard = Guard(config)
    good = {**sign_headers(key, BODY, timestamp=now), SECRET_HEADER: HOOK_SECRET}

    def check(
        body: bytes = BODY,
        headers: dict[str, str] = good,
        peer: str = "10.0.0.1",
        token: str | None = None,
    ) -> Refusal | None:
        return guard.check(body, headers, peer=peer, token=token, now=now)

    assert check() is None
    assert check(token=HOOK_SECRET) is None
    # address first, even with everything else wrong
    assert check(b"x" * 2000, {}, peer="8.8.8.8") == (403, "address not allowed")
    assert check(headers={**good, SECRET_HEADER: "w" * 20}) == (
        401,
        "missing or wrong secret",
    )
    assert check(token="t" * 20) == (401, "missing or wrong secret")
    assert check(b" " * 1001) == (413, "body too large")
    assert check(headers={**good, "Content-Type": "text/plain"}) == (
        415,
        "body must be application/json",
    )
    assert check(BODY + b" ") == (401, "no valid signature")
    unsigned = WebhookConfig(allowed_ips=("10.0.0.0/8",))
    assert Guard(unsigned).check(BODY, {}, peer="10.0.0.1", token="x", now=now) == (
        404,
        "not found",
    )
