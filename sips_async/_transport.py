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
        started = time.perf_counter()
        try:
            async with session.request(
                method,
                self._base + path,
                data=json if json is not None else form,
                params=params,
                headers=headers,
                timeout=client_timeout,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                status = resp.status
                answer = Response(status, resp.headers, body)
        except aiohttp.ConnectionTimeoutError:
            self._log(method, path, "connect-timeout", attempt, started)
            raise SipsTimeoutError(
                f"could not connect within {self._connect_timeout} s",
                method=method,
                path=path,
                sent=False,
            ) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            self._log(method, path, "timeout", attempt, started)
            raise SipsTimeoutError(
                f"no answer within {timeout} s", method=method, path=path
            ) from None
        except aiohttp.ClientConnectorError as exc:
            self._log(method, path, "connect-error", attempt, started)
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise SipsConnectionError(
                f"cannot connect: {reason}",
                method=method,
                path=path,
                sent=False,
            ) from None
        except aiohttp.ClientError as exc:
            self._log(method, path, "connection-error", attempt, started)
            raise SipsConnectionError(
                f"connection failed: {type(exc).__name__}", method=method, path=path
            ) from None
        self._log(method, path, status, attempt, started)
        return answer

    def _client_timeout(self, timeout: float) -> aiohttp.ClientTimeout:
        timeouts = self._timeouts
        if len(timeouts) >= _TIMEOUTS_KEPT:
            timeouts.clear()
        client_timeout = timeouts[timeout] = aiohttp.ClientTimeout(
            total=timeout, connect=min(self._connect_timeout, timeout)
        )
        return client_timeout

    @staticmethod
    def _log(
        method: str, path: str, status: int | str, attempt: int, started: float
    ) -> None:
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
