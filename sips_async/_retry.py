"""Retries: the only user of ``backoff``.

:class:`Requester` sends an authenticated request, refreshes the token once
on a 401, maps error answers to typed exceptions and retries what the policy
allows, with exponential backoff, full jitter and ``Retry-After``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from contextvars import ContextVar
from typing import Any, Final, cast

import backoff

from ._auth import TokenManager
from ._codec import error_from_response
from ._config import RetryConfig
from ._outcome import maybe_placed
from ._transport import Response, Transport
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
#: The retry budget's clock (a seam for tests that fake time).
_clock: Callable[[], float] = time.monotonic


def delays(cfg: RetryConfig) -> Generator[float | None, BaseException | None, None]:
    """Backoff wait generator: full jitter, or ``Retry-After`` when given.

    ``backoff`` primes it with ``None`` and then sends in each exception.
    """
    exc = yield None
    step = 0
    while True:
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            delay = float(retry_after)  # longer waits end the call instead
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
    """One logical call: its arguments and its state across attempts."""

    __slots__ = (
        "attempt",
        "json",
        "method",
        "order_sent",
        "params",
        "path",
        "placed",
        "places_order",
        "replay",
        "started",
        "timeout",
    )

    def __init__(
        self,
        method: str,
        path: str,
        json: bytes | None,
        timeout: float,
        places_order: bool,
        params: Mapping[str, str] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.params = params
        self.json = json
        self.timeout = timeout
        self.places_order = places_order
        self.attempt = 0
        self.order_sent = False
        #: Whether an attempt so far may have placed the order (places_order).
        self.placed = False
        self.started = _clock()
        #: The first attempt's failure, handed to backoff to start retrying.
        self.replay: BaseException | None = None


#: The call being attempted in this task: backoff's ``giveup`` predicate sees
#: only the exception, and the decorated function is built once per Requester.
_current: Final[ContextVar[_Call]] = ContextVar("sips_async_call")


def _log_retry(details: Any) -> None:
    exc = details.get("exception")
    args = details.get("args") or ()
    call_name = f"{args[0].method} {args[0].path}" if args else ""
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

    __slots__ = ("_auth", "_retry", "_retrying", "_transport")

    def __init__(
        self, *, transport: Transport, auth: TokenManager, retry: RetryConfig
    ) -> None:
        self._transport = transport
        self._auth = auth
        self._retry = retry
        # Decorated once: building the backoff decorator on every call cost
        # about 8 µs of CPU per request (see benchmarks/submit.py).
        self._retrying: Callable[[_Call], Awaitable[Response]] = backoff.on_exception(
            cast(Callable[..., Generator[float, None, None]], delays),
            RETRYABLE,
            max_tries=retry.max_tries,
            max_time=self._time_left,  # read as backoff starts: after attempt 1
            jitter=None,
            giveup=self._give_up,
            on_backoff=_log_retry,
            logger=None,
            cfg=retry,
        )(self._replay_or_attempt)

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
        call = _Call(method, path, json, timeout, places_order, params)
        try:
            try:
                # The first attempt runs outside backoff: a call that succeeds
                # pays nothing for the retry machinery (benchmarks/submit.py).
                return await self._attempt(call)
            except RETRYABLE as exc:
                if self._stop(call, exc):
                    raise
                call.replay = exc
            reset = _current.set(call)
            try:
                return await self._retrying(call)
            finally:
                _current.reset(reset)
        except SipsError as exc:
            if places_order:
                # Over every attempt, not only the last: a token failure
                # on a retry does not unsend an earlier attempt.
                exc.maybe_placed = call.placed
            raise

    def _stop(self, call: _Call, exc: BaseException) -> bool:
        """Whether ``exc`` ends the call: the policy, or a wait we cannot honour."""
        cfg = self._retry
        if call.attempt >= cfg.max_tries or not should_retry(
            exc, places_order=call.places_order, order_sent=call.order_sent, cfg=cfg
        ):
            return True
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is None:
            return False
        # Never come back earlier than SRS asked: if it asks for more than
        # max_retry_after, or than the time left, the error is final.
        left = cfg.max_time - (_clock() - call.started)
        return bool(retry_after > min(cfg.max_retry_after, left))

    def _time_left(self) -> float:
        # The budget counts from the call's start, first attempt included.
        call = _current.get()
        return max(0.0, self._retry.max_time - (_clock() - call.started))

    def _give_up(self, exc: BaseException) -> bool:
        return self._stop(_current.get(), exc)

    async def _replay_or_attempt(self, call: _Call) -> Response:
        failure, call.replay = call.replay, None
        if failure is not None:
            # Hand the first attempt's failure to backoff: it waits as the
            # policy says, then calls again for the real second attempt.
            raise failure
        return await self._attempt(call)

    async def _attempt(self, call: _Call) -> Response:
        call.attempt += 1
        try:
            return await self._send(call)
        except SipsError as exc:
            # A failure before the order request left (the token) places
            # nothing; after it, the pure policy in _outcome decides.
            if call.order_sent and maybe_placed(exc):
                call.placed = True
            raise

    async def _send(self, call: _Call) -> Response:
        method, path = call.method, call.path
        for refreshed in (False, True):
            call.order_sent = False
            token = await self._auth.token()
            call.order_sent = True
            resp = await self._transport.send(
                method,
                path,
                token=token,
                json=call.json,
                params=call.params,
                timeout=call.timeout,
                attempt=call.attempt,
            )
            if resp.status != 401 or refreshed:
                break
            # A 401 is answered before the request is handled: refresh the
            # token once and repeat once; a second 401 is final.
            self._auth.invalidate(token)
        if resp.status >= 400:
            raise error_from_response(
                resp.status, resp.body, resp.headers, method=method, path=path
            )
        return resp
