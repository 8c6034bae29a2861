"""Retries: exact counts, backoff delays, Retry-After, and submit safety."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import random
import types
from collections.abc import Callable, Iterator
from typing import Any, Self

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses

import sips_async._codec
import sips_async._retry
from sips_async import (
    RetryConfig,
    SipsAuthError,
    SipsConfigError,
    SipsConnectionError,
    SipsRateLimitError,
    SipsServerError,
    SipsTimeoutError,
)
from sips_async._config import SubmitRetry
from tests._mock import (
    ENQUEUE_URL,
    SEED_ORDER,
    SUBMIT_URL,
    TOKEN_URL,
    FakeClock,
    bearer,
    calls,
    connector_error,
    count,
    make_client,
    mock_token,
    order_url,
    sent_transaction_ids,
)
from tests.factories import make_order

URL = order_url(874)
OK_SUBMIT = {"message": "Order Submitted", "orderID": "35818786", "queueID": None}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class _MaxRandom(random.Random):
    """Full jitter always drawing its upper bound."""

    def uniform(self, a: float, b: float) -> float:
        return b


# --------------------------------------------------------------------------
# Delays
# --------------------------------------------------------------------------


def _caps(cfg: RetryConfig, n: int) -> list[float]:
    return [min(cfg.max_delay, cfg.initial_delay * 2**i) for i in range(n)]


async def test_full_jitter_delays_lie_within_exponential_caps(
    clock: FakeClock,
) -> None:
    cfg = RetryConfig(max_tries=8, initial_delay=0.25, max_delay=2.0)
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=503, repeat=True)
        async with make_client(retry=cfg, clock=clock) as client:
            for _ in range(5):
                with pytest.raises(SipsServerError):
                    await client.orders.get(874)
        assert count(m, "GET", URL) == 5 * 8
    assert len(clock.delays) == 5 * 7
    caps = _caps(cfg, 7)
    assert caps == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0]
    for run in range(5):
        delays = clock.delays[run * 7 : (run + 1) * 7]
        for delay, cap in zip(delays, caps, strict=True):
            assert 0.0 <= delay <= cap
    # A jittered draw, not the cap itself every time.
    assert len(set(clock.delays)) > 1


async def test_delays_double_from_initial_delay_up_to_max_delay(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sips_async._retry, "_rng", _MaxRandom())
    cfg = RetryConfig(max_tries=6, initial_delay=1.5, max_delay=5.0)
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=500, repeat=True)
        async with make_client(retry=cfg, clock=clock) as client:
            with pytest.raises(SipsServerError):
                await client.orders.get(874)
        assert count(m, "GET", URL) == 6
    assert clock.delays == [1.5, 3.0, 5.0, 5.0, 5.0]


async def test_retry_after_seconds_is_obeyed_exactly(clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=503, headers={"Retry-After": "7"}, repeat=True)
        async with make_client(retry=RetryConfig(max_tries=3), clock=clock) as client:
            with pytest.raises(SipsServerError) as info:
                await client.orders.get(874)
        assert count(m, "GET", URL) == 3
    assert clock.delays == [7.0, 7.0]
    assert info.value.retry_after == 7.0


async def test_retry_after_on_429_is_obeyed(clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=429, headers={"Retry-After": "3"})
        m.get(URL, body=SEED_ORDER)
        async with make_client(clock=clock) as client:
            await client.orders.get(874)
        assert count(m, "GET", URL) == 2
    assert clock.delays == [3.0]


@pytest.mark.parametrize(
    ("retry_after", "cfg"),
    [
        # More than we are willing to wait at all.
        ("120", RetryConfig(max_tries=3, max_retry_after=10.0, max_time=600)),
        # More than the time left in the retry budget.
        ("30", RetryConfig(max_tries=3, max_retry_after=60.0, max_time=20)),
    ],
)
async def test_retry_after_beyond_what_we_can_wait_is_final(
    clock: FakeClock, retry_after: str, cfg: RetryConfig
) -> None:
    # Coming back earlier than SRS asked would not honour Retry-After.
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=503, headers={"Retry-After": retry_after}, repeat=True)
        async with make_client(retry=cfg, clock=clock) as client:
            with pytest.raises(SipsServerError) as info:
                await client.orders.get(874)
        assert count(m, "GET", URL) == 1
    assert clock.delays == []
    assert info.value.retry_after == float(retry_after)


_NOW = dt.datetime(2026, 5, 20, 12, 0, 0, tzinfo=dt.UTC)


class _FrozenDateTime(dt.datetime):
    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> Self:
        return cls.fromtimestamp(_NOW.timestamp(), tz)


@pytest.mark.parametrize(
    ("offset", "max_retry_after", "expected"),
    # "beyond": SRS asks for more than max_retry_after, so nothing is re-sent.
    [(42, 60.0, [42.0]), (42, 20.0, []), (-30, 60.0, [0.0])],
    ids=["future", "beyond", "past"],
)
async def test_retry_after_http_date_is_obeyed_exactly(
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    offset: int,
    max_retry_after: float,
    expected: list[float],
) -> None:
    monkeypatch.setattr(
        sips_async._codec,
        "dt",
        types.SimpleNamespace(datetime=_FrozenDateTime, UTC=dt.UTC),
    )
    when = email.utils.format_datetime(_NOW + dt.timedelta(seconds=offset), usegmt=True)
    cfg = RetryConfig(max_tries=2, max_retry_after=max_retry_after)
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=503, headers={"Retry-After": when}, repeat=True)
        async with make_client(retry=cfg, clock=clock) as client:
            with pytest.raises(SipsServerError):
                await client.orders.get(874)
    assert clock.delays == expected


async def test_unreadable_retry_after_falls_back_to_backoff(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sips_async._retry, "_rng", _MaxRandom())
    cfg = RetryConfig(max_tries=3, initial_delay=0.5)
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=503, headers={"Retry-After": "soon-ish"}, repeat=True)
        async with make_client(retry=cfg, clock=clock) as client:
            with pytest.raises(SipsServerError):
                await client.orders.get(874)
    assert clock.delays == [0.5, 1.0]


# --------------------------------------------------------------------------
# Bounds
# --------------------------------------------------------------------------


@pytest.mark.parametrize("tries", [1, 2, 5])
async def test_max_tries_bounds_attempts(clock: FakeClock, tries: int) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, exception=aiohttp.ServerDisconnectedError(), repeat=True)
        async with make_client(
            retry=RetryConfig(max_tries=tries), clock=clock
        ) as client:
            with pytest.raises(SipsConnectionError):
                await client.orders.get(874)
        assert count(m, "GET", URL) == tries
    assert len(clock.delays) == tries - 1


async def test_max_time_bounds_retries(clock: FakeClock) -> None:
    # Retry-After 4 s, 10 s allowed: waits 4 + 4; then only 2 s are left,
    # less than SRS asked for, so the third failure is final (never re-sent
    # sooner than asked).
    cfg = RetryConfig(max_tries=100, max_time=10.0)
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=503, headers={"Retry-After": "4"}, repeat=True)
        async with make_client(retry=cfg, clock=clock) as client:
            with pytest.raises(SipsServerError):
                await client.orders.get(874)
        assert count(m, "GET", URL) == 3
    assert clock.delays == [4.0, 4.0]


async def test_max_time_bounds_jittered_retries(clock: FakeClock) -> None:
    # No Retry-After: the jittered delays, cut by what is left of max_time.
    cfg = RetryConfig(max_tries=100, max_time=3.0, initial_delay=1.0, max_delay=1.0)
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=503, repeat=True)
        async with make_client(retry=cfg, clock=clock) as client:
            with pytest.raises(SipsServerError):
                await client.orders.get(874)
        sent = count(m, "GET", URL)
    assert sum(clock.delays) <= cfg.max_time + 1e-3  # timedelta rounds to µs
    assert sent == len(clock.delays) + 1
    assert sent >= 3


async def test_retry_stops_at_first_success(clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=502)
        m.get(URL, body=SEED_ORDER)
        m.get(URL, status=502, repeat=True)
        async with make_client(retry=RetryConfig(max_tries=5), clock=clock) as client:
            order = await client.orders.get(874)
        assert count(m, "GET", URL) == 2
    assert order.id == 874
    assert len(clock.delays) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_tries": 0},
        {"max_time": 0},
        {"initial_delay": -1},
        {"max_delay": -1},
        {"submit": "sometimes"},
    ],
)
def test_retry_config_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SipsConfigError):
        RetryConfig(**kwargs)


# --------------------------------------------------------------------------
# Submit safety (RetryConfig.submit)
# --------------------------------------------------------------------------

SUBMIT_URLS = {"submit": SUBMIT_URL, "enqueue": ENQUEUE_URL}


async def _place(
    kind: str,
    m: aioresponses,
    policy: SubmitRetry,
    *,
    tries: int = 4,
    clock: FakeClock | None = None,
) -> None:
    """Submit or enqueue one order with ``policy``; leaves errors to the test."""
    order = make_order()
    cfg = RetryConfig(max_tries=tries, submit=policy)
    async with make_client(retry=cfg, clock=clock or FakeClock()) as c:
        try:
            if kind == "submit":
                await c.orders.submit(order)
            else:
                await c.orders.enqueue(order)
        finally:
            url = SUBMIT_URLS[kind]
            ids = sent_transaction_ids(m, url)
            assert ids, "the order was never sent"
            assert set(ids) == {order.transaction_id}


_AMBIGUOUS: dict[str, dict[str, object]] = {
    "500": {"status": 500},
    "502": {"status": 502},
    "504": {"status": 504},
    "server-disconnected": {"exception": aiohttp.ServerDisconnectedError()},
    "read-timeout": {"timeout": True},
}
_AMBIGUOUS_ERRORS: dict[str, type[Exception]] = {
    "500": SipsServerError,
    "502": SipsServerError,
    "504": SipsServerError,
    "server-disconnected": SipsConnectionError,
    "read-timeout": SipsTimeoutError,
}
_REFUSED: dict[str, dict[str, object]] = {
    "503": {"status": 503},
    "429": {"status": 429},
    "connection-refused": {"exception": connector_error()},
}
_REFUSED_ERRORS: dict[str, type[Exception]] = {
    "503": SipsServerError,
    "429": SipsRateLimitError,
    "connection-refused": SipsConnectionError,
}


@pytest.mark.parametrize("kind", list(SUBMIT_URLS))
@pytest.mark.parametrize("failure", list(_AMBIGUOUS))
async def test_safe_submit_not_resent_after_ambiguous_failure(
    clock: FakeClock, kind: str, failure: str
) -> None:
    url = SUBMIT_URLS[kind]
    with aioresponses() as m:
        mock_token(m)
        m.post(url, repeat=True, **_AMBIGUOUS[failure])
        with pytest.raises(_AMBIGUOUS_ERRORS[failure]):
            await _place(kind, m, "safe", clock=clock)
        assert count(m, "POST", url) == 1
    assert clock.delays == []


@pytest.mark.parametrize("kind", list(SUBMIT_URLS))
@pytest.mark.parametrize("failure", list(_REFUSED))
async def test_safe_submit_resent_after_refusal_with_same_transaction_id(
    clock: FakeClock, kind: str, failure: str
) -> None:
    url = SUBMIT_URLS[kind]
    with aioresponses() as m:
        mock_token(m)
        m.post(url, **_REFUSED[failure])
        m.post(url, **_REFUSED[failure])
        m.post(url, payload=OK_SUBMIT)
        await _place(kind, m, "safe", clock=clock)
        assert count(m, "POST", url) == 3
    assert len(clock.delays) == 2


@pytest.mark.parametrize("failure", list(_REFUSED))
async def test_safe_submit_refusal_gives_up_after_max_tries(
    clock: FakeClock, failure: str
) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.post(SUBMIT_URL, repeat=True, **_REFUSED[failure])
        with pytest.raises(_REFUSED_ERRORS[failure]):
            await _place("submit", m, "safe", tries=3, clock=clock)
        assert count(m, "POST", SUBMIT_URL) == 3


async def test_safe_submit_resent_when_token_request_failed(clock: FakeClock) -> None:
    with aioresponses() as m:
        m.post(TOKEN_URL, status=500)
        m.post(TOKEN_URL, exception=aiohttp.ServerDisconnectedError())
        mock_token(m)
        m.post(SUBMIT_URL, payload=OK_SUBMIT)
        await _place("submit", m, "safe", clock=clock)
        assert count(m, "POST", TOKEN_URL) == 3
        assert count(m, "POST", SUBMIT_URL) == 1


@pytest.mark.parametrize("kind", list(SUBMIT_URLS))
@pytest.mark.parametrize("failure", list(_AMBIGUOUS))
async def test_always_submit_resends_ambiguous_with_same_transaction_id(
    clock: FakeClock, kind: str, failure: str
) -> None:
    url = SUBMIT_URLS[kind]
    with aioresponses() as m:
        mock_token(m)
        m.post(url, **_AMBIGUOUS[failure])
        m.post(url, **_AMBIGUOUS[failure])
        m.post(url, payload=OK_SUBMIT)
        await _place(kind, m, "always", clock=clock)
        assert count(m, "POST", url) == 3


async def test_always_submit_bounded_by_max_tries(clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.post(SUBMIT_URL, status=500, repeat=True)
        with pytest.raises(SipsServerError):
            await _place("submit", m, "always", tries=4, clock=clock)
        assert count(m, "POST", SUBMIT_URL) == 4


async def test_maybe_placed_by_an_earlier_attempt_survives_a_later_refusal(
    clock: FakeClock,
) -> None:
    # A 500 may have placed the order; the 503s after it place nothing, but
    # do not undo the first: the error says "maybe placed", not "not placed".
    with aioresponses() as m:
        mock_token(m)
        m.post(SUBMIT_URL, status=500)
        m.post(SUBMIT_URL, status=503, repeat=True)
        with pytest.raises(SipsServerError) as info:
            await _place("submit", m, "always", tries=3, clock=clock)
        assert count(m, "POST", SUBMIT_URL) == 3
    assert info.value.status == 503
    assert info.value.maybe_placed is True


@pytest.mark.parametrize("kind", list(SUBMIT_URLS))
@pytest.mark.parametrize("failure", [*_AMBIGUOUS, *_REFUSED])
async def test_never_submit_is_never_resent(
    clock: FakeClock, kind: str, failure: str
) -> None:
    url = SUBMIT_URLS[kind]
    spec = _AMBIGUOUS.get(failure) or _REFUSED[failure]
    errors = {**_AMBIGUOUS_ERRORS, **_REFUSED_ERRORS}
    with aioresponses() as m:
        mock_token(m)
        m.post(url, repeat=True, **spec)
        with pytest.raises(errors[failure]):
            await _place(kind, m, "never", clock=clock)
        assert count(m, "POST", url) == 1
    assert clock.delays == []


async def test_get_is_retried_whatever_the_submit_policy(clock: FakeClock) -> None:
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=500, repeat=True)
        cfg = RetryConfig(max_tries=3, submit="never")
        async with make_client(retry=cfg, clock=clock) as client:
            with pytest.raises(SipsServerError):
                await client.orders.get(874)
        assert count(m, "GET", URL) == 3


async def test_concurrent_calls_keep_their_own_retry_policy(clock: FakeClock) -> None:
    order = make_order()
    with aioresponses() as m:
        mock_token(m)
        m.post(SUBMIT_URL, status=500, repeat=True)
        m.get(URL, status=500)
        m.get(URL, status=500)
        m.get(URL, body=SEED_ORDER)
        async with make_client(retry=RetryConfig(max_tries=3), clock=clock) as client:
            submitted, got = await asyncio.gather(
                client.orders.submit(order),
                client.orders.get(874),
                return_exceptions=True,
            )
        assert count(m, "POST", SUBMIT_URL) == 1
        assert count(m, "GET", URL) == 3
    assert isinstance(submitted, SipsServerError)
    assert not isinstance(got, BaseException)
    assert got.id == 874


# --------------------------------------------------------------------------
# The time budget on a clock that moves during attempts (issue 11 survivors)
# --------------------------------------------------------------------------


def _slow_answers(
    clock: FakeClock, durations: list[float], **answer: Any
) -> Callable[..., CallbackResult]:
    """An aioresponses callback: each attempt takes the next duration."""
    taken = iter(durations)

    def callback(url: Any, **kwargs: Any) -> CallbackResult:
        clock.advance(next(taken, 0.0))
        return CallbackResult(**answer)

    return callback


async def test_budget_counts_attempt_time_on_a_clock_far_from_zero(
    clock: FakeClock,
) -> None:
    # Each attempt takes 4 s; SRS asks for 1 s; 10 s in all. After attempt 1
    # (t=4) and 2 (t=9: 1 s left, exactly what SRS asked) we wait; after
    # attempt 3 (t=14) the budget is spent.
    assert clock.now > 1000  # an origin of 0 would hide a wrong subtraction
    cfg = RetryConfig(max_tries=100, max_time=10.0)
    answer = _slow_answers(clock, [4.0] * 10, status=503, headers={"Retry-After": "1"})
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, callback=answer, repeat=True)
        async with make_client(retry=cfg, clock=clock) as client:
            started = clock.now
            with pytest.raises(SipsServerError):
                await client.orders.get(874)
        assert count(m, "GET", URL) == 3
    assert clock.delays == [1.0, 1.0]
    assert clock.now - started == 14.0


async def test_jittered_wait_is_cut_to_the_time_left_and_ends_at_zero(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Attempt 1 takes 4 s of a 10 s budget; the draw (8 s) is cut to the 6 s
    # left; attempt 2 ends with exactly 0 s left, which is final.
    monkeypatch.setattr(sips_async._retry, "_rng", _MaxRandom())
    cfg = RetryConfig(max_tries=100, max_time=10.0, initial_delay=8.0, max_delay=8.0)
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, callback=_slow_answers(clock, [4.0], status=503), repeat=True)
        async with make_client(retry=cfg, clock=clock) as client:
            with pytest.raises(SipsServerError):
                await client.orders.get(874)
        assert count(m, "GET", URL) == 2
    assert clock.delays == [6.0]


async def test_retry_after_equal_to_max_retry_after_is_honoured(
    clock: FakeClock,
) -> None:
    cfg = RetryConfig(max_tries=2, max_retry_after=5.0, max_time=60.0)
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=429, headers={"Retry-After": "5"})
        m.get(URL, body=SEED_ORDER)
        async with make_client(retry=cfg, clock=clock) as client:
            await client.orders.get(874)
    assert clock.delays == [5.0]


@pytest.mark.parametrize(
    ("attempt", "elapsed", "retry_after", "expected"),
    [
        (1, 0.0, None, 0.5),  # initial_delay * 2**0, full draw
        (2, 0.0, None, 1.0),
        (4, 0.0, None, 2.0),  # capped at max_delay
        (1, 9.8, None, 0.2),  # cut to the time left
        (1, 10.0, None, None),  # no time left
        (5, 0.0, None, None),  # max_tries reached
        (4, 9.0, 1.0, 1.0),  # one try left, Retry-After within bounds
        (1, 0.0, 3.0, 3.0),  # Retry-After replaces the draw
        (1, 0.0, 4.0, 4.0),  # == max_retry_after: still honoured
        (1, 0.0, 4.5, None),  # beyond max_retry_after
        (1, 7.0, 3.0, 3.0),  # == time left: honoured
        (1, 7.5, 3.0, None),  # beyond the time left
    ],
)
def test_next_wait_is_the_one_place_of_the_bounds(
    attempt: int, elapsed: float, retry_after: float | None, expected: float | None
) -> None:
    cfg = RetryConfig(
        max_tries=5, max_time=10.0, initial_delay=0.5, max_delay=2.0, max_retry_after=4
    )
    exc = SipsServerError("x", status=503, retry_after=retry_after)
    wait = sips_async._retry.next_wait(
        exc, attempt=attempt, elapsed=elapsed, cfg=cfg, draw=1.0
    )
    assert wait == (None if expected is None else pytest.approx(expected))
    if expected is not None and retry_after is None:
        half = sips_async._retry.next_wait(
            exc, attempt=attempt, elapsed=elapsed, cfg=cfg, draw=0.5
        )
        assert half == pytest.approx(
            min(expected, 0.5 * min(2.0, 0.5 * 2 ** (attempt - 1)))
        )


# --------------------------------------------------------------------------
# What mutation testing of _retry.py found unpinned
# --------------------------------------------------------------------------


class _Lines(logging.Handler):
    """The ``sips_async`` logger's messages, whatever its propagation."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    logger = logging.getLogger("sips_async")
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_retry_and_request_log_lines_say_what_happened(
    clock: FakeClock, log_lines: list[str]
) -> None:
    answer = _slow_answers(clock, [0.25], status=503, headers={"Retry-After": "2"})
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, callback=answer)
        m.get(URL, body=SEED_ORDER)
        async with make_client(clock=clock) as client:
            await client.orders.get(874)
    retries = [line for line in log_lines if line.startswith("retry ")]
    assert retries == [
        "retry GET /orders/874 attempt=2 wait_ms=2000.0 elapsed_ms=250.0 "
        "after SipsServerError"
    ]
    sent = [line for line in log_lines if line.startswith("GET /orders/874 ")]
    assert [line.split(" elapsed_ms=")[0] for line in sent] == [
        "GET /orders/874 status=503 attempt=1",
        "GET /orders/874 status=200 attempt=2",
    ]


