"""Webhook delivery: walks each order through its steps and POSTs the updates.

One task per order sends its steps in sequence, ``step_delay`` apart, so the
updates of one order leave in order unless a reorder fault swaps two of them.
A delivery answered with a non-2xx status, or not answered at all, is
retried a bounded number of times with exponential backoff. The walker keeps
count of what is scheduled or in flight, so :meth:`Walker.wait_idle` can wait
on an event instead of polling.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Final

import aiohttp

from .._codec import encode
from .._version import __version__
from ..webhooks import SECRET_HEADER, sign_headers
from ._config import SandboxConfig
from ._orders import OrderRecord, Step
from ._stats import WebhookRecord

__all__ = ["Walker", "chance"]

logger: Final = logging.getLogger("sips_async.sandbox")

#: Seconds one delivery attempt may take before it counts as unanswered.
DELIVERY_TIMEOUT: Final = 10.0
#: First redelivery delay; it doubles per attempt up to ``MAX_BACKOFF``.
FIRST_BACKOFF: Final = 0.05
MAX_BACKOFF: Final = 2.0
#: Delivery attempts kept for :meth:`Sandbox.stats` (oldest dropped first).
MAX_RECORDS: Final = 50_000

_USER_AGENT: Final = f"sips-async-sandbox/{__version__}"


def chance(rng: random.Random, rate: float) -> bool:
    """Draw a fault with probability ``rate`` (no draw at exactly 0 or 1)."""
    if rate <= 0.0:
        return False
    if rate >= 1.0:
        return True
    return rng.random() < rate


def backoff_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (attempt - 1)))


class Walker:
    """Plans, paces and delivers the webhook updates of every order.

    Args:
        config: the sandbox settings (fault rates, secrets, retries, pacing).
        urls: returns the current webhook URLs (empty: deliver nothing);
            every update goes to each of them.
        rng: the sandbox's random generator, shared for reproducibility.
        faults: the sandbox's fault counters, updated in place.
    """

    __slots__ = (
        "_busy",
        "_cfg",
        "_closed",
        "_faults",
        "_idle",
        "_rng",
        "_session",
        "_tasks",
        "_urls",
        "records",
    )

    def __init__(
        self,
        config: SandboxConfig,
        *,
        urls: Callable[[], tuple[str, ...]],
        rng: random.Random,
        faults: dict[str, int],
    ) -> None:
        self._cfg = config
        self._urls = urls
        self._rng = rng
        self._faults = faults
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        #: Every delivery attempt, oldest first.
        self.records: deque[WebhookRecord] = deque(maxlen=MAX_RECORDS)

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        """Create the HTTP session used for deliveries."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": _USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT),
            )

    async def aclose(self) -> None:
        """Cancel every scheduled delivery, wait for them, close the session."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def busy(self) -> int:
        """Walks and deliveries scheduled or in flight."""
        return self._busy

    async def wait_idle(self) -> None:
        """Return once nothing is scheduled or in flight."""
        while self._busy:
            await self._idle.wait()

    def _spawn(
        self, coro: Coroutine[Any, Any, WebhookRecord | None]
    ) -> asyncio.Task[WebhookRecord | None]:
        # Counted as busy from now until the task's done-callback runs, so a
        # walk scheduled by a request is visible before the answer leaves.
        self._busy += 1
        self._idle.clear()
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[WebhookRecord | None]) -> None:
        self._tasks.discard(task)
        self._busy -= 1
        if self._busy == 0:
            self._idle.set()
        if not task.cancelled() and task.exception() is not None:
            logger.error("webhook delivery task failed", exc_info=task.exception())

    # -- planning and walking ------------------------------------------------

    def plan(self, record: OrderRecord, steps: tuple[Step, ...]) -> None:
        """Decide the order's steps and faults now, in request order.

        Drawing every fault of an order when it is recorded keeps a seeded
        run reproducible however the walks interleave later.
        """
        cfg = self._cfg
        swapped = [False] * len(steps)
        i = 0
        while i < len(steps) - 1:
            if chance(self._rng, cfg.reorder_rate):
                swapped[i] = True
                i += 2
            else:
                i += 1
        record.steps = steps
        record.swapped = tuple(swapped)
        record.duplicated = tuple(chance(self._rng, cfg.duplicate_rate) for _ in steps)
        record.lost = tuple(chance(self._rng, cfg.lose_rate) for _ in steps)

    def start(self, record: OrderRecord) -> None:
        """Schedule the order's walk; it counts as busy from this call on."""
        if not self._closed:
            self._spawn(self._walk(record))

    async def _walk(self, record: OrderRecord) -> WebhookRecord | None:
        held: tuple[dict[str, Any], bool] | None = None
        tid = record.transaction_id
        for i, (event_type, status) in enumerate(record.steps):
            await asyncio.sleep(self._cfg.step_delay)
            record.advance(status)
            if record.rejection is not None:
                body = record.event(
                    event_type,
                    status,
                    error_code="Orders_GeneralError",
                    error_message=record.rejection,
                )
            else:
                body = record.event(event_type, status)
            if record.lost and record.lost[i]:
                # Lost for good: the status moved, no webhook says so.
                self._faults["lose"] += 1
                logger.debug("losing %s %s for %s", event_type, status, tid)
                if held is not None:
                    await self.send(tid, held[0], duplicate=held[1])
                    held = None
                continue
            if record.swapped[i] and i + 1 < len(record.steps):
                self._faults["reorder"] += 1
                held = (body, record.duplicated[i])
                continue
            await self.send(tid, body, duplicate=record.duplicated[i])
            if held is not None:
                await self.send(tid, held[0], duplicate=held[1])
                held = None
        return None

    # -- delivering ----------------------------------------------------------

    async def push(
        self, transaction_id: str | None, body: dict[str, Any]
    ) -> WebhookRecord | None:
        """Deliver one update now (with redeliveries) and return the last record.

        Raises:
            RuntimeError: the sandbox is closed, or was closed meanwhile.
        """
        if self._closed:
            raise RuntimeError("the sandbox is closed")
        task = self._spawn(self.send(transaction_id, body, duplicate=False))
        await asyncio.wait({task})
        if task.cancelled():
            raise RuntimeError("the sandbox was closed before the update was sent")
        return task.result()

    async def send(
        self, transaction_id: str | None, body: dict[str, Any], *, duplicate: bool
    ) -> WebhookRecord | None:
        """Deliver ``body`` to every URL, then replay it where it was delivered.

        Returns the record of the first URL's last attempt.
        """
        targets = self._urls()
        if not targets:
            logger.debug(
                "no webhook_url: %s %s for %s not sent",
                body.get("eventType"),
                body.get("eventStatus"),
                transaction_id,
            )
            return None
        data = encode(body)
        headers = self._headers(data, str(body.get("eventId")))
        results = await asyncio.gather(
            *(
                self._deliver_to(url, transaction_id, body, data, headers, duplicate)
                for url in targets
            )
        )
        if any(replayed for _, replayed in results):
            self._faults["duplicate"] += 1
        return results[0][0]

    async def _deliver_to(
        self,
        url: str,
        transaction_id: str | None,
        body: dict[str, Any],
        data: bytes,
        headers: dict[str, str],
        duplicate: bool,
    ) -> tuple[WebhookRecord | None, bool]:
        """Deliver to one URL; return its record and whether it was replayed."""
        first = await self._deliver(
            url, transaction_id, body, data, headers, replay=False
        )
        if duplicate and first is not None and first.ok:
            await self._deliver(url, transaction_id, body, data, headers, replay=True)
            return first, True
        return first, False

    def _headers(self, data: bytes, event_id: str) -> dict[str, str]:
        cfg = self._cfg
        headers = {"Content-Type": "application/json"}
        if cfg.signing_secret is not None:
            headers.update(
                sign_headers(cfg.signing_secret, data, msg_id=f"msg_{event_id}")
            )
        if cfg.webhook_secret is not None:
            headers[SECRET_HEADER] = cfg.webhook_secret
        return headers

    async def _deliver(
        self,
        url: str,
        transaction_id: str | None,
        body: dict[str, Any],
        data: bytes,
        headers: dict[str, str],
        *,
        replay: bool,
    ) -> WebhookRecord | None:
        tries = self._cfg.webhook_retries + 1
        record: WebhookRecord | None = None
        for attempt in range(1, tries + 1):
            if url not in self._urls():  # unregistered meanwhile
                return record
            answer = await self._post(url, data, headers)
            record = WebhookRecord(
                transaction_id=transaction_id,
                event_id=str(body.get("eventId")),
                event_type=str(body.get("eventType")),
                status=body.get("eventStatus"),
                answer_status=answer,
                attempt=attempt,
                duplicate=replay,
            )
            self.records.append(record)
            if record.ok:
                return record
            if attempt < tries:
                await asyncio.sleep(backoff_delay(attempt))
        logger.warning(
            "gave up delivering %s %s for %s after %d attempts",
            body.get("eventType"),
            body.get("eventStatus"),
            transaction_id,
            tries,
        )
        return record

    async def _post(self, url: str, data: bytes, headers: dict[str, str]) -> int | None:
        session = self._session
        if session is None:
            raise RuntimeError("the sandbox is not started")
        try:
            async with session.post(
                url, data=data, headers=headers, allow_redirects=False
            ) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.info("webhook delivery failed: %s", type(exc).__name__)
            return None
