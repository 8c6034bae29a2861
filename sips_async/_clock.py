"""The client's one source of time: token expiry, the retry budget, retry waits.

``SipsClient(clock=...)`` replaces it, for tests that check timing without
waiting; nothing else in the package reads the time for these decisions.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final, Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    """What the client needs of a clock.

    ``monotonic()`` returns seconds on any fixed origin (only differences are
    used); ``sleep()`` waits that many seconds of this clock's time. A test
    clock advances its time in ``sleep`` and returns at once.
    """

    def monotonic(self) -> float:
        """Seconds since an arbitrary, fixed origin."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic` and :func:`asyncio.sleep`."""

    __slots__ = ()

    #: :func:`time.monotonic` itself: no Python frame on every request.
    monotonic: Final = staticmethod(time.monotonic)

    async def sleep(self, seconds: float) -> None:
        """:func:`asyncio.sleep`."""
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "<SystemClock>"


SYSTEM_CLOCK: Final = SystemClock()
