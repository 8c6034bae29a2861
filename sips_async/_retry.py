"""Retries: the only user of ``backoff``.

:class:`Requester` sends an authenticated request, refreshes the token once
on a 401, maps error answers to typed exceptions and retries what the policy
allows, with exponential backoff, full jitter and ``Retry-After``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Generator
from typing import Any, Final, cast

import backoff

from ._auth import TokenManager
from ._codec import error_from_response
from ._config import RetryConfig
from ._transport import Response, Transport
from .errors import (
    SipsConnectionError,
    SipsRateLimitError,
    SipsServerError,
)

logger: Final = logging.getLogger("sips_async")

#: Exceptions that may be retried at all; :func:`should_retry` decides.
RETRYABLE: Final = (SipsServerError, SipsRateLimitError, SipsConnectionError)

_rng = random.Random()


def delays(cfg: RetryConfig) -> Generator[float | None, BaseException | None, None]:
    """Backoff wait generator: full jitter, or ``Retry-After`` when given.

    ``backoff`` primes it with ``None`` and then sends in each exception.
    """
    exc = yield None
    step = 0
    while True:
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            delay = min(float(retry_after), cfg.max_retry_after)
        else:
            cap = min(cfg.max_delay, cfg.initial_delay * (2**step))
            delay = _rng.uniform(0.0, cap)
        step += 1
        exc = yield delay


def should_retry(
    exc: BaseException, *, places_order: bool, order_sent: bool, cfg: RetryConfig
) -> bool:
    """Whether a failed attempt may be repeated (see :class:`RetryConfig`)."""
    if not isinstance(exc, RETRYABLE):
        return False
    if not places_order or not order_sent:
        return True
    if cfg.submit == "always":
        return True
    if cfg.submit == "never":
        return False
    if isinstance(exc, SipsRateLimitError):
        return True
    if isinstance(exc, SipsServerError):
        return exc.status == 503
    return not exc.sent


class _Call:
    """State of one logical call across its attempts."""

    __slots__ = ("attempt", "order_sent")

    def __init__(self) -> None:
        self.attempt = 0
        self.order_sent = False


def _log_retry(details: Any) -> None:
    exc = details.get("exception")
    args = details.get("args") or ()
    call_name = args[0] if args else ""
    logger.debug(
        "retry %s attempt=%d wait_ms=%.1f elapsed_ms=%.1f after %s",
        call_name,
        details["tries"] + 1,
        details["wait"] * 1000,
        details["elapsed"] * 1000,
        type(exc).__name__ if exc is not None else "?",
    )


class Requester:
    """Authenticated, retried requests that return only successful answers."""

    __slots__ = ("_auth", "_retry", "_transport")

    def __init__(
        self, *, transport: Transport, auth: TokenManager, retry: RetryConfig
    ) -> None:
        self._transport = transport
        self._auth = auth
        self._retry = retry

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: bytes | None = None,
        timeout: float,
        places_order: bool = False,
    ) -> Response:
        """Send with auth and retries; return a 2xx/3xx answer or raise.

        Args:
            places_order: the request places an order (submit/enqueue), so it
                is re-sent only as ``RetryConfig.submit`` allows.
        """
        cfg = self._retry
        call = _Call()

        async def attempt(name: str) -> Response:
            call.attempt += 1
            call.order_sent = False
            token = await self._auth.token()
            call.order_sent = True
            resp = await self._transport.send(
                method,
                path,
                token=token,
                json=json,
                timeout=timeout,
                attempt=call.attempt,
            )
            if resp.status == 401:
                # A 401 is answered before the request is handled: refresh
                # once and repeat once; a second 401 is final.
                self._auth.invalidate(token)
                call.order_sent = False
                token = await self._auth.token()
                call.order_sent = True
                resp = await self._transport.send(
                    method,
                    path,
                    token=token,
                    json=json,
                    timeout=timeout,
                    attempt=call.attempt,
                )
            if resp.status >= 400:
                raise error_from_response(
                    resp.status, resp.body, resp.headers, method=method, path=path
                )
            return resp

        retrying = backoff.on_exception(
            cast(Callable[..., Generator[float, None, None]], delays),
            RETRYABLE,
            max_tries=cfg.max_tries,
            max_time=cfg.max_time,
            jitter=None,
            giveup=lambda exc: (
                not should_retry(
                    exc, places_order=places_order, order_sent=call.order_sent, cfg=cfg
                )
            ),
            on_backoff=_log_retry,
            logger=None,
            cfg=cfg,
        )(attempt)
        response: Response = await retrying(f"{method} {path}")
        return response
