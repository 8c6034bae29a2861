"""The HTTP layer: the only module that talks to ``aiohttp.ClientSession``.

It sends one request and returns the answer whatever its status; it turns
aiohttp's exceptions into :mod:`sips_async.errors` ones, recording whether
the request may have left this machine. Status handling and retries live
above it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Final

import aiohttp
import msgspec
from multidict import CIMultiDictProxy

from ._redact import redact
from ._version import __version__
from .errors import SipsClientClosedError, SipsConnectionError, SipsTimeoutError

logger: Final = logging.getLogger("sips_async")

_JSON: Final = "application/json"
_USER_AGENT: Final = f"sips-async/{__version__}"


#: What aiohttp raises for a request that got no answer (see ``failure``).
FAILURES: Final = (TimeoutError, aiohttp.ClientError)

#: Per-request timeouts kept per client (``timeout`` values in use): more than
#: this many distinct values and the cache starts afresh.
_TIMEOUTS_KEPT: Final = 16


class Response(msgspec.Struct, frozen=True, gc=False):
    """One answer: status, headers and the whole body."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class Transport:
    """Sends requests to one SIPS host through one (possibly borrowed) session."""

    __slots__ = (
        "_base",
        "_bearer",
        "_connect_timeout",
        "_limit",
        "_owns",
        "_session",
        "_timeouts",
    )

    def __init__(
        self,
        *,
        base_url: str,
        session: aiohttp.ClientSession | None,
        max_connections: int,
        connect_timeout: float,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._session = session
        self._owns = session is None
        self._limit = max_connections
        self._connect_timeout = connect_timeout
        # Built once, not per request (they showed in the benchmarks): the
        # aiohttp timeouts per ``timeout`` value, and the headers of the
        # current token (token, with a JSON body, without). aiohttp copies
        # the headers it is given, so sharing the dicts is safe.
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._bearer: tuple[str, dict[str, str], dict[str, str]] | None = None

    @property
    def base_url(self) -> str:
        """The SIPS host requests go to."""
        return self._base

    async def open(self) -> None:
        """Create the session if we own it (needs a running loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit),
                headers={"User-Agent": _USER_AGENT, "Accept": _JSON},
            )

    async def aclose(self) -> None:
        """Close the session if it is ours; a borrowed one is left open."""
        session, self._session = self._session, None
        if session is not None and self._owns:
            await session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: bytes | None = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float,
    ) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        """Start one request: aiohttp's response context, for ``async with``.

        No I/O until it is entered. :meth:`send` is the whole exchange; the
        retrying layer enters this itself (one coroutine fewer on every
        request's await chain) and maps failures with :meth:`failure`.
        """
        session = self._session
        if session is None:
            raise SipsClientClosedError("the client is not open (use 'async with')")
        headers: dict[str, str]
        if token is not None:
            bearer = self._bearer
            if bearer is None or bearer[0] != token:
                bearer = self._bearer = _bearer_headers(token)
            headers = bearer[1] if json is not None else bearer[2]
        elif json is not None:
            headers = {"Content-Type": _JSON}
        else:
            headers = {}
        client_timeout = self._timeouts.get(timeout)
        if client_timeout is None:
            client_timeout = self._client_timeout(timeout)
        return session.request(
            method,
            self._base + path,
            data=json if json is not None else form,
            params=params,
            headers=headers,
            timeout=client_timeout,
            allow_redirects=False,
        )

    async def send(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: bytes | None = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float,
        attempt: int = 1,
    ) -> Response:
        """Send one request and read the whole answer.

        ``params`` is the query string; it is never logged (it may carry a
        customer's integration key).

        Raises:
            SipsConnectionError: no answer; ``sent`` is ``False`` only when
                the connection could not be opened.
            SipsTimeoutError: no answer within ``timeout`` seconds.
        """
        started = time.perf_counter()
        try:
            async with self.request(
                method,
                path,
                token=token,
                json=json,
                form=form,
                params=params,
                timeout=timeout,
            ) as resp:
                answer = Response(resp.status, resp.headers, await resp.read())
        except FAILURES as exc:
            raise self.failure(exc, method, path, timeout, attempt, started) from None
        if logger.isEnabledFor(logging.DEBUG):  # checked here: no call when off
            self.logged(method, path, answer.status, attempt, started)
        return answer

    def failure(
        self,
        exc: BaseException,
        method: str,
        path: str,
        timeout: float,
        attempt: int,
        started: float,
    ) -> SipsConnectionError:
        """The SDK's error for an aiohttp failure (one of :data:`FAILURES`)."""
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            self.logged(method, path, "connect-timeout", attempt, started)
            return SipsTimeoutError(
                f"could not connect within {self._connect_timeout} s",
                method=method,
                path=path,
                sent=False,
            )
        if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
            self.logged(method, path, "timeout", attempt, started)
            return SipsTimeoutError(
                f"no answer within {timeout} s", method=method, path=path
            )
        if isinstance(exc, aiohttp.ClientConnectorError):
            self.logged(method, path, "connect-error", attempt, started)
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            return SipsConnectionError(
                f"cannot connect: {reason}",
                method=method,
                path=path,
                sent=False,
            )
        self.logged(method, path, "connection-error", attempt, started)
        return SipsConnectionError(
            f"connection failed: {type(exc).__name__}", method=method, path=path
        )

    def _client_timeout(self, timeout: float) -> aiohttp.ClientTimeout:
        timeouts = self._timeouts
        if len(timeouts) >= _TIMEOUTS_KEPT:
            timeouts.clear()
        client_timeout = timeouts[timeout] = aiohttp.ClientTimeout(
            total=timeout, connect=min(self._connect_timeout, timeout)
        )
        return client_timeout

    @staticmethod
    def logged(
        method: str, path: str, status: int | str, attempt: int, started: float
    ) -> None:
        """Log one finished request at DEBUG (path redacted, no query)."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s status=%s attempt=%d elapsed_ms=%.1f",
                method,
                redact(path),
                status,
                attempt,
                (time.perf_counter() - started) * 1000,
            )


def _bearer_headers(token: str) -> tuple[str, dict[str, str], dict[str, str]]:
    auth = f"Bearer {token}"
    return (
        token,
        {"Authorization": auth, "Content-Type": _JSON},
        {"Authorization": auth},
    )
