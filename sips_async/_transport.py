"""The HTTP layer: the only module that talks to ``aiohttp.ClientSession``.

It sends one request and returns the answer whatever its status; it turns
aiohttp's exceptions into :mod:`sips_async.errors` ones, recording whether
the request may have left this machine. Status handling and retries live
above it.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import aiohttp
from multidict import CIMultiDictProxy

from ._version import __version__
from .errors import SipsClientClosedError, SipsConnectionError, SipsTimeoutError

logger: Final = logging.getLogger("sips_async")

_JSON: Final = "application/json"
_USER_AGENT: Final = f"sips-async/{__version__}"


@functools.lru_cache(maxsize=16)
def _client_timeout(total: float, connect: float) -> aiohttp.ClientTimeout:
    # Shared, immutable: building one per request showed in the benchmarks.
    return aiohttp.ClientTimeout(total=total, connect=connect)


@dataclass(frozen=True, slots=True)
class Response:
    """One answer: status, headers and the whole body."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class Transport:
    """Sends requests to one SIPS host through one (possibly borrowed) session."""

    __slots__ = ("_base", "_connect_timeout", "_limit", "_owns", "_session")

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
        headers: dict[str, str] = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if json is not None:
            headers["Content-Type"] = _JSON
        started = time.perf_counter()
        try:
            async with session.request(
                method,
                self._base + path,
                data=json if json is not None else form,
                params=params,
                headers=headers,
                timeout=_client_timeout(timeout, min(self._connect_timeout, timeout)),
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

    @staticmethod
    def _log(
        method: str, path: str, status: int | str, attempt: int, started: float
    ) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s status=%s attempt=%d elapsed_ms=%.1f",
                method,
                path,
                status,
                attempt,
                (time.perf_counter() - started) * 1000,
            )
