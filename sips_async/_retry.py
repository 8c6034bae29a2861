"""Retries: send, refresh the token once on a 401, map errors, wait, repeat.

:class:`Requester` sends an authenticated request, refreshes the token once
on a 401, maps error answers to typed exceptions and retries what the policy
allows, with exponential backoff, full jitter and ``Retry-After``.

The policy is pure functions (:func:`should_retry`, :func:`next_wait`); the
loop around them reads time and waits only through the client's
:class:`~sips_async._clock.Clock`, so tests fake time through
``SipsClient(clock=...)`` and patch nothing.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from typing import Final

import msgspec

from ._auth import TokenManager
from ._clock import SYSTEM_CLOCK, Clock
from ._codec import error_from_response
from ._config import RetryConfig
from ._outcome import maybe_placed
from ._redact import redact
from ._transport import FAILURES, Response, Transport
from .errors import (
    SipsConnectionError,
    SipsError,
    SipsRateLimitError,
    SipsServerError,
)

logger: Final = logging.getLogger("sips_async")

#: Exceptions that may be retried at all; :func:`should_retry` decides.
RETRYABLE: Final = (SipsServerError, SipsRateLimitError, SipsConnectionError)

_rng = random.Random()


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


def next_wait(
    exc: BaseException,
    *,
    attempt: int,
    elapsed: float,
    cfg: RetryConfig,
    draw: float,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or ``None`` to stop.

    The one place the bounds live: ``max_tries`` attempts in all, ``max_time``
    seconds counted from the call's start (``elapsed``, first attempt
    included). ``draw`` is a uniform number in [0, 1] for the full jitter.
    ``Retry-After`` replaces the draw; SRS is never asked again sooner than it
    said, so a ``Retry-After`` beyond ``max_retry_after`` or beyond the time
    left ends the call. (:func:`should_retry` is asked first.)
    """
    if attempt >= cfg.max_tries:
        return None
    left = cfg.max_time - elapsed
    retry_after: float | None = getattr(exc, "retry_after", None)
    if retry_after is not None:
        if retry_after > min(cfg.max_retry_after, left):
            return None
        return float(retry_after)
    if left <= 0:
        return None
    cap = min(cfg.max_delay, cfg.initial_delay * 2.0 ** (attempt - 1))
    return min(cap * draw, left)


class _Call(msgspec.Struct, gc=False):
    """One logical call: what its retry log names and its state across attempts.

    (A msgspec Struct: built in C, once per request. ``gc=False``: it holds
    strings, numbers and booleans, none of which refers back to it.)
    """

    method: str
    path: str
    started: float
    attempt: int = 0
    order_sent: bool = False
    #: Whether an attempt so far may have placed the order.
    placed: bool = False


class Requester:
    """Authenticated, retried requests that return only successful answers."""

    __slots__ = ("_auth", "_clock", "_retry", "_transport")

    def __init__(
        self,
        *,
        transport: Transport,
        auth: TokenManager,
        retry: RetryConfig,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._transport = transport
        self._auth = auth
        self._retry = retry
        self._clock = clock

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: bytes | None = None,
        timeout: float,
        places_order: bool = False,
        params: Mapping[str, str] | None = None,
    ) -> Response:
        """Send with auth and retries; return a 2xx/3xx answer or raise.

        Args:
            params: the query string (kept out of logs and error messages).
            places_order: the request places an order (submit/enqueue), so it
                is re-sent only as ``RetryConfig.submit`` allows.
        """
        clock = self._clock
        call = _Call(method, path, clock.monotonic())
        auth = self._auth
        transport = self._transport
        try:
            while True:
                call.attempt += 1
                try:
                    # One attempt, inline, aiohttp entered here rather than
                    # through Transport.send: two coroutines fewer on the await
                    # chain that every suspension of the request walks.
                    for refreshed in (False, True):
                        call.order_sent = False
                        # The cached token needs no await.
                        token = auth.cached() or await auth.token()
                        call.order_sent = True
                        started = time.perf_counter()
                        try:
                            async with transport.request(
                                method,
                                path,
                                token=token,
                                json=json,
                                params=params,
                                timeout=timeout,
                            ) as answer:
                                resp = Response(
                                    answer.status, answer.headers, await answer.read()
                                )
                        except FAILURES as exc:
                            raise transport.failure(
                                exc, method, path, timeout, call.attempt, started
                            ) from None
                        if logger.isEnabledFor(logging.DEBUG):
                            transport.logged(
                                method, path, resp.status, call.attempt, started
                            )
                        if resp.status != 401 or refreshed:
                            break
                        # A 401 is answered before the request is handled:
                        # refresh the token once and repeat once; a second
                        # 401 is final.
                        auth.invalidate(token)
                    if resp.status < 400:
                        return resp
                    raise error_from_response(
                        resp.status,
                        resp.body,
                        resp.headers,
                        method=method,
                        path=path,
                        secrets=(token, *auth.secrets()),
                    )
                except SipsError as exc:
                    # A failure before the order request left (the token)
                    # places nothing; after it, the pure policy in _outcome
                    # decides.
                    if call.order_sent and maybe_placed(exc):
                        call.placed = True
                    wait = self._retry_wait(call, exc, places_order)
                    if wait is None:
                        raise
                await clock.sleep(wait)
        except SipsError as exc:
            if places_order:
                # Over every attempt, not only the last: a token failure on a
                # retry does not unsend an earlier attempt.
                exc.maybe_placed = call.placed
            raise

    def _retry_wait(
        self, call: _Call, exc: SipsError, places_order: bool
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up."""
        cfg = self._retry
        if not should_retry(
            exc, places_order=places_order, order_sent=call.order_sent, cfg=cfg
        ):
            return None
        elapsed = self._clock.monotonic() - call.started
        wait = next_wait(
            exc,
            attempt=call.attempt,
            elapsed=elapsed,
            cfg=cfg,
            draw=_rng.uniform(0.0, 1.0),
        )
        if wait is not None:
            _log_retry(call, wait, elapsed, exc)
        return wait


def _log_retry(call: _Call, wait: float, elapsed: float, exc: BaseException) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "retry %s %s attempt=%d wait_ms=%.1f elapsed_ms=%.1f after %s",
            call.method,
            redact(call.path),
            call.attempt + 1,
            wait * 1000,
            elapsed * 1000,
            type(exc).__name__,
        )
