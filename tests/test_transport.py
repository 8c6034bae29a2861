"""The HTTP layer on its own: what it sends, what it maps failures to, what it logs.

A real aiohttp server on 127.0.0.1 (port 0) echoes what reached it; failures
are aiohttp's own exceptions, or a port nothing listens on.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aioresponses import aioresponses

from sips_async import SipsClientClosedError, SipsConnectionError, SipsTimeoutError
from sips_async._transport import _TIMEOUTS_KEPT, Transport
from sips_async._version import __version__
from tests._mock import serve


async def _echo(request: web.Request) -> web.Response:
    seen = {
        "method": request.method,
        "path": request.path,
        "query": dict(request.query),
        "body": (await request.read()).decode(),
        "headers": {k.lower(): v for k, v in request.headers.items()},
    }
    return web.json_response(seen)


async def _moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/echo")


def _routes(app: web.Application) -> None:
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/moved", _moved)
    app.router.add_get("/apiX/echo", _echo)


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with serve(_routes) as url:
        t = Transport(
            base_url=url + "/", session=None, max_connections=4, connect_timeout=2.5
        )
        await t.open()
        try:
            yield t
        finally:
            await t.aclose()


def _assert_logged(caplog: pytest.LogCaptureFixture, head: str, took_ms: float) -> None:
    """One DEBUG line, ``head`` then an elapsed time no longer than the call."""
    [record] = [r for r in caplog.records if r.name == "sips_async"]
    found = re.fullmatch(rf"{head} elapsed_ms=([0-9.]+)", record.getMessage())
    assert found is not None, record.getMessage()
    assert 0.0 <= float(found[1]) <= took_ms + 0.1


def _seen(body: bytes) -> dict[str, object]:
    got = msgspec.json.decode(body)
    assert isinstance(got, dict)
    return got


async def test_send_delivers_token_json_body_query_and_identity(
    transport: Transport,
) -> None:
    resp = await transport.send(
        "POST",
        "/echo",
        token="tok-1",
        json=b'{"a": 1}',
        params={"key": "v"},
        timeout=5.0,
    )
    assert resp.status == 200
    seen = _seen(resp.body)
    assert (seen["method"], seen["path"]) == ("POST", "/echo")
    assert seen["query"] == {"key": "v"}
    assert seen["body"] == '{"a": 1}'
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert headers["authorization"] == "Bearer tok-1"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == f"sips-async/{__version__}"
    assert headers["accept"] == "application/json"


async def test_send_posts_a_form_without_a_token(transport: Transport) -> None:
    resp = await transport.send("POST", "/echo", form={"grant": "x"}, timeout=5.0)
    seen = _seen(resp.body)
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert "authorization" not in headers
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen["body"] == "grant=x"


async def test_a_redirect_is_returned_not_followed(transport: Transport) -> None:
    resp = await transport.send("GET", "/moved", token="tok-1", timeout=5.0)
    assert resp.status == 302
    assert resp.headers["Location"] == "/echo"


async def test_send_logs_one_debug_line_per_request(
    transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sips_async")
    before = time.perf_counter()
    await transport.send("GET", "/echo", timeout=5.0)
    took_ms = (time.perf_counter() - before) * 1000
    _assert_logged(caplog, r"GET /echo status=200 attempt=1", took_ms)


async def test_closed_transport_says_so() -> None:
    t = Transport(
        base_url="http://127.0.0.1:9",
        session=None,
        max_connections=1,
        connect_timeout=1,
    )
    with pytest.raises(SipsClientClosedError) as info:
        await t.send("GET", "/x", timeout=1.0)
    assert str(info.value) == "the client is not open (use 'async with')"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_refused_connection_is_not_sent_and_names_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="sips_async")
    t = Transport(
        base_url=f"http://127.0.0.1:{_free_port()}",
        session=None,
        max_connections=1,
        connect_timeout=2.0,
    )
    await t.open()
    try:
        with pytest.raises(SipsConnectionError) as info:
            await t.send("POST", "/token", form={"a": "b"}, timeout=5.0, attempt=2)
    finally:
        await t.aclose()
    err = info.value
    assert err.sent is False
    assert (err.method, err.path) == ("POST", "/token")
    assert str(err).startswith("POST /token: cannot connect: "), str(err)
    [record] = [r for r in caplog.records if r.name == "sips_async"]
    assert record.getMessage().startswith("POST /token status=connect-error attempt=2 ")


def _connector_error(os_error: OSError) -> aiohttp.ClientConnectorError:
    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey("127.0.0.1", 1, False, False, None, None, None)
    return aiohttp.ClientConnectorError(key, os_error)


_FAILURES: dict[str, tuple[BaseException, type[Exception], str, bool, str]] = {
    "connect-timeout": (
        aiohttp.ConnectionTimeoutError(),
        SipsTimeoutError,
        "could not connect within 2.5 s",
        False,
        "connect-timeout",
    ),
    "read-timeout": (
        aiohttp.SocketTimeoutError(),
        SipsTimeoutError,
        "no answer within 7.5 s",
        True,
        "timeout",
    ),
    "timeout": (
        TimeoutError(),
        SipsTimeoutError,
        "no answer within 7.5 s",
        True,
        "timeout",
    ),
    "refused": (
        _connector_error(ConnectionRefusedError(111, "refused")),
        SipsConnectionError,
        "cannot connect: refused",
        False,
        "connect-error",
    ),
    "refused-no-text": (
        _connector_error(ConnectionRefusedError()),
        SipsConnectionError,
        "cannot connect: ConnectionRefusedError",
        False,
        "connect-error",
    ),
    "disconnected": (
        aiohttp.ServerDisconnectedError(),
        SipsConnectionError,
        "connection failed: ServerDisconnectedError",
        True,
        "connection-error",
    ),
}


@pytest.mark.parametrize("name", list(_FAILURES))
async def test_failure_maps_each_aiohttp_error_and_logs_it(
    transport: Transport, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    exc, kind, message, sent, label = _FAILURES[name]
    caplog.set_level(logging.DEBUG, logger="sips_async")
    started = time.perf_counter()
    err = transport.failure(exc, "GET", "/orders/874", 7.5, 3, started)
    took_ms = (time.perf_counter() - started) * 1000
    assert type(err) is kind
    assert str(err) == f"GET /orders/874: {message}"
    assert (err.method, err.path, err.sent) == ("GET", "/orders/874", sent)
    _assert_logged(caplog, rf"GET /orders/874 status={label} attempt=3", took_ms)


async def test_open_bounds_connections_to_max_connections() -> None:
    t = Transport(
        base_url="http://127.0.0.1:9",
        session=None,
        max_connections=3,
        connect_timeout=1,
    )
    await t.open()
    try:
        session = t._session
        assert session is not None
        assert session.connector is not None
        assert session.connector.limit == 3
    finally:
        await t.aclose()


async def test_timeouts_kept_never_exceed_the_bound(transport: Transport) -> None:
    for i in range(1, _TIMEOUTS_KEPT + 2):
        await transport.send("GET", "/echo", timeout=float(i))
        assert len(transport._timeouts) <= _TIMEOUTS_KEPT
    assert float(_TIMEOUTS_KEPT + 1) in transport._timeouts


async def test_a_base_url_path_is_kept_whatever_it_ends_with() -> None:
    async with serve(_routes) as url:
        t = Transport(
            base_url=url + "/apiX/", session=None, max_connections=1, connect_timeout=1
        )
        await t.open()
        try:
            resp = await t.send("GET", "/echo", timeout=5.0)
        finally:
            await t.aclose()
    assert resp.status == 200
    assert _seen(resp.body)["path"] == "/apiX/echo"


async def test_send_names_its_own_timeout_when_no_answer_comes() -> None:
    t = Transport(
        base_url="http://sips.test", session=None, max_connections=1, connect_timeout=1
    )
    await t.open()
    try:
        with aioresponses() as m:
            m.post("http://sips.test/token", timeout=True)
            with pytest.raises(SipsTimeoutError) as info:
                await t.send("POST", "/token", form={"a": "b"}, timeout=7.5)
    finally:
        await t.aclose()
    assert str(info.value) == "POST /token: no answer within 7.5 s"