def test_should_retry_refuses_what_is_not_transient() -> None:
    cfg = RetryConfig(submit="always")
    for exc in (ValueError("x"), SipsConfigError("x"), asyncio.CancelledError()):
        assert not sips_async._retry.should_retry(
            exc, places_order=False, order_sent=False, cfg=cfg
        )
    assert sips_async._retry.should_retry(
        SipsServerError("x", status=500), places_order=False, order_sent=False, cfg=cfg
    )


async def test_jitter_draws_below_the_cap(clock: FakeClock) -> None:
    # Full jitter: uniform in [0, cap]; 20 draws all at the cap would mean
    # no jitter at all (a thundering herd after an outage).
    cfg = RetryConfig(max_tries=21, initial_delay=1.0, max_delay=1.0, max_time=600)
    with aioresponses() as m:
        mock_token(m)
        m.get(URL, status=503, repeat=True)
        async with make_client(retry=cfg, clock=clock) as client:
            with pytest.raises(SipsServerError):
                await client.orders.get(874)
    assert len(clock.delays) == 20
    assert all(0.0 <= d <= 1.0 for d in clock.delays)
    assert sum(d < 1.0 for d in clock.delays) >= 15


async def test_token_that_got_a_second_401_is_kept_for_the_next_call(
    clock: FakeClock,
) -> None:
    # 401, refresh, 401 again: final. The fresh token is not thrown away, so
    # the next call does not ask for yet another one.
    with aioresponses() as m:
        mock_token(m, "tok-1")
        mock_token(m, "tok-2")
        m.get(URL, status=401)
        m.get(URL, status=401)
        m.get(URL, body=SEED_ORDER)
        async with make_client(clock=clock) as client:
            with pytest.raises(SipsAuthError):
                await client.orders.get(874)
            await client.orders.get(874)
        assert count(m, "POST", TOKEN_URL) == 2
        assert [bearer(c) for c in calls(m, "GET", URL)] == [
            "Bearer tok-1",
            "Bearer tok-2",
            "Bearer tok-2",
        ]
