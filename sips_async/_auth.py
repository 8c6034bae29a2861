"""OAuth client-credentials token cache with single-flight refresh."""

from __future__ import annotations

import asyncio
from typing import Final

from ._clock import SYSTEM_CLOCK, Clock
from ._codec import decode_token, error_from_response
from ._transport import Response, Transport
from .errors import SipsAPIError, SipsAuthError

#: Used when SRS's answer carries no usable ``expires_in``: the shorter of the
#: two lifetimes SRS documents (srs-api.md 2.2).
DEFAULT_LIFETIME: Final = 3600.0
#: Refresh this long before expiry at most (10 % of the lifetime when shorter).
REFRESH_MARGIN: Final = 300.0


class TokenManager:
    """Fetches, caches and refreshes the bearer token.

    Concurrent callers share one refresh: the first starts the token request
    and every caller awaits that same request, so its answer (or its failure)
    reaches them all at once: 100 callers with an expired token make exactly
    one token request, and a failing token endpoint is asked once per round,
    not once per caller.
    """

    __slots__ = (
        "_client_id",
        "_client_secret",
        "_clock",
        "_inflight",
        "_path",
        "_refresh_at",
        "_timeout",
        "_token",
        "_transport",
    )

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        path: str,
        transport: Transport,
        timeout: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._path = path
        self._transport = transport
        self._timeout = timeout
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._inflight: asyncio.Future[str] | None = None

    def __repr__(self) -> str:
        state = "cached" if self._token else "empty"
        return f"<TokenManager {state}>"

    def cached(self) -> str | None:
        """The cached token while it is not due for refresh, else ``None``.

        No I/O and no await: the hot path of every request; :meth:`token`
        is needed only when this gives ``None``.
        """
        token = self._token
        if token is not None and self._clock.monotonic() < self._refresh_at:
            return token
        return None

    async def token(self) -> str:
        """Return a valid token, fetching one if none is cached or it is due."""
        token = self.cached()
        if token is not None:
            return token
        inflight = self._inflight
        if inflight is None:
            inflight = self._inflight = asyncio.ensure_future(self._fetch())
            inflight.add_done_callback(self._fetched)
        # The shield keeps one cancelled caller from cancelling everyone's fetch.
        return await asyncio.shield(inflight)

    def _fetched(self, future: asyncio.Future[str]) -> None:
        if self._inflight is future:
            self._inflight = None
        if not future.cancelled():
            future.exception()  # retrieved: no "never retrieved" noise

    def invalidate(self, token: str) -> None:
        """Drop ``token`` after SRS refused it, unless a newer one replaced it."""
        if self._token == token:
            self._token = None

    async def _fetch(self) -> str:
        resp = await self._transport.send(
            "POST",
            self._path,
            form={
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "grant_type": "client_credentials",
                "scope": "ALL",
            },
            timeout=self._timeout,
        )
        if resp.status != 200:
            raise self._error(resp)
        answer = decode_token(resp.body)
        lifetime = answer.lifetime(DEFAULT_LIFETIME)
        self._refresh_at = (
            self._clock.monotonic() + lifetime - min(REFRESH_MARGIN, lifetime * 0.1)
        )
        self._token = answer.access_token
        return answer.access_token

    def secrets(self) -> tuple[str | None, ...]:
        """The values to mask in any text SRS sends back: secret, current token."""
        return (self._client_secret, self._token)

    def _error(self, resp: Response) -> SipsAPIError:
        status = resp.status
        error = error_from_response(
            status,
            resp.body,
            resp.headers,
            method="POST",
            path=self._path,
            secrets=(self._client_secret, self._client_id),
        )
        if status in (400, 401, 403):
            # Bad credentials are not fixed by a retry.
            return SipsAuthError(
                error.description,
                status=status,
                code=error.code,
                source=error.source,
                raw=error.raw,
                method=error.method,
                path=error.path,
            )
        return error
